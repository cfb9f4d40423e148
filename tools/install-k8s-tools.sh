#!/usr/bin/env bash
# Install the Kubernetes tools the deploy tests drive into <repo>/.tools/bin:
#   helm       (Go module proxy, `go install`)
#   kustomize  (Go module proxy, `go install`)
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#              (a throw-away control plane: tools/k8s/build.sh builds them
#              from its pinned wrapper modules)
# kubernetes-validate is a Python package pinned in requirements/deploy.txt and
# goes into the virtualenv with the other requirements, not here.
#
# Idempotent: a tool already present at the pinned version is left alone, so
# running this again costs a version check only. Needs Go and the Go module
# proxy; nothing is downloaded from anywhere else.
#
# Usage: tools/install-k8s-tools.sh [--force]
set -euo pipefail

HELM_VERSION="v3.22.0"
KUSTOMIZE_VERSION="v5.7.1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${repo_root}/.tools/bin"
force=0
if [[ "${1:-}" == "--force" ]]; then
  force=1
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-k8s-tools: the 'go' command is needed (helm and kustomize are built from the Go module proxy)" >&2
  exit 1
fi
mkdir -p "${bin_dir}"

# has_version BINARY VERSION: true when BINARY exists and reports VERSION.
has_version() {
  local binary="$1" version="$2" output
  [[ -x "${bin_dir}/${binary}" ]] || return 1
  case "${binary}" in
    helm) output="$("${bin_dir}/helm" version --template '{{.Version}}' 2>/dev/null || true)" ;;
    kustomize) output="$("${bin_dir}/kustomize" version 2>/dev/null || true)" ;;
  esac
  [[ "${output}" == *"${version}"* ]]
}

# install BINARY VERSION MODULE_PATH [LDFLAGS]
install() {
  local binary="$1" version="$2" module="$3" ldflags="${4:-}"
  if [[ "${force}" -eq 0 ]] && has_version "${binary}" "${version}"; then
    echo "install-k8s-tools: ${binary} ${version} already installed"
    return
  fi
  echo "install-k8s-tools: installing ${binary} ${version}"
  GOBIN="${bin_dir}" GOFLAGS="${GOFLAGS:-} -buildvcs=false" CGO_ENABLED=0 \
    go install -ldflags "${ldflags}" "${module}@${version}"
  if ! has_version "${binary}" "${version}"; then
    echo "install-k8s-tools: ${binary} was installed but does not report ${version}" >&2
    exit 1
  fi
}

# helm stamps its version from ldflags; without them `helm version` says v3.x-dev.
install helm "${HELM_VERSION}" helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
# kustomize reads its version from the module build info, so no ldflags.
install kustomize "${KUSTOMIZE_VERSION}" sigs.k8s.io/kustomize/kustomize/v5

if [[ "${force}" -eq 1 ]]; then
  "${repo_root}/tools/k8s/build.sh" --force
else
  "${repo_root}/tools/k8s/build.sh"
fi

echo "install-k8s-tools: tools are in ${bin_dir}"
