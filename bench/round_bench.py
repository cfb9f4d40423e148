"""CPU time of one commit round on the write path, in one process: no gRPC, no sockets.

The server's own parts, built as the server builds them (``app.Node`` on
the in-memory entry log): the lanes, the sequencer, the Raft driver of a
group of one voter, the in-memory entry log, the applier and the commit
metrics. Each round is one submission of ``--events`` events (100-byte
payloads, ids the server assigns) handed to the write path, then awaited,
one round after the other, so every round is an EVENTS entry of its own.
The figure is the process's CPU time (``time.process_time``) per round and
per event, which other work on the machine does not inflate; the Ready
cycles of the Raft core per round are counted too.

``--src DIR`` imports the server from another checkout's ``server/src``
(its native library built there), so two revisions of the write path can
be measured alternately in one run (``--src`` once per revision, as
separate processes: see ``--compare``). ``--profile`` prints a cProfile of
the rounds of the first size.

    python bench/round_bench.py [--rounds 3000] [--events 2,1000] [--repeat 3]
                                [--compare DIR] [--profile]

Every loop is bounded by its round count.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PAYLOAD = bytes(range(100))
TOPIC = b"bench/round"


def batch_request(events: int) -> bytes:
    """A PublishBatchRequest of ``events`` events (topic and payload only), encoded by hand."""
    from eventstream.server.broker.wire import varint

    def field(number: int, data: bytes) -> bytes:
        return varint(number << 3 | 2) + varint(len(data)) + data

    return field(1, field(2, TOPIC) + field(4, PAYLOAD)) * events


async def measure(sizes: list[int], rounds: int, profile: bool) -> list[dict[str, float]]:
    """Rounds of each size through a fresh node's write path; CPU per round and event."""
    from eventstream.server.app import Node
    from eventstream.server.broker.lanes import Submission
    from eventstream.server.broker.priority import Lane
    from eventstream.server.config import load_config
    from eventstream.server.native import AcceptedEvents

    with tempfile.TemporaryDirectory() as data_dir:
        config = load_config("/dev/null", env={}, overrides={
            "server.host": "127.0.0.1", "storage.engine": "memory",
            "storage.data_dir": data_dir})
        node = Node(config)
        await node.replicated.lead(10)
        node.write_path.start()
        core = node.driver._node  # the Raft core, to count its Ready cycles
        readys = [0]
        ready = core.ready

        def counted() -> object:
            readys[0] += 1
            return ready()

        core.ready = counted  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        write_path = node.write_path
        out = []
        try:
            for k, size in enumerate(sizes):
                accepted = node.encoder.accept(batch_request(size), 1)
                events = accepted.batch_events()
                assert len(events) == size, (len(events), size)

                async def run(count: int, events: AcceptedEvents = events, size: int = size
                              ) -> None:
                    for _ in range(count):
                        future = loop.create_future()
                        write_path.submit([Submission(Lane.BATCH, events, size, future,
                                                      time.time_ns())])
                        await future

                await run(max(10, rounds // 10))  # warm up
                profiler = cProfile.Profile() if profile and k == 0 else None
                before_readys = readys[0]
                started = time.process_time()
                if profiler is not None:
                    profiler.enable()
                await run(rounds)
                if profiler is not None:
                    profiler.disable()
                cpu = time.process_time() - started
                out.append({"events": size, "rounds": rounds,
                            "us_per_round": cpu / rounds * 1e6,
                            "ns_per_event": cpu / rounds / size * 1e9,
                            "readys_per_round": (readys[0] - before_readys) / rounds})
                if profiler is not None:
                    stats = pstats.Stats(profiler, stream=sys.stderr)
                    stats.sort_stats("tottime").print_stats(30)
                    stats.sort_stats("cumulative").print_stats(40)
                    stats.sort_stats("ncalls").print_stats(50)
        finally:
            await node.write_path.stop()
            await node.replicated.stop()
            node.log.close()
    return out


def child(args: argparse.Namespace) -> None:
    """Measure in this process (``--src`` already on the path) and print one JSON line."""
    sizes = [int(s) for s in args.events.split(",")]
    print(json.dumps(asyncio.run(measure(sizes, args.rounds, args.profile))))


def run_child(src: str | None, args: argparse.Namespace) -> list[dict[str, float]]:
    """One measurement in a process of its own (importing the server from ``src``)."""
    command = [sys.executable, __file__, "--child", "--rounds", str(args.rounds),
               "--events", args.events]
    if src:
        command += ["--src", src]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure this tree (and ``--compare``'s) alternately, or one child, or a profile."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--events", default="2,1000", help="events per round, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", help="import the server from this checkout")
    parser.add_argument("--compare", help="another checkout, measured alternately with --src")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, str(Path(args.src).resolve() / "server" / "src"))
    if args.child or args.profile:
        child(args)
        return
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rounds} rounds per size, "
          f"medians of {args.repeat}")
    trees = {"this tree" if not args.src else args.src: args.src}
    if args.compare:
        trees[args.compare] = args.compare
    results: dict[str, list[list[dict[str, float]]]] = {name: [] for name in trees}
    for _ in range(args.repeat):
        for name, src in trees.items():
            results[name].append(run_child(src, args))
    for name, runs in results.items():
        for i, size in enumerate(args.events.split(",")):
            per_round = statistics.median(run[i]["us_per_round"] for run in runs)
            per_event = statistics.median(run[i]["ns_per_event"] for run in runs)
            readys = runs[0][i]["readys_per_round"]
            print(f"{name}: rounds of {size} events: {per_round:.1f} us CPU per round, "
                  f"{per_event:.0f} ns per event, {readys:.2f} Ready cycles per round")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
