"""A/B of two server revisions in one run: publish, ingest, replay and fsync per round.

Usage::

    .venv/bin/python bench/ab_bench.py --baseline main --repeat 3 [--markdown FILE]

The server of ``--baseline`` (``git archive``, its native core built) and the
working tree's server are measured alternately, ``--repeat`` times each, on
the same machine in the same run; each row gives both medians and their
ratio (working tree / baseline). Rows:

- gRPC unary ``Publish`` (ghz, 128 in flight), ``PublishBatch`` x100 (ghz, 16
  in flight) and ``PublishStream`` x100 (ghz, 4 streams of 50 requests), on
  the in-memory log (the publish path, as ``publish_bench.py``);
- raw TCP ingest (the C load generator, ``ingest_bench.py``'s TCP row), in memory;
- replay: a subscriber from the earliest offset reads back events stored on
  disk (default settings), after a restart, so they come from the files;
- ``fsync: always`` ``PublishBatch`` x100 with 8 partitions, every batch
  touching all 8 (ghz, 16 in flight), on disk.

Each row is given twice: in events/s, and in events per second of the
server's CPU time while it ran (the figure that stays comparable when other
work shares the machine; see ``PER_CPU``).

Servers are pinned to one core and the clients to the other when two are
available; every process it starts is stopped, also on failure (``--json``
lists the server processes' ids). ``--quick`` is a short run of one repeat
with small loads, for the smoke test (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

import ingest_bench as ib  # noqa: E402
import publish_bench as pb  # noqa: E402
from priority_bench import baseline_source, load_average  # noqa: E402

from eventstream.v1 import common_pb2, publish_pb2, subscribe_pb2  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

REPLAY_EVENTS = 200_000
PARTITIONS_FSYNC = 8


def merged(config: dict, extra: dict) -> dict:
    """``config`` with each section of ``extra`` merged into it (extra's keys win)."""
    out = {section: dict(values) for section, values in config.items()}
    for section, values in extra.items():
        out.setdefault(section, {}).update(values)
    return out


def start(workdir: Path, name: str, source: Path | None, pin: bool, config: dict,
          pids: list[int], extra: dict | None = None) -> ServerProcess:
    """Start one server (the baseline's when ``source`` is set), pinned to the server core.

    ``extra`` is merged into its configuration (``--ours-config``, the working tree's only).
    """
    directory = workdir / name
    directory.mkdir()
    config = merged({"server": {"drain_timeout_seconds": 10.0}, **config}, extra or {})
    server = ServerProcess(directory, config=config,
                           env={"PYTHONPATH": str(source)} if source else None)
    restart(server, pin, pids)
    return server


def restart(server: ServerProcess, pin: bool, pids: list[int]) -> None:
    """Start ``server`` (again), pinned to the server core; its process id goes to ``pids``."""
    server.start()
    assert server.process is not None
    pids.append(server.process.pid)
    if pin:
        subprocess.run(["taskset", "-a", "-p", "-c", str(pb.SERVER_CORE),
                        str(server.process.pid)], check=True, capture_output=True, timeout=10)


PER_CPU = ", events per server CPU-second"
"""Suffix of each row's second figure: events over the server's CPU time
(user + system, all threads) while the row ran, steadier than events/s when
other work shares the machine (though an idle wait costs no CPU, so a server
that is not saturated looks cheaper)."""


def ghz_row(rows: dict[str, float], name: str, server: ServerProcess, ghz: str, call: str,
            data: bytes, concurrency: int, per_request: int, args: argparse.Namespace, pin: bool,
            workdir: Path, stream_messages: int = 0) -> None:
    """One ghz row: its events/s and events per server CPU-second go to ``rows``."""
    assert server.process is not None
    cpu = pb.cpu_seconds(server.process.pid)
    result = pb.run_ghz(ghz, server.target, f"eventstream.v1.PublishService.{call}", data,
                        concurrency, args.duration, per_request, pin, workdir,
                        stream_messages=stream_messages)
    rows[name] = result["events_per_s"]
    rows[name + PER_CPU] = result["requests_ok"] * per_request / max(
        pb.cpu_seconds(server.process.pid) - cpu, 1e-3)


def publish_rows(server: ServerProcess, ghz: str, args: argparse.Namespace, pin: bool,
                 workdir: Path) -> dict[str, float]:
    """gRPC unary, batch and stream publishes and raw TCP ingest (events/s)."""
    unary = publish_pb2.PublishRequest(event=pb.event()).SerializeToString()
    batch = publish_pb2.PublishBatchRequest(
        events=[pb.event() for _ in range(pb.BATCH)]).SerializeToString()
    stream = publish_pb2.PublishStreamRequest(
        sequence=1, events=[pb.event() for _ in range(pb.BATCH)]).SerializeToString()
    rows: dict[str, float] = {}
    ghz_row(rows, "gRPC unary Publish", server, ghz, "Publish", unary, 128, 1, args, pin,
            workdir)
    ghz_row(rows, "gRPC PublishBatch x100", server, ghz, "PublishBatch", batch, 16, pb.BATCH,
            args, pin, workdir)
    ghz_row(rows, "gRPC PublishStream x100", server, ghz, "PublishStream", stream, 4,
            pb.BATCH * 50, args, pin, workdir, stream_messages=50)
    tcp = ib.tcp_run(server, pin, "tcp", args.tcp_events, [])
    rows["TCP ingest"] = tcp["events_per_s"]
    rows["TCP ingest" + PER_CPU] = tcp["events_per_s"] / max(tcp["server_cpu"], 1e-3)
    return rows


async def replay_rate(target: str, events: int) -> float:
    """Events/s of one subscriber reading ``events`` stored events from the earliest offset."""
    import grpc

    from eventstream.v1 import subscribe_pb2_grpc
    async with grpc.aio.insecure_channel(target) as channel:
        stub = subscribe_pb2_grpc.SubscribeServiceStub(channel)
        request = subscribe_pb2.SubscribeRequest(
            patterns=["#"], start_from=subscribe_pb2.START_FROM_EARLIEST)
        started, got = time.perf_counter(), 0
        call = stub.Subscribe(request)
        async for response in call:
            got += len(response.events)
            if got >= events:
                break
        call.cancel()
        return got / (time.perf_counter() - started)


async def fill(target: str, events: int) -> None:
    """Store ``events`` events (batches of 1000, 100-byte payloads)."""
    import grpc

    from eventstream.v1 import publish_pb2_grpc
    request = publish_pb2.PublishBatchRequest(events=[
        common_pb2.Event(topic="bench/replay", payload=pb.PAYLOAD, key=f"k{i % 64}")
        for i in range(1000)])
    async with grpc.aio.insecure_channel(target) as channel:
        stub = publish_pb2_grpc.PublishServiceStub(channel)
        for _ in range(events // 1000):
            await stub.PublishBatch(request, timeout=60)


def fsync_batch_request() -> bytes:
    """A PublishBatch of 100 events whose keys cover all 8 partitions of the fsync row."""
    return publish_pb2.PublishBatchRequest(events=[
        common_pb2.Event(topic="bench/fsync", payload=pb.PAYLOAD, key=f"key-{i}")
        for i in range(pb.BATCH)]).SerializeToString()


def measure(label: str, source: Path | None, ghz: str, args: argparse.Namespace, pin: bool,
            workdir: Path, pids: list[int]) -> dict[str, float]:
    """Every row for one server revision; the ids of the server processes go to ``pids``."""
    extra = args.ours_config if source is None else {}
    print(f"  {label}: publish and ingest ...", file=sys.stderr, flush=True)
    with contextlib.ExitStack() as stack:
        server = start(workdir, f"{label}-mem", source, pin, {"storage": {"engine": "memory"}},
                       pids, extra)
        stack.callback(server.stop, 30.0)
        rows = publish_rows(server, ghz, args, pin, workdir)
    print(f"  {label}: replay ...", file=sys.stderr, flush=True)
    with contextlib.ExitStack() as stack:
        server = start(workdir, f"{label}-replay", source, pin, {}, pids, extra)
        stack.callback(server.stop, 60.0)
        asyncio.run(fill(server.target, args.replay_events))
        server.stop(60.0)
        restart(server, pin, pids)
        assert server.process is not None
        cpu = pb.cpu_seconds(server.process.pid)
        rows["replay from disk"] = asyncio.run(replay_rate(server.target, args.replay_events))
        rows["replay from disk" + PER_CPU] = args.replay_events / max(
            pb.cpu_seconds(server.process.pid) - cpu, 1e-3)
    print(f"  {label}: fsync always, 8 partitions ...", file=sys.stderr, flush=True)
    with contextlib.ExitStack() as stack:
        server = start(workdir, f"{label}-fsync", source, pin,
                       {"storage": {"partitions": PARTITIONS_FSYNC, "fsync": "always"}}, pids,
                       extra)
        stack.callback(server.stop, 60.0)
        ghz_row(rows, "fsync always PublishBatch x100, 8 partitions", server, ghz,
                "PublishBatch", fsync_batch_request(), 16, pb.BATCH, args, pin, workdir)
    return rows


def report(runs: dict[str, list[dict[str, float]]], baseline: str, info: dict) -> str:
    """The table: medians of each row for both revisions and their ratio."""
    lines = [f"A/B in one run: {baseline} vs the working tree, medians of "
             f"{len(runs['new'])} alternating runs each",
             "Machine: " + ", ".join(f"{key}: {value}" for key, value in info.items()), "",
             f"| row | {baseline} | working tree | ratio | runs (new/old) |",
             "|---|---:|---:|---:|---|"]
    for row in runs["new"][0]:
        old = [run[row] for run in runs["old"]]
        new = [run[row] for run in runs["new"]]
        ratio = statistics.median(new) / statistics.median(old)
        each = ", ".join(f"{n / o:.2f}" for n, o in zip(new, old))
        lines.append(f"| {row} | {statistics.median(old):,.0f} | {statistics.median(new):,.0f} "
                     f"| {ratio:.2f} | {each} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Measure both revisions alternately; print (and write) the table."""
    pin = pb.pinning()
    ghz = pb.find_ghz()
    if ghz is None:
        print("ghz not found on PATH or in .tools/bin (make tools installs it)", file=sys.stderr)
        return 2
    ib.build_loadgen()
    info = pb.machine()
    info["pinning"] = "server core 0, clients core 1" if pin else "none"
    if args.ours_config:
        info["working tree's extra configuration"] = json.dumps(args.ours_config)
    load_before = load_average()
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    pids: list[int] = []
    with tempfile.TemporaryDirectory(prefix="es-ab-") as tmp:
        workdir = Path(tmp)
        source = baseline_source(args.baseline, workdir)
        for number in range(args.repeat):
            for label, src in (("old", source), ("new", None)):
                step = workdir / f"{label}{number}"
                step.mkdir()
                runs[label].append(measure(label, src, ghz, args, pin, step, pids))
    info["load average (1/5/15 min) before / after"] = f"{load_before} / {load_average()}"
    text = report(runs, args.baseline, info)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "machine": info, "pids": pids},
                                              indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", metavar="GIT_REF")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per ghz row")
    parser.add_argument("--tcp-events", type=int, default=1_000_000)
    parser.add_argument("--replay-events", type=int, default=REPLAY_EVENTS)
    parser.add_argument("--markdown", metavar="FILE")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--ours-config", type=json.loads, default={}, metavar="JSON",
                        help="configuration sections merged into the working tree's servers "
                             "only, e.g. '{\"queues\": {\"batch_ingest_mark\": 0}}'")
    parser.add_argument("--quick", action="store_true",
                        help="one short repeat with small loads (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.duration, args.tcp_events, args.replay_events = 1, 0.5, 20_000, 2_000
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())

