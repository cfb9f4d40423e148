"""The Go-built tools of the cluster tests, installed on first use.

``tools/install-cluster-tools.sh`` (also run by ``make tools``) builds
``historycheck`` and installs ``toxiproxy-server``, ``nats-server`` and
``nats`` into ``.tools/bin``; it is idempotent, so a test calls
:func:`install_cluster_tools` and pays a version check when they are there
already.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"


@functools.cache
def install_cluster_tools() -> Path:
    """Install the cluster tools when missing or stale; return the bin dir."""
    subprocess.run([str(ROOT / "tools" / "install-cluster-tools.sh")], check=True, timeout=600)
    return TOOLS_BIN
