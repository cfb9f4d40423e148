"""EventStream side by side with NATS JetStream, Redis Streams, the Pub/Sub emulator and Kafka.

One run (`make bench-peers`) starts our server (one node, disk log, fsync
interval) and each peer on 127.0.0.1, one after another, each pinned to core 0
with its load client on core 1 (as bench/publish_bench.py does), and measures:

  * publish throughput, 100-byte and 1 KiB payloads: single (one event per
    request, acknowledged), batched (100 events per request) and pipelined
    (many requests in flight on one connection), each system driven by its own
    load tool: ours by publish_bench.py's clients (ghz, and its raw-bytes
    PublishBatch/PublishStream client), NATS by `nats bench`, Redis by
    redis-benchmark, the Pub/Sub emulator like ours (ghz through the same
    run_ghz for single publishes, the same raw-bytes unary client for
    batches), Kafka by its ProducerPerformance tool; batches of 100 also
    from ghz for both ours and the emulator;
  * publish-to-delivery latency p50/p99/p999 at a fixed moderate rate and
    fan-out to 10 subscribers, the same Python harness on every system
    (bench/peer_clients.py);
  * the server's resident memory (RSS) at the end.

It prints a table with the ratio ours/peer per workload and writes a markdown
report and a PNG plot to bench/results/ (or --out). A peer that cannot run
here is reported as unavailable with the reason, and the run goes on.

    python bench/peers_bench.py [--peers nats,redis,pubsub,kafka] [--workloads throughput,latency,fanout]
                                [--duration 4] [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import publish_bench as pb  # noqa: E402  (also puts the repository root on sys.path)

import peer_clients  # noqa: E402
import peer_servers  # noqa: E402

SIZES = {"100 B": 100, "1 KiB": 1024}
BATCH = 100
SINGLE_CONCURRENCY = 32  # requests (or clients) in flight for the one-event-per-request rows
BATCH_CONCURRENCY = 16   # batch requests in flight
STREAMS, WINDOW = 4, 16  # our pipelined client: 4 streams x 16 requests of 100 events
NATS_ASYNC_WINDOW = 500  # `nats bench js pub async --batch`: publishes in flight per client
REDIS_PIPELINE, REDIS_PIPELINED_CLIENTS = 64, 4
KAFKA_PIPELINED_BATCH_BYTES = 256 * 1024
FANOUT_SUBSCRIBERS = 10
PEERS = ("nats", "redis", "pubsub", "kafka")
KINDS = ("throughput", "latency", "fanout")  # --workloads; the RSS row is always measured
NAMES = {"ours": "EventStream", "nats": "NATS JetStream", "redis": "Redis Streams",
         "pubsub": "Pub/Sub emulator", "kafka": "Kafka"}
RESULTS = Path(__file__).resolve().parent / "results"
PUBSUB_TOPIC = f"{peer_clients.PUBSUB_PROJECT}/topics/throughput"

THROUGHPUT = [f"publish {kind}, {size}" for kind in ("single", f"batched x{BATCH}", "pipelined")
              for size in SIZES]
GHZ_BATCH = f"publish batched x{BATCH} via ghz, 100 B"
LATENCY = ["latency p50 (ms)", "latency p99 (ms)", "latency p999 (ms)"]
FANOUT = f"fan-out to {FANOUT_SUBSCRIBERS} subscribers (deliveries/s)"
RSS = "server RSS at the end (MiB)"
WORKLOADS = [*THROUGHPUT, GHZ_BATCH, *LATENCY, FANOUT, RSS]
LOWER_IS_BETTER = {*LATENCY, RSS}


# --------------------------------------------------------------------------- load tools

def calibrated(run_count: Callable[[int], float], first: int, duration: float, quick: bool,
               cap: int = 5_000_000) -> float:
    """Events/s of a count-bounded tool, run long enough for ``duration``: a short run with
    ``first`` events gives the rate, a second run sends rate x duration (within [first, cap])."""
    rate = run_count(first)
    if quick or rate <= 0:
        return rate
    return run_count(int(min(cap, max(first, rate * duration))))


def tool_run(command: list[str], pin: bool, timeout: float) -> str:
    """Run a load tool on the client core; its output, or an error with its last words."""
    done = subprocess.run(pb.pinned(pb.CLIENT_CORE, command, pin), capture_output=True,
                          timeout=timeout)
    output = (done.stdout + done.stderr).decode(errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({done.returncode}): {output[-600:]}")
    return output


def raw_client(target: str, mode: str, size: int, duration: float, streams: int, window: int,
               pin: bool) -> float:
    """publish_bench.py's raw-bytes client with ``size``-byte payloads, in its own process on
    the client core (see ``--raw-client``): ``stream_client`` against ours (mode "stream" or
    "batch"), the same ``unary_client`` loop against the emulator (mode "pubsub-batch")."""
    command = [sys.executable, str(Path(__file__).resolve()), "--raw-client", target,
               "--client-mode", mode, "--size", str(size), "--duration", str(duration),
               "--streams", str(streams), "--window", str(window)]
    result = json.loads(tool_run(command, pin, duration + 60).strip().splitlines()[-1])
    if result["sampled_errors"]:
        raise RuntimeError(f"the server refused {result['sampled_errors']} sampled events")
    return result["events_per_s"]


async def pubsub_batch_client(target: str, size: int, duration: float, workers: int) -> dict:
    """The emulator's Publish of BATCH messages, pre-encoded, through the loop that drives our
    PublishBatch (publish_bench.unary_client); every 20th answer's message ids are counted."""
    pb2, _ = peer_clients.pubsub_modules()
    request = pb2.PublishRequest(topic=PUBSUB_TOPIC, messages=[
        pb2.PubsubMessage(data=b"x" * size)] * BATCH).SerializeToString()

    def sample(raw: bytes) -> tuple[int, int]:
        ids = len(pb2.PublishResponse.FromString(raw).message_ids)
        return ids, BATCH - ids
    return await pb.unary_client(target, "/google.pubsub.v1.Publisher/Publish", request, workers,
                                 duration, sample)


