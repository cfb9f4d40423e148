"""The peer benchmark runs end to end in its quick mode against Redis.

Speed is not asserted (timed assertions are flaky on a shared machine): this
keeps `make bench-peers` working. Redis is the peer because it is cheap to
install (Debian's redis-server); NATS, Kafka and the Pub/Sub emulator run in
the full command only. The test installs what it needs itself: the pinned bench
requirements into this virtualenv and redis-server if it is missing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ["publish single, 100 B", "publish single, 1 KiB", "publish batched x100, 100 B",
             "publish batched x100, 1 KiB", "publish pipelined, 100 B", "publish pipelined, 1 KiB",
             "latency p50 (ms)", "latency p99 (ms)", "latency p999 (ms)",
             "fan-out to 10 subscribers (deliveries/s)", "server RSS at the end (MiB)"]


@pytest.mark.timeout(300)
def test_quick_run_against_redis_prints_every_ratio_and_writes_report_and_plot(
        bench_dependencies, tmp_path):
    env = {**os.environ, "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "peers_bench.py"), "--quick", "--peers", "redis",
         "--out", str(tmp_path)], capture_output=True, timeout=240, env=env, cwd=ROOT)
    out = completed.stdout.decode()
    print(out)  # the short run's figures, for the log
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    for workload in WORKLOADS:  # a figure for both systems and their ratio on every row
        row = re.search(rf"^{re.escape(workload)}\s+([\d,.]+)\s+([\d,.]+)\s+(\d+\.\d\d)$", out, re.M)
        assert row, f"no figures for {workload!r}"
        assert float(row.group(1).replace(",", "")) > 0 and float(row.group(2).replace(",", "")) > 0
    assert re.search(r"^load average \(1/5/15 min\) before / after: [\d.]+ [\d.]+ [\d.]+ / ", out, re.M)
    report = (tmp_path / "peers.md").read_text()
    assert "| workload | EventStream | Redis Streams | ours/redis |" in report
    assert report.count("\n| ") >= len(WORKLOADS) + 1
    assert (tmp_path / "peers.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    results = json.loads((tmp_path / "peers.json").read_text())["results"]
    assert set(results) == {"ours", "redis"}
    for system in results.values():  # every server the run started is gone
        assert not Path(f"/proc/{system['pid']}").exists()


@pytest.mark.timeout(300)
def test_workloads_option_runs_only_the_chosen_workloads(bench_dependencies, tmp_path):
    env = {**os.environ, "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "peers_bench.py"), "--quick", "--peers", "redis",
         "--workloads", "latency", "--out", str(tmp_path)],
        capture_output=True, timeout=240, env=env, cwd=ROOT)
    out = completed.stdout.decode()
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    figures = json.loads((tmp_path / "peers.json").read_text())["results"]
    for system in ("ours", "redis"):
        assert set(figures[system]["figures"]) == {
            "latency p50 (ms)", "latency p99 (ms)", "latency p999 (ms)", "server RSS at the end (MiB)"}
    assert re.search(r"^publish single, 100 B\s+n/a\s+n/a\s+n/a$", out, re.M)
    report = (tmp_path / "peers.md").read_text()  # what each server did during the latency run
    assert re.search(r"^- EventStream: .*, during the latency run \d+% and \d+ fsync rounds of [\d.]+ ms "
                     r"in all, \d+ of them over 5 ms$", report, re.M)
    assert re.search(r"^- Redis Streams: .*, during the latency run \d+%$", report, re.M)


def test_unknown_workload_is_refused_naming_the_option():
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "peers_bench.py"), "--workloads", "latency,bogus"],
        capture_output=True, timeout=120, cwd=ROOT)
    assert completed.returncode == 2
    assert "--workloads: unknown or none bogus" in completed.stderr.decode()
