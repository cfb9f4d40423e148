#!/usr/bin/env bash
# Install the code generators `make generate` runs into <repo>/.tools, pinned:
#   protoc-gen-go, protoc-gen-go-grpc  (Go module proxy, `go install`)
#   protoc-gen-es                      (npm, tools/protoc-gen-es/package-lock.json, `npm ci`)
#   protoc, protoc-gen-grpc-java       (Maven Central executables, `mvn dependency:copy`)
# The Python generators come from grpcio-tools in .venv (requirements/dev.txt).
#
# Idempotent: a tool whose pinned version is recorded in .tools/versions is
# left alone, so running this again costs a few file checks.
#
# Usage: tools/install-codegen-tools.sh
set -euo pipefail

PROTOC_GEN_GO_VERSION="v1.36.11"
PROTOC_GEN_GO_GRPC_VERSION="v1.6.1"
# protoc must match protobuf-java in sdk/clients/java/pom.xml; protoc-gen-grpc-java matches grpc-java there.
PROTOC_VERSION="3.25.8"
GRPC_JAVA_VERSION="1.76.0"
MAVEN_DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${repo_root}/.tools"
bin_dir="${tools_dir}/bin"
versions_dir="${tools_dir}/versions"
mkdir -p "${bin_dir}" "${versions_dir}"

# installed NAME VERSION: true when NAME was installed at VERSION by this script
# and its executable is still in .tools/bin.
installed() {
  [[ -x "${bin_dir}/$1" && -f "${versions_dir}/$1" && "$(cat "${versions_dir}/$1")" == "$2" ]]
}

record() {
  echo "$2" > "${versions_dir}/$1"
  echo "install-codegen-tools: $1 $2 installed"
}

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "install-codegen-tools: the '$1' command is needed" >&2; exit 1; }
}

if ! installed protoc-gen-go "${PROTOC_GEN_GO_VERSION}"; then
  need go
  GOBIN="${bin_dir}" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
  record protoc-gen-go "${PROTOC_GEN_GO_VERSION}"
fi
if ! installed protoc-gen-go-grpc "${PROTOC_GEN_GO_GRPC_VERSION}"; then
  need go
  GOBIN="${bin_dir}" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"
  record protoc-gen-go-grpc "${PROTOC_GEN_GO_GRPC_VERSION}"
fi

es_lock="$(sha256sum "${repo_root}/tools/protoc-gen-es/package-lock.json" | cut -d' ' -f1)"
if ! installed protoc-gen-es "${es_lock}"; then
  need npm
  mkdir -p "${tools_dir}/protoc-gen-es"
  cp "${repo_root}"/tools/protoc-gen-es/package{,-lock}.json "${tools_dir}/protoc-gen-es/"
  npm ci --silent --no-audit --no-fund --prefix "${tools_dir}/protoc-gen-es"
  ln -sf ../protoc-gen-es/node_modules/.bin/protoc-gen-es "${bin_dir}/protoc-gen-es"
  record protoc-gen-es "${es_lock}"
fi

# maven_exe NAME GROUP:ARTIFACT VERSION: copy the platform's executable artifact to .tools/bin/NAME.
maven_exe() {
  local name="$1" artifact="$2" version="$3" platform
  installed "${name}" "${version}" && return
  need mvn
  case "$(uname -m)" in
    x86_64) platform="linux-x86_64" ;;
    aarch64 | arm64) platform="linux-aarch_64" ;;
    *) echo "install-codegen-tools: no ${name} build for $(uname -m)" >&2; exit 1 ;;
  esac
  mvn -q -B "${MAVEN_DEPENDENCY_PLUGIN}:copy" "-Dartifact=${artifact}:${version}:exe:${platform}" \
    "-DoutputDirectory=${tools_dir}/maven" -Dmdep.stripVersion=true -Dmdep.overWriteReleases=true
  install -m 0755 "${tools_dir}/maven/${artifact#*:}-${platform}.exe" "${bin_dir}/${name}"
  record "${name}" "${version}"
}
maven_exe protoc com.google.protobuf:protoc "${PROTOC_VERSION}"
maven_exe protoc-gen-grpc-java io.grpc:protoc-gen-grpc-java "${GRPC_JAVA_VERSION}"

echo "install-codegen-tools: generators are in ${bin_dir}"
