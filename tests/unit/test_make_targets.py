"""The README's commands install what they need, and only that, quietly.

`make run` on a fresh clone once failed because the server loads libshardq at
start and nothing built it; later it installed the whole development toolchain
and printed setuptools banners. ``make -n -B`` shows every recipe a target
would run as if nothing were installed yet, without running any.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def recipes(target: str) -> str:
    """What ``make <target>`` would run on a machine where nothing is installed."""
    return subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True).stdout


def pip_installs(dry_run: str) -> list[str]:
    return [line for line in dry_run.splitlines() if "-m pip install" in line]


@pytest.mark.parametrize("target", ["install", "install-run", "run", "test"])
def test_target_builds_the_native_core(target):
    assert "-C server/native/libshardq install" in recipes(target)


def test_run_installs_only_what_the_server_needs():
    installs = pip_installs(recipes("run"))
    assert any("-r requirements/server.txt" in line for line in installs), installs
    assert any("-e sdk/python -e server" in line for line in installs), installs
    assert not any("requirements/dev.txt" in line for line in installs), installs


@pytest.mark.parametrize("target", ["install", "test", "test-unit"])
def test_the_developer_targets_install_the_tools_too(target):
    assert any("-r requirements/dev.txt" in line for line in pip_installs(recipes(target)))


@pytest.mark.parametrize("target", ["run", "install"])
def test_installs_are_quiet(target):
    # -qq: errors only; the editable installs' setuptools banners are warnings.
    for line in pip_installs(recipes(target)):
        assert " -qq " in line, line
    assert "--no-print-directory" in recipes(target)


@pytest.mark.parametrize("target", ["bench", "bench-peers", "bench-priority"])
def test_bench_targets_run_the_priority_benchmark(target):
    dry_run = recipes(target)
    assert "bench/priority_bench.py" in dry_run
    assert "-C bench/loadgen" in dry_run   # it floods with the native load generator


@pytest.mark.parametrize("target", ["test", "tools", "cluster-tools", "bench-cluster"])
def test_the_cluster_tools_are_installed_by_the_targets_that_need_them(target):
    # historycheck, toxiproxy-server, nats-server and nats: the cluster tests and bench-cluster.
    assert "tools/install-cluster-tools.sh" in recipes(target)


def test_bench_cluster_runs_the_cluster_benchmark():
    assert "bench/cluster_bench.py" in recipes("bench-cluster")


def test_bench_tls_installs_the_test_tools_and_runs_the_tls_benchmark():
    dry_run = recipes("bench-tls")
    # The script makes its certificates with cryptography (requirements/dev.txt).
    assert any("-r requirements/dev.txt" in line for line in pip_installs(dry_run))
    assert "-C server/native/libshardq install" in dry_run
    assert ".venv/bin/python bench/tls_bench.py" in dry_run
