#!/bin/sh
# Install clang (libFuzzer) for `make fuzz` on Debian/Ubuntu CI images.
# Without clang, `make fuzz` falls back to a bounded random-input driver.
set -eu
if command -v clang >/dev/null 2>&1; then
    echo "clang already installed: $(clang --version | head -n 1)"
    exit 0
fi
apt-get update
apt-get install -y --no-install-recommends clang
