"""The Raft transport benchmark runs end to end (briefly) and prints every row.

No speed is asserted (timed assertions are flaky on a shared machine); this
keeps the benchmark working. The figures of record are in bench/README.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_raft_transport_bench_prints_every_row(tmp_path):
    markdown = tmp_path / "results.md"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "raft_transport_bench.py"), "--entries", "60",
         "--sizes", "1000,100000", "--window", "8", "--repeat", "1", "--markdown", str(markdown)],
        capture_output=True, timeout=300, cwd=ROOT)
    out = completed.stdout.decode()
    print(out)  # the short run's figures, for the log
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    for transport in ("hub", "grpc"):
        for size in ("1,000", "100,000"):
            row = re.search(rf"^\| {transport} \| {size} B \| 60 \| ([\d,]+) \|", out, re.M)
            assert row and int(row.group(1).replace(",", "")) > 0, (transport, size)
    # Over gRPC, several Raft messages share each request of a stream.
    per_request = re.findall(r"^\| grpc \|.*\| ([\d.]+) \| [\d.]+ \|$", out, re.M)
    assert len(per_request) == 2 and all(float(value) > 1 for value in per_request)
    assert markdown.read_text().count("\n| ") == 4  # the four rows after the header