@contextlib.contextmanager
def ghz_proto(proto: Path, include: Path):
    """Point publish_bench.run_ghz at another service's .proto for the duration."""
    saved = pb.PROTO, pb.ROOT
    with tempfile.TemporaryDirectory(prefix="es-ghz-root-") as shim:
        # run_ghz passes `-i ROOT/api`: a root whose api/ is the include dir.
        (Path(shim) / "api").symlink_to(include)
        pb.PROTO, pb.ROOT = proto, Path(shim)
        try:
            yield
        finally:
            pb.PROTO, pb.ROOT = saved


def ours_throughput(address: str, ghz: str, args: argparse.Namespace, pin: bool,
                    workdir: Path) -> dict[str, float]:
    from eventstream.v1 import common_pb2
    results: dict[str, float] = {}
    for label, size in SIZES.items():
        event = common_pb2.Event(topic=pb.TOPIC, payload=b"x" * size)
        unary = pb.publish_pb2.PublishRequest(event=event).SerializeToString()
        if not results:  # warm-up, not reported (as for the emulator's JIT)
            pb.run_ghz(ghz, address, "eventstream.v1.PublishService.Publish", unary, SINGLE_CONCURRENCY,
                       1.0, 1, pin, workdir)
        results[f"publish single, {label}"] = pb.run_ghz(
            ghz, address, "eventstream.v1.PublishService.Publish", unary, SINGLE_CONCURRENCY,
            args.duration, 1, pin, workdir)["events_per_s"]
        results[f"publish batched x{BATCH}, {label}"] = raw_client(
            address, "batch", size, args.duration, 1, BATCH_CONCURRENCY, pin)
        results[f"publish pipelined, {label}"] = raw_client(
            address, "stream", size, args.duration, STREAMS, WINDOW, pin)
    batch = pb.publish_pb2.PublishBatchRequest(events=[
        common_pb2.Event(topic=pb.TOPIC, payload=b"x" * 100)] * BATCH).SerializeToString()
    results[GHZ_BATCH] = pb.run_ghz(ghz, address, "eventstream.v1.PublishService.PublishBatch", batch,
                                    BATCH_CONCURRENCY, args.duration, BATCH, pin, workdir)["events_per_s"]
    return results


