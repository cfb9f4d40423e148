"""The A/B benchmark of two server revisions runs end to end in its quick mode.

Speed is not asserted (timed assertions are flaky on a shared machine): this
keeps ``bench/ab_bench.py`` working. One quick run measures the server at
HEAD (``--baseline``, built from ``git archive``) and the working tree's
(with ``--ours-config``, which the machine line names);
every row needs both figures (events/s and events per server CPU-second)
and a ratio, the machine line its load
average, and every server process the run started must be gone.
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
NUMBER = r"[\d,]+(?:\.\d+)?"
RATES = ["gRPC unary Publish", "gRPC PublishBatch x100", "gRPC PublishStream x100", "TCP ingest",
         "replay from disk", "fsync always PublishBatch x100, 8 partitions"]
ROWS = RATES + [f"{row}, events per server CPU-second" for row in RATES]
EXTRA = {"queues": {"batch_ingest_mark": 0}}
"""Configuration the quick run gives the working tree's servers (``--ours-config``)."""


@pytest.mark.timeout(600)
def test_quick_ab_run_prints_every_row_and_leaves_no_process(tmp_path):
    tools = ROOT / ".tools" / "bin"
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    report = tmp_path / "ab.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ab_bench.py"), "--quick", "--baseline", "HEAD",
         "--json", str(report), "--markdown", str(tmp_path / "ab.md"),
         "--ours-config", json.dumps(EXTRA)],
        capture_output=True, timeout=540, env=env, cwd=ROOT)
    out = completed.stdout.decode()
    print(out)  # the short run's figures, for the log
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    for row in ROWS:
        assert re.search(rf"^\| {re.escape(row)} \| {NUMBER} \| {NUMBER} \| {NUMBER} \| "
                         rf"{NUMBER} \|$", out, re.M), f"no figures for {row}"
    assert re.search(r"^Machine: .*load average \(1/5/15 min\) before / after: [\d.]+ ", out, re.M)
    assert f"working tree's extra configuration: {json.dumps(EXTRA)}" in out
    assert (tmp_path / "ab.md").read_text().strip() == out.strip()
    result = json.loads(report.read_text())
    assert [sorted(run) for run in result["runs"]["old"] + result["runs"]["new"]] == \
        [sorted(ROWS)] * 2
    # Per revision: the in-memory server, the replay server twice (restarted), the fsync one.
    assert len(result["pids"]) == 8
    for pid in result["pids"]:
        assert not Path(f"/proc/{pid}").exists(), pid


def test_an_unknown_baseline_is_refused_naming_it(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ab_bench.py"), "--quick", "--baseline",
         "no-such-revision"], capture_output=True, timeout=120, cwd=ROOT)
    assert completed.returncode != 0
    assert "--baseline no-such-revision" in completed.stderr.decode()
