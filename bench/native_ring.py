"""Ring push+pop throughput: libshardq natively, through ctypes, and Python queues.

Run from the repository root after `make -C server/native/libshardq install bench`:

    .venv/bin/python bench/native_ring.py

For 100-byte records at batch sizes 1, 64 and 1024 it measures, in one run:
the C benchmark binary (native), ShardQueue through ctypes (push a bytes batch,
pop_into a reused bytearray), the plain-Python reference queue of the tests, collections.deque and
queue.Queue. It prints ns/record and records/s, and the ctypes overhead per
record at batch 64 (ctypes minus native; target under 50 ns). Every loop is
bounded by a record count and by time.
"""

from __future__ import annotations

import argparse
import collections
import os
import queue
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "server" / "src"), str(ROOT / "sdk" / "python" / "src"), str(ROOT)]

from eventstream.server.native import ShardQueue, alloc_buffer, encode_records  # noqa: E402
from tests.support.oracles.ring import PureShardQueue  # noqa: E402

RECORD = 100
BATCHES = (1, 64, 1024)
C_BENCH = ROOT / "server" / "native" / "libshardq" / "build" / "shardq_bench"


def timed(step, per_step: int, max_records: int, max_seconds: float) -> float:  # noqa: ANN001
    """Run ``step`` (which moves ``per_step`` records) until a bound; return ns/record."""
    for _ in range(3):  # warm-up
        step()
    done = 0
    start = time.perf_counter()
    deadline = start + max_seconds
    while done < max_records:
        for _ in range(16):
            step()
        done += 16 * per_step
        if time.perf_counter() > deadline:
            break
    return (time.perf_counter() - start) * 1e9 / done


def bench_shardq(cls, batch: int, max_records: int, seconds: float) -> float:  # noqa: ANN001
    """Push a batch and pop it back through ``cls`` (ShardQueue or PureShardQueue)."""
    q = cls(capacity_records=65536, capacity_bytes=16 << 20)
    records = encode_records([bytes([i % 256]) * RECORD for i in range(batch)])
    out = alloc_buffer(len(records))
    push, pop_into = q.push, q.pop_into

    def step() -> None:
        push(records, shard=0)
        pop_into(out, batch, shard=0)

    try:
        return timed(step, batch, max_records, seconds)
    finally:
        q.destroy()


def bench_deque(batch: int, max_records: int, seconds: float) -> float:
    """Extend a deque with ``batch`` records, then popleft each."""
    d: collections.deque[bytes] = collections.deque()
    records = [bytes([i % 256]) * RECORD for i in range(batch)]
    popleft = d.popleft
    rng = range(batch)

    def step() -> None:
        d.extend(records)
        for _ in rng:
            popleft()

    return timed(step, batch, max_records, seconds)


def bench_queue(batch: int, max_records: int, seconds: float) -> float:
    """put_nowait then get_nowait ``batch`` records on a queue.Queue."""
    q: queue.Queue[bytes] = queue.Queue(maxsize=65536)
    records = [bytes([i % 256]) * RECORD for i in range(batch)]
    put, get = q.put_nowait, q.get_nowait
    rng = range(batch)

    def step() -> None:
        for r in records:
            put(r)
        for _ in rng:
            get()

    return timed(step, batch, max_records, seconds)


def run_c_bench() -> dict[int, float]:
    """Run the C benchmark binary; return ns/record by batch size."""
    if not C_BENCH.exists():
        print("(C bench not built: run `make -C server/native/libshardq bench` first)")
        return {}
    out = subprocess.run([str(C_BENCH)], capture_output=True, text=True, timeout=120, check=True).stdout
    print(out.rstrip())
    found = {}
    for m in re.finditer(r"native\s+batch\s+(\d+)\s+push\+pop\s+([\d.]+) ns/record", out):
        found[int(m.group(1))] = float(m.group(2))
    return found


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time bound per measurement")
    parser.add_argument("--records", type=int, default=2_000_000, help="record bound per measurement")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {RECORD}-byte records")
    native = run_c_bench()
    rows = []
    for batch in BATCHES:
        rows.append((batch, "ctypes ShardQueue", bench_shardq(ShardQueue, batch, args.records, args.seconds)))
        rows.append((batch, "PureShardQueue", bench_shardq(PureShardQueue, batch, args.records // 4, args.seconds)))
        rows.append((batch, "collections.deque", bench_deque(batch, args.records, args.seconds)))
        rows.append((batch, "queue.Queue", bench_queue(batch, args.records // 4, args.seconds)))
    print(f"\n{'batch':>6}  {'implementation':<20} {'ns/record':>10} {'records/s':>14}")
    for batch in BATCHES:
        if batch in native:
            print(f"{batch:>6}  {'native (C)':<20} {native[batch]:>10.1f} {1e9 / native[batch]:>14,.0f}")
        for b, name, ns in rows:
            if b == batch:
                print(f"{batch:>6}  {name:<20} {ns:>10.1f} {1e9 / ns:>14,.0f}")
    ctypes64 = next(ns for b, name, ns in rows if b == 64 and name.startswith("ctypes"))
    if 64 in native:
        overhead = ctypes64 - native[64]
        verdict = "within" if overhead < 50 else "OVER"
        print(f"\nctypes overhead at batch 64: {overhead:.1f} ns/record ({verdict} the 50 ns target)")


if __name__ == "__main__":
    main()
