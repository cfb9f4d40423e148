#!/usr/bin/env bash
# Build the throw-away Kubernetes control plane the deploy tests run, from the
# Go module proxy, into <repo>/.tools/bin:
#   etcd                     (wrapper module tools/k8s/etcd)
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#                            (wrapper module tools/k8s/kube)
# The versions are the ones pinned by the wrappers' go.mod and go.sum. A stamp
# (the hash of the wrappers and of this script) next to the binaries makes a
# second run free; Go's module and build caches make a rebuild after a change
# cheaper. Cold: several minutes on two cores (deploy/README.md has figures).
#
# Usage: tools/k8s/build.sh [--force]
set -euo pipefail

KUBE_VERSION="v1.32.13"   # k8s.io/kubernetes in kube/go.mod
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${here}/../.." && pwd)"
bin_dir="${repo_root}/.tools/bin"
stamp="${repo_root}/.tools/k8s-control-plane.stamp"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)

say() { echo "k8s/build: $*"; }
fail() { echo "k8s/build: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || fail "the 'go' command is needed (Go 1.26 or later: etcd 3.5.36's go.mod asks for it)"
grep -Eq "^[[:space:]]*k8s.io/kubernetes ${KUBE_VERSION}( |$)" "${here}/kube/go.mod" ||
  fail "kube/go.mod does not require k8s.io/kubernetes ${KUBE_VERSION}: keep KUBE_VERSION in step"

fingerprint="$(cat "${here}"/etcd/go.{mod,sum} "${here}"/kube/go.{mod,sum} "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
all_present() {
  local name
  for name in "${binaries[@]}"; do [[ -x "${bin_dir}/${name}" ]] || return 1; done
}
if [[ "${1:-}" != "--force" ]] && all_present && [[ "$(cat "${stamp}" 2>/dev/null)" == "${fingerprint}" ]]; then
  say "control plane ${KUBE_VERSION} already built in ${bin_dir}"
  exit 0
fi
mkdir -p "${bin_dir}"
rm -f "${stamp}"

# Static binaries, without debug information (smaller, faster to link), and no
# VCS stamping (the wrappers live inside this repository's checkout).
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly"
started=${SECONDS}

say "building etcd"
(cd "${here}/etcd" && go build -trimpath -ldflags "-s -w" -o "${bin_dir}/etcd" go.etcd.io/etcd/server/v3)

# Kubernetes stamps its version with ldflags: without them the binaries report
# v0.0.0-master and kubectl refuses to talk to the API server's version.
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
version_flags=""
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X ${package}.gitVersion=${KUBE_VERSION} -X ${package}.gitMajor=1"
  version_flags+=" -X ${package}.gitMinor=${minor} -X ${package}.gitTreeState=clean"
done
say "building kube-apiserver, kube-controller-manager, kube-scheduler and kubectl ${KUBE_VERSION}"
(cd "${here}/kube" && go build -trimpath -ldflags "-s -w ${version_flags}" -o "${bin_dir}/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)

# Whole outputs first: `cmd | grep -q` fails under pipefail when grep stops reading early.
apiserver_version="$("${bin_dir}/kube-apiserver" --version)"
[[ "${apiserver_version}" == "Kubernetes ${KUBE_VERSION}" ]] ||
  fail "kube-apiserver reports '${apiserver_version}', not ${KUBE_VERSION}"
etcd_version="$("${bin_dir}/etcd" --version)"
[[ "${etcd_version}" == *"etcd Version: 3.5."* ]] || fail "etcd does not report 3.5.x: ${etcd_version}"
echo "${fingerprint}" > "${stamp}"
say "built ${binaries[*]} in $((SECONDS - started)) s into ${bin_dir}"
