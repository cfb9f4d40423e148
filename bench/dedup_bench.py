"""CPU per event of the write path's rounds when every event carries a producer id, A/B in one run.

Usage::

    .venv/bin/python bench/dedup_bench.py --baseline main [--repeat 3] [--rounds 300]

In-process, no sockets: the server's own sequencer, in-memory entry log and
applier (the leader's path: the sequencer's rows, no scan) and, on a second
applier, a follower's (each entry scanned). Each round takes ``--batches``
``PublishBatch`` requests of 100 events, every event with a new id (as the
Python SDK gives them), accepted before the clock starts; the clock is
``time.process_time`` of the process, so other work on the machine does not
count. The window is filled to its bound (``--max-ids``, by default the
configuration's 1,000,000) first, so every round also forgets as many ids as
it adds.

The code of ``--baseline`` (``git archive``, its native core built) and the
working tree's are measured alternately, ``--repeat`` times each, each in a
process of its own; the table gives the medians (ns of CPU per event) and
their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EVENTS_PER_BATCH = 100
MAX_IDS = 1_000_000
WINDOW_NS = 120 * 10**9


def child(rounds: int, batches: int, max_ids: int, with_ids: bool) -> dict[str, float]:
    """Run the rounds in this process; return ns of CPU per event, leader and follower."""
    import asyncio

    from eventstream.server.broker.applier import EntryApplier
    from eventstream.server.broker.group_state import GroupTable
    from eventstream.server.broker.lanes import submissions_of
    from eventstream.server.broker.sequencer import Sequencer
    from eventstream.server.cluster.entry_raft_log import entries_of
    from eventstream.server.native import EventEncoder, Limits, NativeWire
    from eventstream.server.storage.memory_entry_log import MemoryEntryLog
    from eventstream.v1 import common_pb2, publish_pb2

    try:
        from eventstream.server.native import DedupTable as Window
    except ImportError:  # the server before the native table
        from eventstream.server.broker.dedup import DedupWindow as Window  # type: ignore

    partitions = 8
    encoder = EventEncoder(Limits(255, 1 << 20, 255, 255, 8), b"0123456789abcdef-")
    numbers = iter(range(10**9))

    def request() -> bytes:
        return publish_pb2.PublishBatchRequest(events=[
            common_pb2.Event(topic="orders/eu", payload=b"x" * 100,
                             id=f"3f2c9a7e-5b1d-4c8e-9f00-{next(numbers):012d}" if with_ids else "",
                             key=f"customer-{n}")
            for n in range(EVENTS_PER_BATCH)]).SerializeToString()

    def node() -> tuple[MemoryEntryLog, EntryApplier]:
        event_log = MemoryEntryLog(partitions, 1 << 40)
        return event_log, EntryApplier(event_log, NativeWire(), Window(WINDOW_NS, max_ids),
                                       GroupTable(partitions))

    (leader_log, leader), (follower_log, follower) = node(), node()
    sequencer = Sequencer(encoder, NativeWire(), leader.window, partitions, 0)
    sequencer.activate(1, [0] * partitions, 0, [])
    clock = 10**18
    index = 0

    async def one_round(taken: list) -> tuple[float, float]:
        nonlocal index, clock
        index += 1
        clock += 1000
        start = time.process_time()
        round_ = sequencer.sequence(taken, index, 1, clock)
        await leader_log.append(round_.batch)
        leader.expect(index, 1, round_.rows)
        await leader.apply(entries_of(round_.batch))
        sequencer.applied(index)
        middle = time.process_time()
        await follower_log.append(round_.batch)
        await follower.apply(entries_of(round_.batch))
        end = time.process_time()
        return middle - start, end - middle

    async def run() -> dict[str, float]:
        fill = max_ids // (batches * EVENTS_PER_BATCH) + 1 if with_ids else 10
        for _ in range(fill):  # the window at its bound
            taken = [s for _ in range(batches) for s in submissions_of(encoder.accept(request(), 1))]
            await one_round(taken)
        leader_cpu = follower_cpu = 0.0
        for _ in range(rounds):
            taken = [s for _ in range(batches) for s in submissions_of(encoder.accept(request(), 1))]
            lead, follow = await one_round(taken)
            leader_cpu += lead
            follower_cpu += follow
        events = rounds * batches * EVENTS_PER_BATCH
        return {"leader_ns_per_event": leader_cpu / events * 1e9,
                "follower_ns_per_event": follower_cpu / events * 1e9,
                "window_ids": float(len(leader.window))}

    return asyncio.run(run())


def measure(source: Path | None, args: argparse.Namespace) -> dict[str, float]:
    """One child process over ``source`` (None: the working tree)."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    done = subprocess.run([sys.executable, __file__, "--child", "--rounds", str(args.rounds),
                           "--batches", str(args.batches), "--max-ids", str(args.max_ids),
                           *(["--without-ids"] if args.without_ids else [])],
                          env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments; run the A/B (or, with ``--child``, one side)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--batches", type=int, default=4, help="PublishBatch x100 per round")
    parser.add_argument("--max-ids", type=int, default=MAX_IDS,
                        help="the window's bound (filled before the clock starts)")
    parser.add_argument("--without-ids", action="store_true",
                        help="events without producer ids (the server assigns them), for comparison")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.rounds, args.batches, args.max_ids, not args.without_ids)))
        return 0
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="es-dedup-") as tmp:
        bench = Path(__file__).resolve().parent
        sys.path[:0] = [str(bench), str(bench.parent)]
        from priority_bench import baseline_source
        source = baseline_source(args.baseline, Path(tmp))
        for _ in range(args.repeat):
            runs["old"].append(measure(source, args))
            runs["new"].append(measure(None, args))
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    ids = "no event with an id" if args.without_ids else "every event with an id"
    print(f"rounds of {args.batches} x PublishBatch x{EVENTS_PER_BATCH}, {ids}; "
          f"{args.rounds} rounds per run, {args.repeat} runs each; median ns of CPU per event")
    print("| path | old | new | new / old |\n| --- | ---: | ---: | ---: |")
    for key, name in (("leader_ns_per_event", "leader (sequence, append, apply)"),
                      ("follower_ns_per_event", "follower (append, scan, apply)")):
        old = statistics.median(r[key] for r in runs["old"])
        new = statistics.median(r[key] for r in runs["new"])
        print(f"| {name} | {old:.0f} | {new:.0f} | {new / old:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
