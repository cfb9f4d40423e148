"""The publish benchmark runs end to end (briefly) and prints every figure.

Speed is not asserted here (timed assertions are flaky on a shared machine);
this keeps the benchmark working, and its short run's table shows up in the
test log. The figures of record come from `make bench` (bench/README.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODES = ["unary Publish (ghz)", "PublishBatch x100 (ghz)", "PublishBatch x100 (py)",
         "PublishStream x100 (ghz)", "PublishStream x100 (py)"]


def test_publish_bench_prints_every_mode_with_a_ratio(tmp_path):
    tools = ROOT / ".tools" / "bin"
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    markdown = tmp_path / "results.md"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "publish_bench.py"), "--duration", "1",
         "--latency-seconds", "1", "--markdown", str(markdown)],
        capture_output=True, timeout=240, env=env, cwd=ROOT)
    out = completed.stdout.decode()
    print(out)  # the short run's figures, for the log
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    for mode in MODES:
        row = re.search(rf"^{re.escape(mode)}\s+([\d,]+)\s+([\d,]+)\s+(\d+\.\d\d)", out, re.M)
        assert row, mode
        assert int(row.group(1).replace(",", "")) > 0 and int(row.group(2).replace(",", "")) > 0
    assert re.search(r"p50 [\d.]+ ms, p99 [\d.]+ ms \(\d+ samples, 0 lost\)", out)
    assert markdown.read_text().count("\n| ") >= len(MODES) + 2
