"""The commit-round benchmark runs (briefly), also against a second checkout, and prints its figures.

No speed is asserted (timed assertions are flaky on a shared machine); this
keeps the benchmark working. The figures of record are in bench/README.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_round_bench_prints_cpu_per_round_of_each_size_for_both_checkouts():
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "round_bench.py"), "--rounds", "40",
         "--events", "2,50", "--repeat", "1", "--compare", str(ROOT)],
        capture_output=True, timeout=240, cwd=ROOT)
    out = completed.stdout.decode()
    print(out)  # the short run's figures, for the log
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    rows = re.findall(r"^(.+): rounds of (\d+) events: ([\d.]+) us CPU per round, \d+ ns per "
                      r"event, ([\d.]+) Ready cycles per round$", out, re.M)
    assert sorted((tree == "this tree", int(size)) for tree, size, _, _ in rows) == [
        (False, 2), (False, 50), (True, 2), (True, 50)], out
    for _, _, cpu, readys in rows:
        assert float(cpu) > 0 and float(readys) >= 1
