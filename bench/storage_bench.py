"""Durable publish throughput per fsync policy, and replay throughput from disk.

One run, on 127.0.0.1, for each storage setting (``memory``, then the disk
log with ``fsync: never``, ``interval`` and ``always``): starts a fresh
``eventstream-server``, drives it with pipelined PublishStream load (the
Python client of ``publish_bench.py``: 4 streams, 16 requests of 100 events
of 100 bytes in flight each) and reports acknowledged events/s, server CPU,
and from /metrics the fsync rounds and their mean duration. After the
``always`` run the server is restarted (so its tail cache is empty) and one
subscriber replays every stored event from the earliest offset: events/s and
MB/s of delivered event bytes.

The server is pinned to core 0 and the clients to core 1 when possible. Every
loop is bounded in count and time; every process started is stopped, also on
failure.

    python bench/storage_bench.py [--duration 5] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import grpc  # noqa: E402
import publish_bench  # noqa: E402
from eventstream.v1 import subscribe_pb2  # noqa: E402

from tests.support.durable import end_offsets  # noqa: E402
from tests.support.server import ServerProcess, metric  # noqa: E402

SETTINGS = [("memory", {"engine": "memory"}),
            ("disk, fsync never", {"fsync": "never"}),
            ("disk, fsync interval (1000 ms)", {"fsync": "interval", "fsync_interval_ms": 1000}),
            ("disk, fsync always", {"fsync": "always"})]
SUBSCRIBE_METHOD = "/eventstream.v1.SubscribeService/Subscribe"


def start(server: ServerProcess, pin: bool) -> ServerProcess:
    """Start (or restart) the server, pinned to the server core when ``pin``."""
    server.start()
    if pin:
        assert server.process is not None
        subprocess.run(["taskset", "-a", "-p", "-c", str(publish_bench.SERVER_CORE),
                        str(server.process.pid)], check=True, capture_output=True, timeout=10)
    return server


def publish_load(server: ServerProcess, args: argparse.Namespace, pin: bool) -> dict:
    assert server.process is not None
    pid = server.process.pid
    cpu_before, wall_before = publish_bench.cpu_seconds(pid), time.monotonic()
    result = publish_bench.run_stream(server.target, args.duration, args.streams, args.window, pin)
    wall = time.monotonic() - wall_before
    rounds = metric(server, "eventstream_storage_fsync_duration_seconds_count")
    total = metric(server, "eventstream_storage_fsync_duration_seconds_sum")
    return {"events_per_s": result["events_per_s"], "errors": result["errors"],
            "server_cpu": (publish_bench.cpu_seconds(pid) - cpu_before) / wall,
            "fsync_rounds": rounds, "fsync_mean_ms": 1000 * total / rounds if rounds else None}


async def replay(target: str, total_events: int, timeout: float = 120.0) -> dict:
    """Subscribe from the earliest offset until ``total_events`` arrived."""
    request = subscribe_pb2.SubscribeRequest(
        patterns=["#"], start_from=subscribe_pb2.START_FROM_EARLIEST).SerializeToString()
    async with grpc.aio.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024)]) as channel:
        call = channel.unary_stream(SUBSCRIBE_METHOD)(request)  # bytes in, bytes out
        events = wire_bytes = 0
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                async for raw in call:
                    wire_bytes += len(raw)
                    events += len(subscribe_pb2.SubscribeResponse.FromString(raw).events)
                    if events >= total_events:
                        break
        finally:
            call.cancel()
        seconds = time.monotonic() - started
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds,
            "mb_per_s": wire_bytes / seconds / 1e6}


def table(rows: list[dict], replayed: dict, info: dict[str, str], markdown: bool) -> str:
    lines = [f"{k}: {v}" for k, v in info.items()] + [""]
    head = ["storage", "events/s", "server CPU", "fsync rounds", "mean fsync round"]
    body = [[row["name"], f"{row['events_per_s']:,.0f}", f"{row['server_cpu']:.0%}",
             f"{row['fsync_rounds']:,.0f}" if row["fsync_rounds"] else "-",
             f"{row['fsync_mean_ms']:.2f} ms" if row["fsync_mean_ms"] else "-"]
            for row in rows]
    replay_line = (f"replay from disk (restart, then Subscribe from earliest): "
                   f"{replayed['events']:,} events in {replayed['seconds']:.2f} s = "
                   f"{replayed['events_per_s']:,.0f} events/s, {replayed['mb_per_s']:.1f} MB/s")
    if markdown:
        lines += ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
    else:
        lines += ["  ".join(f"{h:>32}" if i == 0 else f"{h:>16}" for i, h in enumerate(head))]
        lines += ["  ".join(f"{c:>32}" if i == 0 else f"{c:>16}" for i, c in enumerate(cells))
                  for cells in body]
    errors = {row["name"]: row["errors"] for row in rows if row["errors"]}
    return "\n".join(lines + ["", replay_line] + ([f"errors: {errors}"] if errors else []))


def run(args: argparse.Namespace) -> int:
    def terminate(signum, frame):  # stop cleanly (and stop the servers) on SIGTERM
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)
    pin = publish_bench.pinning()
    if pin:
        os.sched_setaffinity(0, {publish_bench.CLIENT_CORE})
    info = publish_bench.machine()
    info["pinning"] = "server on core 0, clients on core 1" if pin else "none"
    info["load"] = (f"PublishStream, {args.streams} streams x {args.window} requests of "
                    f"{publish_bench.BATCH} events (100-byte payloads) in flight, "
                    f"{args.duration:g} s per setting")
    rows = []
    with tempfile.TemporaryDirectory(prefix="es-storage-bench-", dir=args.tmp) as tmp:
        for number, (name, storage) in enumerate(SETTINGS):
            workdir = Path(tmp) / f"server-{number}"
            workdir.mkdir()
            with contextlib.ExitStack() as stack:
                server = start(ServerProcess(workdir, config={
                    "server": {"drain_timeout_seconds": 5.0}, "storage": storage}), pin)
                stack.callback(server.stop, 15.0)
                print(f"measuring {name} for {args.duration:g} s ...", file=sys.stderr, flush=True)
                rows.append({"name": name, **publish_load(server, args, pin)})
                if storage.get("fsync") != "always":
                    continue
                server.stop(15.0)
                start(server, pin)  # a fresh process: the tail cache is empty, reads go to files
                stored = sum(end_offsets(server))
                print(f"replaying {stored:,} events ...", file=sys.stderr, flush=True)
                replayed = asyncio.run(replay(server.target, stored))
    print(table(rows, replayed, info, markdown=False))
    if args.markdown:
        Path(args.markdown).write_text(table(rows, replayed, info, markdown=True) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="eventstream storage benchmark")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per setting")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--tmp", help="directory for the data dirs (default: the system's)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as markdown")
    args = parser.parse_args(argv)
    args.duration = min(max(args.duration, 0.5), 120.0)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
