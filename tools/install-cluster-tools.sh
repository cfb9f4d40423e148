#!/usr/bin/env bash
# Install the tools the cluster tests drive into <repo>/.tools/bin:
#   historycheck      the linearizability checker of tools/historycheck (our Go
#                     module on porcupine, pinned by its go.mod and go.sum),
#                     rebuilt when its sources are newer than the binary
#   toxiproxy-server  Shopify's toxiproxy (Go module proxy, `go install`), the
#                     fault proxy between cluster peers
#   nats-server, nats NATS JetStream and natscli (`nats bench`), the R3 peer of
#                     bench/cluster_bench.py (tools/install-peers.sh nats pins them)
#
# Idempotent: a tool already built from the current sources or at the pinned
# version is left alone. Needs Go and the Go module proxy only.
#
# Usage: tools/install-cluster-tools.sh [--force]
set -euo pipefail

TOXIPROXY_VERSION="v2.5.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${repo_root}/.tools/bin"
checker_src="${repo_root}/tools/historycheck"
force=0
[[ "${1:-}" == "--force" ]] && force=1

if ! command -v go >/dev/null 2>&1; then
  echo "install-cluster-tools: the 'go' command is needed (every tool is built from Go modules)" >&2
  exit 1
fi
mkdir -p "${bin_dir}"

# historycheck: stale when missing or older than any of its sources.
checker="${bin_dir}/historycheck"
if [[ "${force}" -eq 1 || ! -x "${checker}" || -n "$(find "${checker_src}" -newer "${checker}" \
      \( -name '*.go' -o -name go.mod -o -name go.sum \) -print -quit)" ]]; then
  echo "install-cluster-tools: building historycheck (tools/historycheck)"
  (cd "${checker_src}" && GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
    go build -trimpath -o "${checker}" .)
fi

# toxiproxy's main package is cmd/server: `go install` names the binary
# "server", so it is built into a scratch dir and renamed. Its version string
# comes from ldflags (it says "git" otherwise).
toxiproxy="${bin_dir}/toxiproxy-server"
if [[ "${force}" -eq 1 ]] || ! "${toxiproxy}" -version 2>/dev/null | grep -qx "toxiproxy-server version ${TOXIPROXY_VERSION#v}"; then
  echo "install-cluster-tools: installing toxiproxy-server ${TOXIPROXY_VERSION}"
  scratch="$(mktemp -d)"
  trap 'rm -rf "${scratch}"' EXIT
  GOBIN="${scratch}" GOFLAGS="-buildvcs=false" CGO_ENABLED=0 go install \
    -ldflags "-X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION#v}" \
    "github.com/Shopify/toxiproxy/v2/cmd/server@${TOXIPROXY_VERSION}"
  mv "${scratch}/server" "${toxiproxy}"
fi

"${repo_root}/tools/install-peers.sh" nats

for tool in historycheck toxiproxy-server nats-server nats; do
  if [[ ! -f "${bin_dir}/${tool}" || ! -x "${bin_dir}/${tool}" ]]; then
    echo "install-cluster-tools: ${bin_dir}/${tool} is missing after the install" >&2
    exit 1
  fi
done
"${toxiproxy}" -version | grep -qx "toxiproxy-server version ${TOXIPROXY_VERSION#v}" || {
  echo "install-cluster-tools: toxiproxy-server does not report ${TOXIPROXY_VERSION}" >&2; exit 1; }
