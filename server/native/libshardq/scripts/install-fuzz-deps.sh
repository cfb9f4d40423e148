#!/bin/sh
# Install what libshardq's `make test test-tsan fuzz` build with: gcc with its
# ASan/UBSan/TSan runtimes, and clang 14 with libFuzzer and the ASan/UBSan
# runtimes it links (Debian's libclang-rt-14-dev; `clang` alone does not bring
# them). Packages are installed and their files checked by the repository's
# tools/install-system-packages.sh (its `native` group); this fails, naming
# the package and the file, when something cannot be installed.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
exec "${here}/../../../../tools/install-system-packages.sh" "$@" native
