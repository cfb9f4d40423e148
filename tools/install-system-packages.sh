#!/usr/bin/env bash
# Install the system packages `make test` needs, and check the files the
# builds and tests use, not only a command name: a compiler can be present
# while the sanitizer or libFuzzer runtimes it links are not.
#
# The package names are Debian 12 (bookworm)'s, versioned where Debian
# versions them (clang-14, libclang-rt-14-dev, gcc-12): each line of PACKAGES
# below is "GROUP PACKAGE FILE", FILE a path (glob) the package provides and
# something in the project uses. A package is installed (apt-get, without
# recommends) when one of its files is missing; then every file is checked
# again and the script fails naming the package and the file still missing.
#
# The toolchains this kind of machine brings outside Debian's packages (Go,
# Node.js with npm, CPython) are checked for their minimum versions; the
# script says what is missing but cannot install them.
#
# Usage: tools/install-system-packages.sh [--check] [GROUP...]
#   GROUP   native (libshardq's unit, TSan and fuzz builds), tests (the
#           pytest suites, code generation, the client SDK builds), bench
#           (Redis and taskset for the benchmark smoke tests), image (a
#           container engine and debootstrap: the deploy tests build and run
#           the server image); default all
#   --check only check, install nothing; exit 1 naming what is missing
# SYSTEM_ROOT (default empty) is prepended to every checked path; the tests
# point it at a fake tree to prove the check fails.
set -euo pipefail

MIN_GO="1.26"       # tools/k8s/etcd/go.mod (etcd 3.5.36); the Go client needs 1.24
MIN_NODE="20"       # sdk/clients/typescript/package.json engines
MIN_PYTHON="3.11"   # server/pyproject.toml requires-python

arch="$(uname -m)"                        # x86_64, aarch64: clang's runtime file names
triplet="${arch}-linux-gnu"               # Debian's multiarch directory
clang_rt="/usr/lib/llvm-14/lib/clang/*/lib/linux"

# GROUP PACKAGE FILE. Keep one line per file something uses.
PACKAGES="
native make                   /usr/bin/make
native gcc-12                 /usr/bin/gcc-12
native gcc                    /usr/bin/gcc
native libc6-dev              /usr/include/stdio.h
native libc6-dev              /usr/lib/${triplet}/libc.so
native binutils               /usr/bin/ld
native libgcc-12-dev          /usr/lib/gcc/${triplet}/12/libasan.so
native libgcc-12-dev          /usr/lib/gcc/${triplet}/12/libtsan.so
native libgcc-12-dev          /usr/lib/gcc/${triplet}/12/libubsan.so
native libasan8               /usr/lib/${triplet}/libasan.so.8
native libtsan2               /usr/lib/${triplet}/libtsan.so.2
native libubsan1              /usr/lib/${triplet}/libubsan.so.1
native clang-14               /usr/bin/clang-14
native clang                  /usr/bin/clang
native libclang-common-14-dev /usr/lib/llvm-14/lib/clang/*/include/stddef.h
native libstdc++-12-dev       /usr/lib/gcc/${triplet}/12/libstdc++.so
native libclang-rt-14-dev     ${clang_rt}/libclang_rt.fuzzer-${arch}.a
native libclang-rt-14-dev     ${clang_rt}/libclang_rt.asan-${arch}.a
native libclang-rt-14-dev     ${clang_rt}/libclang_rt.asan_static-${arch}.a
native libclang-rt-14-dev     ${clang_rt}/libclang_rt.asan_cxx-${arch}.a
native libclang-rt-14-dev     ${clang_rt}/libclang_rt.ubsan_standalone-${arch}.a
tests  bash                   /usr/bin/bash
tests  git                    /usr/bin/git
tests  ca-certificates        /etc/ssl/certs/ca-certificates.crt
tests  openssl                /usr/bin/openssl
tests  openjdk-17-jdk-headless /usr/lib/jvm/java-17-openjdk-*/bin/javac
tests  maven                  /usr/share/maven/bin/mvn
tests  iproute2               /bin/ip
tests  util-linux             /usr/bin/unshare
image  docker.io              /usr/sbin/dockerd
image  docker.io              /usr/bin/docker
image  containerd             /usr/bin/containerd
image  runc                   /usr/sbin/runc
image  debootstrap            /usr/sbin/debootstrap
image  debian-archive-keyring /usr/share/keyrings/debian-archive-keyring.gpg
image  util-linux             /usr/bin/nsenter
bench  redis-server           /usr/bin/redis-server
bench  redis-tools            /usr/bin/redis-benchmark
bench  redis-tools            /usr/bin/redis-cli
bench  util-linux             /usr/bin/taskset
"
GROUPS_KNOWN="native tests image bench"