def pubsub_throughput(address: str, ghz: str, args: argparse.Namespace, pin: bool,
                      workdir: Path) -> dict[str, float]:
    """Like ours: single publishes from ghz through run_ghz, batches from the raw-bytes client
    (and once from ghz, the GHZ_BATCH row); the emulator's API has no streaming publish."""
    pb2, grpc_module = peer_clients.pubsub_modules()

    async def create() -> None:
        async with pb.grpc.aio.insecure_channel(address) as channel:
            await grpc_module.PublisherStub(channel).CreateTopic(pb2.Topic(name=PUBSUB_TOPIC), timeout=10)
    asyncio.run(create())
    results: dict[str, float] = {}
    call = "google.pubsub.v1.Publisher.Publish"

    def ghz_run(size: int, count: int, concurrency: int, duration: float) -> float:
        request = pb2.PublishRequest(topic=PUBSUB_TOPIC, messages=[
            pb2.PubsubMessage(data=b"x" * size)] * count).SerializeToString()
        with ghz_proto(peer_clients.PUBSUB_PROTO, peer_clients.PUBSUB_PROTO_ROOT):
            run = pb.run_ghz(ghz, address, call, request, concurrency, duration, count, pin, workdir)
        if run["errors"]:
            raise RuntimeError(f"the emulator answered errors: {run['errors']}")
        return run["events_per_s"]

    ghz_run(100, 1, SINGLE_CONCURRENCY, 1.0)  # warm-up of the JVM, not reported
    for label, size in SIZES.items():
        results[f"publish single, {label}"] = ghz_run(size, 1, SINGLE_CONCURRENCY, args.duration)
        results[f"publish batched x{BATCH}, {label}"] = raw_client(
            address, "pubsub-batch", size, args.duration, 1, BATCH_CONCURRENCY, pin)
    results[GHZ_BATCH] = ghz_run(100, BATCH, BATCH_CONCURRENCY, args.duration)
    return results


def nats_throughput(address: str, args: argparse.Namespace, pin: bool) -> dict[str, float]:
    """`nats bench js pub`: sync (each publish waits for its ack), fast batches (non-atomic
    batches of 100 with one flow-control ack per batch, like PublishBatch), async (pipelined)."""
    nats = peer_servers.find_tool("nats")
    assert nats is not None
    results: dict[str, float] = {}
    runs = 0

    def bench(kind: str, extra: list[str], size: int) -> Callable[[int], float]:
        def run_count(count: int) -> float:
            nonlocal runs
            runs += 1  # a stream per run: `--create` refuses another config for the same name
            stream = f"bench{runs}"
            output = tool_run([nats, "-s", f"nats://{address}", "bench", "js", "pub", kind, stream,
                               "--stream", stream, "--create", "--storage", "file", "--purge",
                               "--msgs", str(count), "--size", f"{size}B", "--no-progress", *extra],
                              pin, 120)
            rates = re.findall(r"stats: ([\d,]+) msgs/sec", output)
            if not rates:
                raise RuntimeError(f"nats bench printed no rate: {output[-400:]}")
            return float(rates[-1].replace(",", ""))  # the aggregate comes last
        return run_count

    for label, size in SIZES.items():
        results[f"publish single, {label}"] = calibrated(
            bench("sync", ["--clients", str(SINGLE_CONCURRENCY)], size),
            SINGLE_CONCURRENCY * 100, args.duration, args.quick)
        results[f"publish batched x{BATCH}, {label}"] = calibrated(
            bench("fast", ["--batch", str(BATCH)], size), 20_000, args.duration, args.quick)
        results[f"publish pipelined, {label}"] = calibrated(
            bench("async", ["--batch", str(NATS_ASYNC_WINDOW)], size), 20_000, args.duration, args.quick)
    return results


