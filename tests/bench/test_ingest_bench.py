"""The raw ingest benchmark runs end to end (quick mode) and prints every row.

No speed is asserted (timed assertions are flaky on a shared machine); this
keeps `make bench-ingest` working: the C load generator builds and drives the
real server over TCP and UDP, every UDP datagram is accounted for, and Redis
gives its peer row. The figures of record are in bench/README.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TCP_ROWS = ["TCP fire-and-forget, 4 connections",
            "TCP acknowledged, 4 connections, batches of 1000, window 8",
            "Redis XADD -P 64 (50 clients)"]
UDP_ROWS = ["UDP modest rate", "UDP 20,000/s", "UDP 50,000/s for 1 s", "UDP blast"]


def number(cell: str) -> float:
    return float(cell.strip().rstrip("%").replace(",", ""))


@pytest.mark.timeout(300)
def test_ingest_bench_prints_tcp_udp_and_redis_rows(bench_dependencies, tmp_path):
    markdown = tmp_path / "ingest.md"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ingest_bench.py"), "--events", "20000",
         "--quick", "--markdown", str(markdown)], capture_output=True, timeout=280, cwd=ROOT)
    print(completed.stdout.decode())  # the short run's figures, for the log
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    rows = {cells[0]: cells[1:] for line in markdown.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| mode")
            and not line.startswith("| UDP |")
            for cells in [[cell.strip() for cell in line.strip("|").split("|")]]}
    for mode in TCP_ROWS:
        assert number(rows[mode][0]) > 0, mode   # events/s
    for mode in UDP_ROWS:
        sent, _, _, accepted, _, dropped, kernel, _, _ = map(number, rows[mode])
        assert sent > 0, mode
        assert accepted + dropped + kernel == sent, mode   # every datagram accounted for
    assert re.search(r"nproc: \d+", completed.stdout.decode())
