"""The README's commands build what the server needs to start.

`make run` on a fresh clone once failed because the server loads libshardq at
start and nothing built it; `make -n` shows the recipes a target would run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize("target", ["install", "run"])
def test_target_builds_the_native_core(target):
    dry_run = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True,
                             timeout=60, check=True).stdout
    assert "-C server/native/libshardq install" in dry_run


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize("target", ["bench", "bench-peers", "bench-priority"])
def test_bench_targets_run_the_priority_benchmark(target):
    dry_run = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True,
                             timeout=60, check=True).stdout
    assert "bench/priority_bench.py" in dry_run
    assert "-C bench/loadgen" in dry_run   # it floods with the native load generator
