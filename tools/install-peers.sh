#!/usr/bin/env bash
# Install the peers bench/peers_bench.py compares EventStream with:
#   nats-server and nats (natscli, for `nats bench`)  Go module proxy, into <repo>/.tools/bin
#   redis-server and redis-benchmark                 Debian (apt-get, through
#                                                    tools/install-system-packages.sh bench)
#   the Kafka broker and its tools (jars)            Maven Central (bench/kafka/pom.xml), into
#                                                    <repo>/.tools/kafka; skipped without java/mvn
# The Pub/Sub emulator comes with the google-cloud-cli packages where the
# machine has them (`gcloud beta emulators pubsub start`); nothing here
# installs it, and the benchmark reports it as unavailable when it is missing.
#
# Idempotent: tools already present are left alone.
# Usage: tools/install-peers.sh [nats] [redis] [kafka]   (no argument: all three)
set -euo pipefail

NATS_SERVER_VERSION="v2.15.2"
NATSCLI_VERSION="v0.5.0"
KAFKA_VERSION="4.1.0"  # also in bench/kafka/pom.xml

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${repo_root}/.tools/bin"
wanted=("$@")
[[ ${#wanted[@]} -gt 0 ]] || wanted=(nats redis kafka)
mkdir -p "${bin_dir}"

for peer in "${wanted[@]}"; do
  case "${peer}" in
    nats)
      if ! "${bin_dir}/nats-server" --version 2>/dev/null | grep -q "${NATS_SERVER_VERSION}"; then
        echo "install-peers: nats-server ${NATS_SERVER_VERSION} (go install)"
        GOBIN="${bin_dir}" go install "github.com/nats-io/nats-server/v2@${NATS_SERVER_VERSION}"
      fi
      if ! "${bin_dir}/nats" --version 2>/dev/null | grep -q "${NATSCLI_VERSION#v}"; then
        echo "install-peers: natscli ${NATSCLI_VERSION} (go install)"
        GOBIN="${bin_dir}" go install "github.com/nats-io/natscli/nats@${NATSCLI_VERSION}"
      fi
      ;;
    redis)
      "${repo_root}/tools/install-system-packages.sh" bench
      ;;
    kafka)
      kafka_dir="${repo_root}/.tools/kafka"
      if [[ ! -f "${kafka_dir}/kafka_2.13-${KAFKA_VERSION}.jar" || ! -f "${kafka_dir}/kafka-tools-${KAFKA_VERSION}.jar" ]]; then
        if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
          # The benchmark then reports Kafka as unavailable and runs the others.
          echo "install-peers: skipping Kafka (needs java and mvn)" >&2
          continue
        fi
        echo "install-peers: Kafka ${KAFKA_VERSION} jars (mvn, Maven Central)"
        rm -rf "${kafka_dir}"
        mvn -B -q -f "${repo_root}/bench/kafka/pom.xml" dependency:copy-dependencies \
          -DincludeScope=runtime -DoutputDirectory="${kafka_dir}"
      fi
      ;;
    *) echo "install-peers: unknown peer '${peer}' (nats, redis, kafka)" >&2; exit 2 ;;
  esac
done