def redis_throughput(address: str, args: argparse.Namespace, pin: bool) -> dict[str, float]:
    """redis-benchmark: XADD one at a time, a Lua script adding 100 entries per call, XADD -P 64."""
    tool = peer_servers.find_tool("redis-benchmark")
    assert tool is not None
    host, port = address.rsplit(":", 1)
    results: dict[str, float] = {}
    batch_script = f"for i=1,{BATCH} do redis.call('XADD',KEYS[1],'*','d',ARGV[1]) end return {BATCH}"

    def bench(clients: int, pipeline: int, command: list[str], per_request: int) -> Callable[[int], float]:
        def run_count(count: int) -> float:
            output = tool_run([tool, "-h", host, "-p", port, "-c", str(clients), "-P", str(pipeline),
                               "-n", str(max(1, count // per_request)), "--csv", *command], pin, 120)
            row = [line for line in output.splitlines() if line.startswith('"') and '"rps"' not in line]
            if not row:
                raise RuntimeError(f"redis-benchmark printed no rate: {output[-400:]}")
            return float(row[-1].split('","')[1]) * per_request
        return run_count

    for label, size in SIZES.items():
        payload = "x" * size
        results[f"publish single, {label}"] = calibrated(
            bench(SINGLE_CONCURRENCY, 1, ["XADD", "single", "*", "d", payload], 1),
            5_000, args.duration, args.quick)
        results[f"publish batched x{BATCH}, {label}"] = calibrated(
            bench(BATCH_CONCURRENCY, 1, ["EVAL", batch_script, "1", "batched", payload], BATCH),
            50_000, args.duration, args.quick)
        results[f"publish pipelined, {label}"] = calibrated(
            bench(REDIS_PIPELINED_CLIENTS, REDIS_PIPELINE, ["XADD", "pipelined", "*", "d", payload], 1),
            50_000, args.duration, args.quick)
    return results


def kafka_modes(size: int) -> dict[str, list[str]]:
    """ProducerPerformance producer settings per row, every one acks=all. Idempotence is off
    where more than its 5 requests may be in flight (to match the other systems' windows)."""
    unordered = ["enable.idempotence=false"]
    return {
        # batch.size=0: one record per batch, so one record per produce request.
        "single": ["linger.ms=0", "batch.size=0", *unordered,
                   f"max.in.flight.requests.per.connection={SINGLE_CONCURRENCY}"],
        # Room for 100 records (batch header + a record's own header of about 10 bytes each).
        f"batched x{BATCH}": ["linger.ms=5", f"batch.size={61 + BATCH * (size + 12)}", *unordered,
                              f"max.in.flight.requests.per.connection={BATCH_CONCURRENCY}"],
        # The producer as tuned for throughput: large batches, its default 5 requests in flight.
        "pipelined": ["linger.ms=10", f"batch.size={KAFKA_PIPELINED_BATCH_BYTES}"],
    }


def kafka_throughput(address: str, args: argparse.Namespace, pin: bool) -> dict[str, float]:
    """Kafka's own load tool, ProducerPerformance (kafka-producer-perf-test), one producer,
    a one-partition topic per row (created on first use; the calibration run takes that)."""
    classpath = peer_servers.kafka_classpath()
    results: dict[str, float] = {}

    def bench(topic: str, settings: list[str], size: int) -> Callable[[int], float]:
        def run_count(count: int) -> float:
            output = tool_run(["java", "-Xmx512m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                               "-cp", classpath, "org.apache.kafka.tools.ProducerPerformance",
                               "--topic", topic, "--num-records", str(count), "--record-size", str(size),
                               "--throughput", "-1", "--producer-props", f"bootstrap.servers={address}",
                               "acks=all", *settings], pin, 120)
            rates = re.findall(r"records sent, ([\d.]+) records/sec", output)
            if not rates:
                raise RuntimeError(f"ProducerPerformance printed no rate: {output[-400:]}")
            return float(rates[-1])  # the summary comes last
        return run_count

    for label, size in SIZES.items():
        for kind, settings in kafka_modes(size).items():
            topic = f"{kind.split()[0]}-{size}"
            first = SINGLE_CONCURRENCY * 100 if kind == "single" else 50_000
            results[f"publish {kind}, {label}"] = calibrated(
                bench(topic, settings, size), first, args.duration, args.quick)
    return results


# --------------------------------------------------------------------------- one system

FSYNC = "eventstream_storage_fsync_duration_seconds"


def fsync_rounds(server: object) -> tuple[float, float, float]:
    """Our server's fsync rounds so far: (count, seconds in all, count over 5 ms)."""
    from tests.support.server import metric
    count = metric(server, f"{FSYNC}_count")
    return count, metric(server, f"{FSYNC}_sum"), count - metric(server, f"{FSYNC}_bucket", le="0.005")


def end_to_end(name: str, running: peer_servers.Running, args: argparse.Namespace
               ) -> tuple[dict[str, float], dict[str, float]]:
    """Latency and fan-out (those of them in --workloads) through bench/peer_clients.py,
    on this process's event loop. Also returns what the server did during the latency run:
    its CPU share and, for ours, its fsync rounds (the "Systems" notes of the report)."""
    notes: dict[str, float] = {}

    async def measure() -> dict[str, float]:
        figures: dict[str, float] = {}
        endpoint = peer_clients.ENDPOINTS[name](running.address)
        await endpoint.connect()
        try:
            if "latency" in args.workloads:
                cpu, started = pb.cpu_seconds(running.pid), time.monotonic()
                fsyncs = fsync_rounds(running.metrics) if running.metrics else None
                lat = await peer_clients.latency(endpoint, args.latency_rate, args.latency_seconds)
                notes["latency_server_cpu"] = (pb.cpu_seconds(running.pid) - cpu) / (time.monotonic() - started)
                if fsyncs:
                    after = fsync_rounds(running.metrics)
                    notes.update(zip(("latency_fsync_rounds", "latency_fsync_seconds", "latency_fsync_over_5ms"),
                                     (b - a for a, b in zip(fsyncs, after))))
                if lat["lost"]:
                    print(f"  {name}: latency lost {lat['lost']} of {lat['samples'] + lat['lost']}",
                          file=sys.stderr)
                figures.update({LATENCY[0]: lat["p50_ms"], LATENCY[1]: lat["p99_ms"],
                                LATENCY[2]: lat["p999_ms"]})
            if "fanout" in args.workloads:
                fan = await peer_clients.fanout(endpoint, FANOUT_SUBSCRIBERS, args.fanout_events)
                if fan["delivered"] < fan["wanted"]:
                    print(f"  {name}: fan-out delivered {fan['delivered']} of {fan['wanted']}",
                          file=sys.stderr)
                figures[FANOUT] = fan["deliveries_per_s"]
        finally:
            await endpoint.close()
        return figures
    return run_async(measure()), notes


def run_async(coroutine):
    try:
        import uvloop
        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


def measure_system(name: str, args: argparse.Namespace, ghz: str, pin: bool, workdir: Path) -> dict:
    """Start one system, run every workload on it, read its RSS, stop it."""
    with contextlib.ExitStack() as stack:
        starter = peer_servers.start_ours if name == "ours" else peer_servers.STARTERS[name]
        running = starter(stack, workdir, pin)
        print(f"{NAMES[name]} ({running.version}) on {running.address}", file=sys.stderr, flush=True)
        before = pb.cpu_seconds(running.pid), time.monotonic()
        if "throughput" not in args.workloads:
            figures = {}
        elif name == "ours":
            figures = ours_throughput(running.address, ghz, args, pin, workdir)
        elif name == "pubsub":
            figures = pubsub_throughput(running.address, ghz, args, pin, workdir)
        elif name == "nats":
            figures = nats_throughput(running.address, args, pin)
        elif name == "kafka":
            figures = kafka_throughput(running.address, args, pin)
        else:
            figures = redis_throughput(running.address, args, pin)
        notes: dict[str, float] = {}
        if {"latency", "fanout"} & set(args.workloads):
            more, notes = end_to_end(name, running, args)
            figures.update(more)
        figures[RSS] = peer_servers.rss_bytes(running.pid) / 2**20
        server_cpu = (pb.cpu_seconds(running.pid) - before[0]) / (time.monotonic() - before[1])
        return {"figures": figures, "version": running.version, "server_cpu": server_cpu, "notes": notes,
                "pid": running.pid}


# --------------------------------------------------------------------------- report

def ratio(workload: str, ours: float | None, peer: float | None) -> float | None:
    return ours / peer if ours and peer else None


def fmt(value: float | None, workload: str) -> str:
    if value is None:
        return "n/a"
    if workload in LOWER_IS_BETTER:
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def table(results: dict[str, dict], markdown: bool) -> str:
    systems = ["ours", *[p for p in PEERS if p in results]]
    header = ["workload", *[NAMES[s] for s in systems], *[f"ours/{s}" for s in systems[1:]]]
    rows = []
    for workload in WORKLOADS:
        values = [results[s]["figures"].get(workload) if "figures" in results[s] else None for s in systems]
        ratios = [ratio(workload, values[0], v) for v in values[1:]]
        rows.append([workload, *[fmt(v, workload) for v in values],
                     *["n/a" if r is None else f"{r:.2f}" for r in ratios]])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in
                               enumerate(zip(row, widths))) for row in [header, *rows])


def plot(results: dict[str, dict], path: Path) -> None:
    """Grouped bars of ours/peer per workload, log scale, 1 = parity (latency and RSS
    inverted so that above 1 always means ours is better)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    peers = [p for p in PEERS if "figures" in results.get(p, {})]
    workloads = [w for w in WORKLOADS if w != GHZ_BATCH]
    fig, ax = plt.subplots(figsize=(11, 5.5))
    width = 0.8 / max(1, len(peers))
    for offset, peer in enumerate(peers):
        heights = []
        for workload in workloads:
            r = ratio(workload, results["ours"]["figures"].get(workload), results[peer]["figures"].get(workload))
            heights.append((1 / r if workload in LOWER_IS_BETTER else r) if r else float("nan"))
        ax.bar([i + offset * width for i in range(len(workloads))], heights, width, label=NAMES[peer])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks([i + width * (len(peers) - 1) / 2 for i in range(len(workloads))])
    ax.set_xticklabels([w.replace(" (deliveries/s)", "").replace(" (ms)", "").replace(" (MiB)", "")
                        for w in workloads], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("EventStream advantage (x, log scale; >1 = EventStream better)")
    ax.set_title("EventStream vs peers, same machine, same run")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latency_notes(notes: dict[str, float]) -> str:
    """What the server did during the latency run, for the Systems list."""
    if "latency_server_cpu" not in notes:
        return ""
    text = f", during the latency run {notes['latency_server_cpu']:.0%}"
    if "latency_fsync_rounds" in notes:
        text += (f" and {notes['latency_fsync_rounds']:.0f} fsync rounds of "
                 f"{notes['latency_fsync_seconds'] * 1000:.1f} ms in all, "
                 f"{notes['latency_fsync_over_5ms']:.0f} of them over 5 ms")
    return text


def report(results: dict[str, dict], info: dict[str, str], args: argparse.Namespace) -> str:
    lines = ["# EventStream side by side with its peers", "",
             "Produced by `make bench-peers` (`bench/peers_bench.py`); see bench/README.md for what",
             "each workload means and how each system is driven. Ratios are ours/peer: for throughput",
             "above 1 means ours is faster, for latency and RSS above 1 means ours is slower/larger.", "",
             table(results, markdown=True), "", "Systems:", ""]
    for name in ["ours", *PEERS]:
        if name not in results:
            continue
        entry = results[name]
        if "figures" in entry:
            lines.append(f"- {NAMES[name]}: {entry['version']}; server CPU over its whole run "
                         f"{entry['server_cpu']:.0%} of one core{latency_notes(entry['notes'])}")
        else:
            lines.append(f"- {NAMES[name]}: not measured: {entry['unavailable']}")
    lines.append("- Redpanda: not measured (see bench/README.md)")
    lines += ["", f"Per throughput run {args.duration:g} s; latency {args.latency_rate} events/s for "
              f"{args.latency_seconds:g} s; fan-out {args.fanout_events:,} events x "
              f"{FANOUT_SUBSCRIBERS} subscribers.", "",
              "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main

def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def start_run(clients: str) -> tuple[bool, str, dict[str, str]] | None:
    """Set up a bench run: SIGTERM unwinds, this process on the client core, ghz found.

    Args:
        clients: what runs on the client core, as the machine line names it.

    Returns:
        (pinned, ghz path, machine info), or None when ghz is missing (said on stderr).
    """
    def terminate(signum, frame):  # SIGTERM unwinds the ExitStacks, so servers stop too
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)
    pin = pb.pinning()
    if pin:
        os.sched_setaffinity(0, {pb.CLIENT_CORE})
    ghz = pb.find_ghz()
    if ghz is None:
        print("ghz not found on PATH or in .tools/bin (make tools installs it)", file=sys.stderr)
        return None
    info = pb.machine()
    info["pinning"] = (f"servers on core {pb.SERVER_CORE}, {clients} on core {pb.CLIENT_CORE}"
                       if pin else "none (taskset or 2 cores unavailable)")
    return pin, ghz, info


def run(args: argparse.Namespace) -> int:
    started_run = start_run("load clients")
    if started_run is None:
        return 2
    pin, ghz, info = started_run
    load_before = load_average()
    results: dict[str, dict] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="es-peers-") as tmp:
        for name in ["ours", *args.peers]:
            workdir = Path(tmp) / name
            workdir.mkdir()
            try:
                results[name] = measure_system(name, args, ghz, pin, workdir)
            except peer_servers.Unavailable as error:
                print(f"{NAMES[name]} unavailable: {error}", file=sys.stderr)
                results[name] = {"unavailable": str(error)}
            except Exception as error:  # a broken peer must not hide the others' figures
                if name == "ours":
                    raise
                print(f"{NAMES[name]} failed: {error!r}", file=sys.stderr)
                results[name] = {"unavailable": f"the run failed: {error!r}"}
    info["load average (1/5/15 min) before / after"] = f"{load_before} / {load_average()}"
    info["run time"] = f"{time.monotonic() - started:.0f} s"
    print(table(results, markdown=False))
    for key, value in info.items():
        print(f"{key}: {value}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "peers.md").write_text(report(results, info, args))
    (out / "peers.json").write_text(json.dumps({"results": results, "machine": info}, indent=1) + "\n")
    plot(results, out / "peers.png")
    print(f"wrote {out / 'peers.md'}, {out / 'peers.png'}")
    return 0 if "figures" in results["ours"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="EventStream vs NATS JetStream, Redis, Pub/Sub emulator, Kafka")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of " + ",".join(PEERS))
    parser.add_argument("--workloads", default=",".join(KINDS),
                        help="comma-separated subset of " + ",".join(KINDS) + " (RSS is always measured)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per throughput run")
    parser.add_argument("--latency-rate", type=int, default=1000, help="events/s of the latency run")
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    parser.add_argument("--fanout-events", type=int, default=10_000)
    parser.add_argument("--out", default=str(RESULTS), help="directory for peers.md, peers.png, peers.json")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 s per throughput run, short latency and fan-out runs")
    parser.add_argument("--raw-client", metavar="TARGET", help=argparse.SUPPRESS)
    parser.add_argument("--client-mode", choices=("stream", "batch", "pubsub-batch"), default="stream",
                        help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--streams", type=int, default=STREAMS, help=argparse.SUPPRESS)
    parser.add_argument("--window", type=int, default=WINDOW, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_client:
        if args.client_mode == "pubsub-batch":
            result = run_async(pubsub_batch_client(args.raw_client, args.size, args.duration,
                                                   args.streams * args.window))
        else:
            pb.PAYLOAD = b"x" * args.size  # publish_bench.event() reads it when building requests
            result = run_async(pb.stream_client(args.raw_client, args.duration, args.streams, args.window,
                                                args.client_mode))
        print(json.dumps(result))
        return 0
    args.peers = [p for p in args.peers.split(",") if p]
    unknown = set(args.peers) - set(PEERS)
    if unknown:
        parser.error(f"--peers: unknown {', '.join(sorted(unknown))} (choose from {', '.join(PEERS)})")
    args.workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(args.workloads) - set(KINDS)
    if unknown or not args.workloads:
        parser.error(f"--workloads: unknown or none {', '.join(sorted(unknown))} "
                     f"(choose from {', '.join(KINDS)})")
    if args.quick:
        args.duration, args.latency_rate, args.latency_seconds = 1.0, 200, 1.0
        args.fanout_events = min(args.fanout_events, 1000)
    args.duration = min(max(args.duration, 0.5), 60.0)
    args.latency_seconds = min(max(args.latency_seconds, 0.5), 60.0)
    args.latency_rate = min(max(args.latency_rate, 1), 20_000)
    args.fanout_events = min(max(args.fanout_events, 100), 1_000_000)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
