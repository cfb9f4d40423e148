#!/usr/bin/env bash
# Install the peers bench/peers_bench.py compares EventStream with:
#   nats-server and nats (natscli, for `nats bench`)  Go module proxy, into <repo>/.tools/bin
#   redis-server and redis-benchmark                 Debian (apt-get), when missing
# The Pub/Sub emulator comes with the google-cloud-cli packages where the
# machine has them (`gcloud beta emulators pubsub start`); nothing here
# installs it, and the benchmark reports it as unavailable when it is missing.
#
# Idempotent: tools already present are left alone.
# Usage: tools/install-peers.sh [nats] [redis]   (no argument: both)
set -euo pipefail

NATS_SERVER_VERSION="v2.15.2"
NATSCLI_VERSION="v0.5.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${repo_root}/.tools/bin"
wanted=("$@")
[[ ${#wanted[@]} -gt 0 ]] || wanted=(nats redis)
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
      if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        echo "install-peers: redis-server and redis-tools (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
      fi
      ;;
    *) echo "install-peers: unknown peer '${peer}' (nats, redis)" >&2; exit 2 ;;
  esac
done
