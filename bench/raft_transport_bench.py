"""Entries per second replicated by three Raft drivers in one process, over real gRPC on loopback.

Three ``RaftDriver`` nodes with in-memory logs (``MemoryRaftLog``: no disk),
linked by ``GrpcTransport`` on 127.0.0.1 (each link one Exchange stream),
all on one event loop, so one core does the work of three nodes: every
byte is encoded by the leader and decoded by both followers in this
process. The same drivers on the in-memory fake hub give the figure
without a network, so the transport's own cost shows as the ratio.

A client keeps ``--window`` entries in flight at the leader, one
``propose_many`` call per entry (each entry like one commit round of the
write path, e.g. 1,000 events of 100 bytes), and an entry counts once it is
applied on all three nodes. The logs are compacted as the run goes, so
memory stays flat. Every loop is bounded by its entry count and a time
limit.

    python bench/raft_transport_bench.py [--entries 5000] [--sizes 1000,10000,100000]
        [--window 32] [--repeat 3] [--loop uvloop|asyncio] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent)]

from eventstream.server.cluster import RaftDriver  # noqa: E402
from eventstream.server.raft import EntryKind  # noqa: E402
from eventstream.server.testing.grpc_network import GrpcNetwork  # noqa: E402
from eventstream.server.testing.raft_cluster import LocalCluster  # noqa: E402
from eventstream.server.testing.raft_hub import FakeHub  # noqa: E402

IDS = ("n1", "n2", "n3")
TIME_LIMIT = 120.0
"""Seconds one measurement may take at most."""
COMPACT_EVERY = 64
"""Entries applied everywhere between compactions of every log."""


@dataclass
class Row:
    """One measurement."""

    transport: str
    size: int
    entries: int
    seconds: float
    cpu_seconds: float
    requests: int
    """Exchange requests the leader sent (0 on the hub)."""

    @property
    def per_second(self) -> float:
        return self.entries / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.entries * self.size / self.seconds / 1e6


class CountingApplier:
    """An application that keeps nothing but the applied index (no copy per entry)."""

    def __init__(self) -> None:
        self.applied = 0

    async def apply(self, entries) -> None:
        self.applied = entries[-1].index

    async def restore(self, snapshot) -> None:
        self.applied = snapshot.index

    async def snapshot(self) -> bytes:
        return b""


def compact(cluster: LocalCluster) -> None:
    """Drop every entry all three nodes applied (a snapshot covers them)."""
    floor = min(driver.applied_index for driver in cluster.drivers.values())
    for node_id, driver in cluster.drivers.items():
        storage = cluster.logs[node_id].storage
        if floor > storage.snapshot().index:
            storage.create_snapshot(floor, driver.status().membership, b"")
            storage.compact(floor)


async def measure(transport: str, size: int, entries: int, window: int) -> Row:
    network = GrpcNetwork(IDS, proxied=False) if transport == "grpc" else None
    hub = FakeHub() if network is None else None
    transports = await network.start() if network is not None else {
        node_id: hub.transport(node_id) for node_id in IDS}  # type: ignore[union-attr]
    cluster = LocalCluster(transports, tick_seconds=0.05, make_applier=CountingApplier)
    await cluster.start()
    try:
        leader = await cluster.wait_for_leader()
        payload = os.urandom(size)
        await run(cluster, leader, payload, window, 32)  # warm up
        sent_before = _requests(network, leader)
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        async with asyncio.timeout(TIME_LIMIT):
            await run(cluster, leader, payload, window, entries)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu_seconds = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
        return Row(transport, size, entries, seconds, cpu_seconds, _requests(network, leader) - sent_before)
    finally:
        await cluster.stop()
        if network is not None:
            await network.stop()
        if hub is not None:
            hub.close()


def _requests(network: GrpcNetwork | None, leader: RaftDriver) -> int:
    if network is None:
        return 0
    return sum(stats.sent_requests for stats in network.transports[leader.node_id].link_stats().values())


async def run(cluster: LocalCluster, leader: RaftDriver, payload: bytes, window: int, entries: int) -> None:
    """Propose ``entries`` entries with ``window`` in flight; return once all are applied everywhere."""
    room = asyncio.Semaphore(window)
    term = leader.term
    tasks: set[asyncio.Task[None]] = set()
    last = 0

    async def wait(index: int) -> None:
        try:
            await leader.wait_applied(index, term)
        finally:
            room.release()

    for number in range(entries):
        await room.acquire()
        last = leader.propose_many([(EntryKind.EVENTS, payload)])[-1]
        task = asyncio.ensure_future(wait(last))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if number % COMPACT_EVERY == COMPACT_EVERY - 1:
            compact(cluster)
    await asyncio.gather(*tasks)
    await cluster.wait_applied_everywhere(last, timeout=TIME_LIMIT)
    compact(cluster)


def table(rows: list[Row]) -> str:
    hub = {row.size: row for row in rows if row.transport == "hub"}
    lines = ["| transport | entry size | entries | entries/s | MB/s of entries | CPU s / wall s "
             "| messages per request | gRPC / hub |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        ratio = ""
        if row.transport == "grpc" and row.size in hub:
            ratio = f"{row.per_second / hub[row.size].per_second:.2f}"
        # Each entry is one AppendEntries to each of two followers at least.
        per_request = f"{2 * row.entries / row.requests:.1f}" if row.requests else ""
        lines.append(f"| {row.transport} | {row.size:,} B | {row.entries:,} | {row.per_second:,.0f} "
                     f"| {row.megabytes_per_second:,.0f} | {row.cpu_seconds / row.seconds:.2f} "
                     f"| {per_request} | {ratio} |")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> list[Row]:
    rows = []
    for size in args.sizes:
        entries = max(1, min(args.entries, args.bytes // size))
        for transport in ("hub", "grpc"):
            runs = []
            for _ in range(args.repeat):
                row = await measure(transport, size, entries, args.window)
                print(f"{transport:4} {size:>7} B x {entries:>6}: {row.per_second:9,.0f} entries/s "
                      f"{row.megabytes_per_second:7,.0f} MB/s", flush=True)
                runs.append(row)
            rows.append(sorted(runs, key=lambda row: row.per_second)[len(runs) // 2])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=5000, help="entries per measurement, at most")
    parser.add_argument("--bytes", type=int, default=500_000_000,
                        help="payload bytes per measurement, at most (fewer entries when large)")
    parser.add_argument("--sizes", type=lambda text: [int(part) for part in text.split(",")],
                        default=[1000, 10_000, 100_000], help="entry sizes in bytes, comma-separated")
    parser.add_argument("--window", type=int, default=32, help="entries in flight at the leader")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each row; the median is shown")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        rows = uvloop.run(main_async(args))
    else:
        rows = asyncio.run(main_async(args))
    text = table(rows)
    print()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{args.loop}, window {args.window}, median of {args.repeat}")
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