say() { echo "install-system-packages: $*"; }
fail() { echo "install-system-packages: $*" >&2; exit 1; }

check_only=0
groups=()
for arg in "$@"; do
  case "${arg}" in
    --check) check_only=1 ;;
    native | tests | image | bench) groups+=("${arg}") ;;
    *) fail "unknown argument '${arg}' (groups: ${GROUPS_KNOWN}; option: --check)" ;;
  esac
done
[[ ${#groups[@]} -gt 0 ]] || read -r -a groups <<< "${GROUPS_KNOWN}"
root="${SYSTEM_ROOT:-}"

# present GLOB: true when a file matches GLOB under the root.
present() {
  local matches
  matches=$(compgen -G "${root}$1" || true)
  [[ -n "${matches}" ]]
}

# missing_lines: the "PACKAGE FILE" lines of the chosen groups whose file is missing.
missing_lines() {
  local group package file
  while read -r group package file; do
    [[ -n "${group}" ]] || continue
    [[ " ${groups[*]} " == *" ${group} "* ]] || continue
    present "${file}" || echo "${package} ${file}"
  done <<< "${PACKAGES}"
}

# version_at_least HAVE WANT: dotted version comparison.
version_at_least() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" == "$2" ]]
}

# toolchain NAME HAVE WANT HOW: fail unless HAVE >= WANT.
toolchain() {
  local name="$1" have="$2" want="$3" how="$4"
  if [[ -z "${have}" ]]; then
    fail "${name} ${want} or later is needed and was not found (${how})"
  fi
  version_at_least "${have}" "${want}" ||
    fail "${name} ${want} or later is needed, found ${have} (${how})"
}

check_toolchains() {
  local go_version node_version python_version
  go_version="$(go env GOVERSION 2>/dev/null | sed 's/^go//' || true)"
  toolchain go "${go_version}" "${MIN_GO}" "Go from go.dev, on PATH: grpcurl, ghz, helm, kustomize, the Kubernetes control plane, the Go client"
  node_version="$(node --version 2>/dev/null | sed 's/^v//' || true)"
  toolchain node "${node_version}" "${MIN_NODE}" "Node.js with npm: the TypeScript client and protoc-gen-es"
  command -v npm >/dev/null 2>&1 || fail "npm is needed beside node (the TypeScript client, protoc-gen-es)"
  python_version="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
  toolchain python3 "${python_version}" "${MIN_PYTHON}" "CPython: the server, the SDK and the tests"
  python3 -c 'import ensurepip, venv' 2>/dev/null ||
    fail "python3 cannot make a virtualenv (on Debian's python3: apt-get install python3-venv)"
}

report_missing() {
  local package file
  while read -r package file; do
    echo "  ${package}: ${file}" >&2
  done <<< "$1"
}

missing="$(missing_lines)"
if [[ -n "${missing}" && "${check_only}" -eq 0 ]]; then
  packages="$(cut -d' ' -f1 <<< "${missing}" | sort -u | tr '\n' ' ')"
  say "installing ${packages}(apt-get; groups: ${groups[*]})"
  sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and no sudo: install as root: apt-get install ${packages}"
    sudo=(sudo -n)
  fi
  # shellcheck disable=SC2086  # one argument per package name
  # Another apt-get may hold the lock (a second checkout installing): wait for it.
  wait_lock=(-o DPkg::Lock::Timeout=600)
  if ! "${sudo[@]}" apt-get "${wait_lock[@]}" update -q ||
     ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
         apt-get "${wait_lock[@]}" install -y -q --no-install-recommends ${packages}; then
    fail "apt-get could not install ${packages}(the names are Debian 12's; on another system install their equivalents)"
  fi
  missing="$(missing_lines)"
fi
if [[ -n "${missing}" ]]; then
  echo "install-system-packages: files the tests need are missing (package: file):" >&2
  report_missing "${missing}"
  if [[ "${check_only}" -eq 1 ]]; then
    fail "run tools/install-system-packages.sh to install them"
  fi
  fail "the packages were installed but these files are still missing"
fi
if [[ " ${groups[*]} " == *" tests "* ]]; then
  check_toolchains
fi
say "every package of ${groups[*]} is in place"
