"""The de-duplication A/B benchmark runs end to end on a small window.

Speed is not asserted (timed assertions are flaky on a shared machine): this
keeps ``bench/dedup_bench.py`` working. One short run measures HEAD
(``--baseline``, built from ``git archive``) against the working tree; both
rows need both figures and a ratio.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_short_run_prints_both_rows():
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dedup_bench.py"), "--baseline", "HEAD",
         "--repeat", "1", "--rounds", "3", "--batches", "1", "--max-ids", "500"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert completed.returncode == 0, completed.stderr[-2000:]
    for row in ("leader (sequence, append, apply)", "follower (append, scan, apply)"):
        assert re.search(rf"\| {re.escape(row)} \| \d+ \| \d+ \| \d+\.\d\d \|", completed.stdout), \
            completed.stdout
    assert "load average" in completed.stdout
