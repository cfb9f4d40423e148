"""The priority benchmark runs end to end in its quick mode, with Redis and an A/B.

Speed is not asserted (timed assertions are flaky on a shared machine): this
keeps `make bench-priority` working. One run measures our server at HEAD
(``--baseline``, built from ``git archive``) and the working tree's, each idle
and under the flood, then Redis; every row needs its figures and ratios, the
fairness and A/B tables must be there, and every process the run started must
be gone. NATS runs in the full command only.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[\d,]+(?:\.\d+)?"
ROW = (rf"^\| {{name}} \| {{via}} \| (?:{NUMBER} / ){{{{2}}}}{NUMBER} \| (?:{NUMBER} / ){{{{2}}}}{NUMBER} "
       rf"\| (?:\**{NUMBER}\** / ){{{{2}}}}\**{NUMBER}\** \| {NUMBER} \| \d+% / \d+% \| \d+ \|$")


@pytest.mark.timeout(600)
def test_quick_ab_run_with_redis_prints_every_row_and_writes_report_and_plot(bench_dependencies, tmp_path):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "priority_bench.py"), "--quick", "--peers", "redis",
         "--baseline", "HEAD", "--out", str(tmp_path)], capture_output=True, timeout=540, cwd=ROOT)
    out = completed.stdout.decode()
    print(out)  # the short run's figures, for the log
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    for name, via in (("EventStream at HEAD", "gRPC"), ("EventStream at HEAD", "TCP"),
                      (r"EventStream \(working tree\)", "gRPC"), (r"EventStream \(working tree\)", "TCP"),
                      ("Redis Streams", "its Python client")):
        assert re.search(ROW.format(name=name, via=via), out, re.M), f"no figures for {name} over {via}"
    assert re.search(rf"^\| EventStream at HEAD \| {NUMBER} \| {NUMBER} \| {NUMBER}% \| 25% \|$", out, re.M)
    assert re.search(r"^\| working tree \| 1 \| ", out, re.M)   # the A/B table
    assert re.search(r"where the time goes \(p50 / p99\): sent to its round's start", out)
    assert re.search(r"^Machine: .*load average \(1/5/15 min\) before / after [\d.]+ ", out, re.M)
    report = (tmp_path / "priority.md").read_text()
    assert report.startswith("# Realtime latency while the batch lane floods")
    assert (tmp_path / "priority.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    runs = json.loads((tmp_path / "priority.json").read_text())["runs"]
    assert [run["name"] for run in runs] == ["EventStream at HEAD", "EventStream (working tree)",
                                             "Redis Streams"]
    for run in runs:
        for via, row in run["rows"].items():
            assert row["idle"]["samples"] > 0 and row["flooded"]["samples"] > 0, (run["name"], via)
            assert row["flooded"]["flood_per_s"] > 0, (run["name"], via)   # the flood ran meanwhile
        for pid in [run["pid"], *run["flood_pids"]]:   # every process the run started is gone
            assert not Path(f"/proc/{pid}").exists(), (run["name"], pid)


def test_unknown_peer_is_refused_naming_the_option():
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "priority_bench.py"), "--peers", "redis,kafka"],
        capture_output=True, timeout=120, cwd=ROOT)
    assert completed.returncode == 2
    assert "--peers: unknown kafka" in completed.stderr.decode()
