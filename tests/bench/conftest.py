"""What the benchmark smoke tests share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bench_dependencies() -> None:
    """requirements/bench.txt in this virtualenv, redis-server on the machine."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r",
                    str(ROOT / "requirements" / "bench.txt")], check=True, timeout=600)
    subprocess.run([str(ROOT / "tools" / "install-peers.sh"), "redis"], check=True, timeout=600)
