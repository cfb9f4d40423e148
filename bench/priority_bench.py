"""Realtime latency while the batch lane floods, against NATS JetStream and Redis Streams.

The reason for two lanes is that HIGH/CRITICAL events stay fast while bulk
traffic floods the node. One run (``make bench-priority``) measures that on
127.0.0.1, our server pinned to core 0 and every client to core 1:

  * a realtime stream (HIGH, 1,000 events/s, each event published alone)
    measured publish -> delivery (p50/p99/p999) on one subscriber of its
    topic, over gRPC (unary Publish) and over TCP (frames), first with the
    node idle, then while a flood of BATCH/LOW events saturates it: TCP
    frames from the native load generator (bench/loadgen) and gRPC
    PublishBatch requests of 100 events from a Python client, as many as it
    takes to keep the batch lane full (its depth is sampled to show it);
    the ratio flooded/idle per percentile; our server on the durable log
    with its defaults (``storage.engine: disk``, ``storage.fsync: always``);
  * fairness: realtime *and* batch lanes flooded at once; the events each
    lane got committed, against ``queues.batch_lane_share``;
  * the same realtime stream and a flood from each peer's own load tool
    against NATS JetStream (one file-storage stream, the realtime and flood
    subjects in it, the subscriber's consumer filtered to the realtime one;
    ``nats bench js pub async``) and Redis Streams (one stream key each for
    the realtime events and the flood, on the same server;
    ``redis-benchmark XADD -P 64``), which have no priorities: their
    flooded/idle ratio is the anchor.

The flood's producers run at ``nice 19`` on the client core, so the realtime
publisher and subscriber (this process) get that core first. Every load is
bounded in count and time; every process started is stopped, also on failure.
Results go to bench/results/priority.{md,png,json} (``--out``). With
``--baseline REF`` the server of another git revision is measured too, in the
same run (an A/B; ``--repeat`` alternates them), and each of our realtime
events' latency is split at its commit round's start (its ``ingest_time``).

    python bench/priority_bench.py [--peers nats,redis|none] [--seconds 5] [--rate 1000]
                                   [--baseline REF [--repeat N]] [--ours-config JSON]
                                   [--out DIR|-] [--profile PREFIX] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import publish_bench as pb  # noqa: E402  (also puts the repository root on sys.path)

import peer_clients  # noqa: E402
import peer_servers  # noqa: E402

LOADGEN = BENCH / "loadgen" / "loadgen"
RESULTS = BENCH / "results"
PEERS = ("nats", "redis")
NAMES = {"ours": "EventStream", "nats": "NATS JetStream", "redis": "Redis Streams"}
RT_TOPIC, FLOOD_TOPIC = "prio/rt", "prio/flood"
NATS_STREAM, NATS_RT, NATS_FLOOD = "PRIO", "prio.rt", "prio.flood"
REDIS_RT, REDIS_FLOOD = "prio:rt", "prio:flood"
REDIS_FLOOD_MAXLEN = 500_000   # the flood's stream is trimmed (XADD MAXLEN ~), as a Redis user would
HIGH, BATCH_BYTE, LOW_PROTO, HIGH_PROTO = 3, 0, 2, 4  # frame bytes, protobuf enum values
PAYLOAD = 100
TCP_FLOOD_CONNECTIONS = 4      # one loadgen process per connection, a topic each (several partitions)
GRPC_FLOOD_WORKERS = 8         # PublishBatch requests in flight
GRPC_FLOOD_BATCH = 100
GRPC_FLOOD_KEYS = 64           # keys cycled over the gRPC flood's events: every partition gets some
FLOOD_COUNT = 50_000_000       # count bound of every flood producer, beside its time bound
NATS_FLOOD_CLIENTS, REDIS_FLOOD_CLIENTS, REDIS_PIPELINE = 4, 8, 64
SATURATED_SHARE = 0.5          # the flood counts as established once the batch lane is this full,
DEFAULT_INGEST_MARK = 8192     # or holds queues.batch_ingest_mark (TCP batch producers wait there)
FLOOD_NICE = "19"
SAMPLE_SECONDS = 0.5         # our lane counters are read this often during a run (a /metrics scrape)


# --------------------------------------------------------------------------- realtime endpoints

class OursRealtime(peer_clients.OursEndpoint):
    """Our server: HIGH events on RT_TOPIC, by unary Publish or as TCP frames; a gRPC
    subscriber of RT_TOPIC (the flood's topics are filtered out by the server)."""

    topic = RT_TOPIC

    def __init__(self, address: str, tcp_port: int | None = None) -> None:
        super().__init__(address)
        self.tcp_port = tcp_port
        self.writer: asyncio.StreamWriter | None = None
        # Per realtime event: (sent, round started, delivered), perf_counter ns. The round's
        # start is the event's ingest_time (the server's clock when the drain took it).
        self.timeline: list[tuple[int, int, int]] = []
        self._wall_minus_perf = time.time_ns() - time.perf_counter_ns()

    async def connect(self) -> None:
        await super().connect()
        if self.tcp_port is not None:
            _, self.writer = await asyncio.open_connection("127.0.0.1", self.tcp_port)
            self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def publish(self, payloads: list[bytes]) -> None:
        if self.writer is not None:  # fire-and-forget frames: latency is measured on delivery
            from eventstream.client.frames import encode_frame
            self.writer.write(b"".join(encode_frame(self.topic, p, HIGH) for p in payloads))
            await self.writer.drain()
            return
        from eventstream.v1 import common_pb2
        for payload in payloads:
            event = common_pb2.Event(topic=self.topic, payload=payload, priority=HIGH_PROTO)
            await self.publisher.Publish(pb.publish_pb2.PublishRequest(event=event), timeout=10)

    async def subscribe(self, index: int, deliver: peer_clients.Deliver) -> None:
        call = self.subscriber.Subscribe(pb.subscribe_pb2.SubscribeRequest(patterns=[self.topic]))
        stamp, offset = peer_clients.STAMP, self._wall_minus_perf
        try:
            async for response in call:
                now = time.perf_counter_ns()
                payloads = []
                for delivered in response.events:
                    payloads.append(delivered.payload)
                    kind, sent, _ = stamp.unpack_from(delivered.payload)
                    if kind == b"L":
                        self.timeline.append((sent, delivered.ingest_time.ToNanoseconds() - offset, now))
                deliver(payloads)
        finally:
            call.cancel()

    def breakdown(self) -> dict[str, float]:
        """p50/p99 of the two parts of each realtime event's latency: until its commit round
        started (transport in, waiting in the lane behind the round in progress) and from
        there to delivery (staging, write and fsync of its round, the subscriber's read)."""
        if len(self.timeline) < 2:
            return {}
        out = {}
        for name, values in (("to_round", [r - s for s, r, _ in self.timeline]),
                             ("round_to_delivery", [d - r for _, r, d in self.timeline])):
            cuts = statistics.quantiles(values, n=100, method="inclusive")
            out[f"{name}_p50_ms"], out[f"{name}_p99_ms"] = cuts[49] / 1e6, cuts[98] / 1e6
        return out

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()
        await super().close()


class NatsRealtime(peer_clients.NatsEndpoint):
    """JetStream: one file-storage stream holding the realtime and the flood subjects;
    the subscriber's ordered consumer is filtered to the realtime subject."""

    subject = NATS_RT

    async def connect(self) -> None:
        import nats
        from nats.js.api import StorageType, StreamConfig
        self.connection = await nats.connect(f"nats://{self.address}", connect_timeout=10)
        self.jetstream = self.connection.jetstream(timeout=10)
        await self.jetstream.add_stream(StreamConfig(name=NATS_STREAM, subjects=[NATS_RT, NATS_FLOOD],
                                                     storage=StorageType.FILE))


class RedisRealtime(peer_clients.RedisEndpoint):
    """Redis Streams: the realtime events in a stream key of their own (a stream has no
    server-side filter, so sharing the flood's key would measure the Python reader)."""

    key = REDIS_RT


# --------------------------------------------------------------------------- floods

def _background(stack: contextlib.ExitStack, command: list[str], pin: bool, workdir: Path
                ) -> tuple[subprocess.Popen, Path]:
    """Start a flood producer at low priority on the client core, its output to a file of
    its own; stopped with the stack."""
    output = workdir / f"flood-{time.monotonic_ns()}.out"
    with open(output, "wb") as out, open(workdir / "flood.log", "ab") as errors:
        process = subprocess.Popen(pb.pinned(pb.CLIENT_CORE, ["nice", "-n", FLOOD_NICE, *command], pin),
                                   stdout=out, stderr=errors)
    stack.callback(pb.stop_process, process)
    return process, output


@dataclass
class Flood:
    """Running flood producers and their output files."""

    started: list[tuple[subprocess.Popen, Path]]

    @property
    def processes(self) -> list[subprocess.Popen]:
        return [process for process, _ in self.started]

    def stop(self) -> list[str]:
        """SIGTERM every producer (the gRPC one then prints its totals); their output."""
        for process, _ in self.started:
            pb.stop_process(process)
        return [path.read_text(errors="replace").strip() for _, path in self.started]


def ours_batch_flood(stack: contextlib.ExitStack, server, seconds: float, pin: bool, workdir: Path,
                     priority: int = BATCH_BYTE, connections: int = TCP_FLOOD_CONNECTIONS,
                     grpc: bool = True, topic: str = FLOOD_TOPIC) -> Flood:
    """TCP frames of ``priority`` from loadgen (one process and topic per connection, so the
    flood spreads over partitions) and, with ``grpc``, LOW PublishBatch requests."""
    processes = [_background(stack, [
        str(LOADGEN), "tcp", "--port", str(server.tcp_port), "--connections", "1",
        "--priority", str(priority), "--topic", f"{topic}/{index}", "--payload", str(PAYLOAD),
        "--count", str(FLOOD_COUNT), "--seconds", f"{seconds:.1f}"], pin, workdir)
        for index in range(connections)]
    if grpc:
        processes.append(_background(stack, [
            sys.executable, str(Path(__file__).resolve()), "--flood-client", server.target,
            "--seconds", f"{seconds:.1f}"], pin, workdir))
    return Flood(processes)


async def grpc_flood_client(target: str, seconds: float) -> dict:
    """LOW PublishBatch requests of GRPC_FLOOD_BATCH events, GRPC_FLOOD_WORKERS in flight, until
    ``seconds`` pass or SIGTERM comes; a request refused because the lane is full is retried
    after 50 ms (the server's retry hint)."""
    import grpc
    from eventstream.v1 import common_pb2
    request = pb.publish_pb2.PublishBatchRequest(events=[
        common_pb2.Event(topic=f"{FLOOD_TOPIC}/grpc", key=f"k{index % GRPC_FLOOD_KEYS}",
                         payload=b"x" * PAYLOAD, priority=LOW_PROTO)
        for index in range(GRPC_FLOOD_BATCH)]).SerializeToString()
    totals = {"acked_requests": 0, "refused_requests": 0, "errors": 0}
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(pb.BATCH_METHOD)
        await asyncio.wait_for(channel.channel_ready(), 10)
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            for _ in range(1_000_000):  # count bound beside the time bound
                if time.monotonic() >= deadline or stopping.is_set():
                    return
                try:
                    await call(request, timeout=10)
                    totals["acked_requests"] += 1
                except grpc.aio.AioRpcError as error:
                    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        totals["refused_requests"] += 1
                    else:
                        totals["errors"] += 1
                        if totals["errors"] > 100:
                            raise
                    await asyncio.sleep(0.05)
        await asyncio.gather(*(worker() for _ in range(GRPC_FLOOD_WORKERS)))
    return {**totals, "acked_events": totals["acked_requests"] * GRPC_FLOOD_BATCH}


def nats_flood(stack: contextlib.ExitStack, address: str, pin: bool, workdir: Path) -> Flood:
    nats = peer_servers.find_tool("nats")
    assert nats is not None
    return Flood([_background(stack, [
        nats, "-s", f"nats://{address}", "bench", "js", "pub", "async", NATS_FLOOD,
        "--stream", NATS_STREAM, "--clients", str(NATS_FLOOD_CLIENTS), "--msgs", str(FLOOD_COUNT),
        "--size", f"{PAYLOAD}B", "--batch", "500", "--no-progress"], pin, workdir)])


def redis_flood(stack: contextlib.ExitStack, address: str, pin: bool, workdir: Path) -> Flood:
    tool = peer_servers.find_tool("redis-benchmark")
    assert tool is not None
    host, port = address.rsplit(":", 1)
    return Flood([_background(stack, [
        tool, "-h", host, "-p", port, "-c", str(REDIS_FLOOD_CLIENTS), "-P", str(REDIS_PIPELINE),
        "-n", str(FLOOD_COUNT), "-q", "XADD", REDIS_FLOOD, "MAXLEN", "~", str(REDIS_FLOOD_MAXLEN), "*",
        "d", "x" * PAYLOAD], pin, workdir)])


# --------------------------------------------------------------------------- counters

class OursCounters:
    """Our server's lane counters from /metrics (read off the event loop)."""

    def __init__(self, server) -> None:
        self.server = server

    def read(self) -> dict[str, float]:
        from tests.support.server import http_get
        wanted = {"eventstream_queue_pops_total": "popped", "eventstream_queue_depth": "depth",
                  "eventstream_queue_pushes_total": "pushed"}
        values: dict[str, float] = {}
        body = http_get(f"{self.server.http}/metrics", timeout=10.0)[1].decode()
        for line in body.splitlines():
            name = line.split("{", 1)[0]
            if name in wanted:
                lane = line.split('queue="', 1)[1].split('"', 1)[0]
                values[f"{wanted[name]}_{lane}"] = float(line.rsplit(" ", 1)[1])
            elif line.startswith("eventstream_ingest_backpressure_total"):
                values["backpressure"] = values.get("backpressure", 0.0) + float(line.rsplit(" ", 1)[1])
            elif line.startswith("eventstream_ingest_batch_paced_total"):
                values["batch_paced"] = float(line.rsplit(" ", 1)[1])
            elif line.startswith('eventstream_storage_fsync_duration_seconds_bucket{') and 'le="0.01"' in line:
                values["fsync_within_10ms"] = float(line.rsplit(" ", 1)[1])
            elif line.startswith("eventstream_storage_fsync_duration_seconds_count"):
                values["fsync_rounds"] = float(line.rsplit(" ", 1)[1])
            elif line.startswith("eventstream_storage_fsync_duration_seconds_sum"):
                values["fsync_seconds"] = float(line.rsplit(" ", 1)[1])
            elif line.startswith("eventstream_queue_batch_yield_seconds_total"):
                values["batch_yield"] = float(line.rsplit(" ", 1)[1])
            elif line.startswith("eventstream_log_commits_total"):
                values["commits"] = float(line.rsplit(" ", 1)[1])
        return values


def nats_flood_messages(address: str) -> float:
    """Messages of the flood subject stored so far (the stream's subject counts)."""
    async def read() -> float:
        import nats
        connection = await nats.connect(f"nats://{address}", connect_timeout=10)
        try:
            info = await connection.jetstream(timeout=10).stream_info(NATS_STREAM, subjects_filter=NATS_FLOOD)
            return float((info.state.subjects or {}).get(NATS_FLOOD, 0))
        finally:
            await connection.close()
    return run_async(read())


def redis_flood_entries(address: str) -> float:
    """Entries ever added to the flood's stream (XINFO STREAM entries-added; it is trimmed)."""
    import redis
    host, port = address.rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port), socket_timeout=15)
    try:
        return float(client.xinfo_stream(REDIS_FLOOD).get("entries-added", 0))
    except redis.ResponseError:  # no such key yet
        return 0.0
    finally:
        client.close()


# --------------------------------------------------------------------------- measuring

def run_async(coroutine):
    try:
        import uvloop
        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


async def _sampled(endpoint: peer_clients.Endpoint, rate: int, seconds: float,
                   counters: OursCounters | None) -> tuple[dict, list[dict]]:
    """The latency run, and our lane counters sampled every SAMPLE_SECONDS meanwhile."""
    samples: list[dict] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            samples.append(await asyncio.to_thread(counters.read))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)
    sampler = asyncio.create_task(sample()) if counters else None
    try:
        await endpoint.connect()
        try:
            return await peer_clients.latency(endpoint, rate, seconds, PAYLOAD), samples
        finally:
            await endpoint.close()
    finally:
        stop.set()
        if sampler:
            await sampler


def latency_run(endpoint: peer_clients.Endpoint, pid: int, args: argparse.Namespace,
                counters: OursCounters | None = None, flood_count=None) -> dict:
    """One realtime latency run with the server's CPU share and, when given, what the flood
    got committed meanwhile (``flood_count()`` before and after) and our lane samples."""
    flood_before = flood_count() if flood_count else None
    before = counters.read() if counters else {}
    cpu, started = pb.cpu_seconds(pid), time.monotonic()
    lat, samples = run_async(_sampled(endpoint, args.rate, args.seconds, counters))
    elapsed = time.monotonic() - started
    result = {**lat, "server_cpu": (pb.cpu_seconds(pid) - cpu) / elapsed, "elapsed": elapsed}
    if isinstance(endpoint, OursRealtime):
        result["breakdown"] = endpoint.breakdown()
    if flood_count:
        result["flood_per_s"] = (flood_count() - flood_before) / elapsed
    if counters:
        after = counters.read()
        result["lanes"] = lane_figures(before, after, samples, elapsed)
        if not flood_count:
            result["flood_per_s"] = result["lanes"]["batch_per_s"]
    if lat["lost"]:
        print(f"  lost {lat['lost']} of {lat['samples'] + lat['lost']} realtime events", file=sys.stderr)
    return result


def lane_figures(before: dict, after: dict, samples: list[dict], elapsed: float) -> dict:
    """Events each lane got committed per second, the batch share, lane depths, fsync rounds."""
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)
    realtime, batch = delta("popped_realtime"), delta("popped_batch")
    depths = {lane: [s.get(f"depth_{lane}", 0.0) for s in samples] or [0.0] for lane in ("realtime", "batch")}
    rounds = delta("fsync_rounds")
    return {"realtime_per_s": realtime / elapsed, "batch_per_s": batch / elapsed,
            "batch_share": batch / (realtime + batch) if realtime + batch else 0.0,
            "batch_depth_mean": statistics.fmean(depths["batch"]), "batch_depth_min": min(depths["batch"]),
            "realtime_depth_mean": statistics.fmean(depths["realtime"]),
            "realtime_depth_min": min(depths["realtime"]),
            "backpressure": delta("backpressure"), "batch_paced": delta("batch_paced"),
            "commits": delta("commits"),
            "fsync_rounds": rounds, "fsync_mean_ms": delta("fsync_seconds") / rounds * 1000 if rounds else 0.0,
            "fsync_over_10ms": rounds - delta("fsync_within_10ms"),
            "batch_yield_share": delta("batch_yield") / elapsed,
            "events_per_round": (realtime + batch) / delta("commits") if delta("commits") else 0.0}


def wait_saturated(counters: OursCounters, wanted: float, flood: Flood, timeout: float) -> float:
    """Wait until the batch lane holds ``wanted`` events (the flood is established)."""
    deadline = time.monotonic() + timeout
    depth = 0.0
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in flood.processes):
            raise RuntimeError("a flood producer exited early; see flood.log")
        depth = counters.read().get("depth_batch", 0.0)
        if depth >= wanted:
            return depth
        time.sleep(0.1)
    print(f"  the batch lane held {depth:.0f}, not {wanted:.0f}, after {timeout:.0f} s of flood",
          file=sys.stderr)
    return depth


def wait_drained(counters: OursCounters, timeout: float = 60.0) -> None:
    """Wait until both lanes are empty (the last flood is committed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = counters.read()
        if not values.get("depth_batch") and not values.get("depth_realtime"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the lanes did not drain within {timeout:.0f} s")


@contextlib.contextmanager
def profiled(pid: int, output: str | None, seconds: float) -> Iterator[None]:
    """py-spy (raw collapsed stacks, every thread) of ``pid`` while the block runs."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not output or not Path(spy).exists():
        if output:
            print("py-spy not installed (requirements/bench.txt); no profile", file=sys.stderr)
        yield
        return
    recorder = subprocess.Popen([spy, "record", "--pid", str(pid), "--output", output, "--format", "raw",
                                 "--rate", "200", "--nonblocking", "--threads",
                                 "--duration", str(int(seconds) + 1)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # py-spy attaches
        yield
        _, errors = recorder.communicate(timeout=seconds + 60)
        if recorder.returncode:
            print(f"py-spy failed: {errors.strip()[-400:]}", file=sys.stderr)
    finally:
        pb.stop_process(recorder)


def baseline_source(ref: str, workdir: Path) -> Path:
    """The server package of git revision ``ref`` (``git archive``), its native core built:
    the ``src`` dir to put first on the server's PYTHONPATH, for an A/B in one run."""
    tree = workdir / "baseline"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(pb.ROOT), "archive", "--format=tar", ref, "server"],
                             capture_output=True, timeout=120)
    if archive.returncode:
        raise SystemExit(f"--baseline {ref}: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=120)
    subprocess.run(["make", "-s", "-C", str(tree / "server" / "native" / "libshardq"), "install"],
                   check=True, capture_output=True, timeout=300)
    return tree / "server" / "src"


def measure_ours(args: argparse.Namespace, pin: bool, workdir: Path, source: Path | None = None) -> dict:
    """Our server (the working tree's, or the one under ``source``): idle then flooded, over
    gRPC and TCP; then both lanes flooded (fairness)."""
    from tests.support.server import ServerProcess
    import importlib.metadata
    config = {"server": {"drain_timeout_seconds": 10.0}, "storage": {"engine": "disk"},
              **args.ours_config}
    server = ServerProcess(workdir, config=config, env={"PYTHONPATH": str(source)} if source else None)
    with contextlib.ExitStack() as stack:
        stack.callback(server.stop, 30.0)
        stack.push(lambda failure, *_: failure and print(   # on a failure, what the server said
            f"server log (its end):\n{server.log()[-3000:]}", file=sys.stderr))
        server.start()
        pid = server.process.pid
        if pin:
            subprocess.run(["taskset", "-a", "-p", "-c", str(pb.SERVER_CORE), str(pid)], check=True,
                           capture_output=True, timeout=10)
        counters = OursCounters(server)
        queues = config.get("queues", {})
        capacity = float(queues.get("batch_capacity", 65536))
        mark = float(queues.get("batch_ingest_mark", DEFAULT_INGEST_MARK))
        saturated = min(SATURATED_SHARE * capacity, mark or capacity)
        share = float(queues.get("batch_lane_share", 0.25))
        variants = {"gRPC": lambda: OursRealtime(server.target),
                    "TCP": lambda: OursRealtime(server.target, server.tcp_port)}
        rows: dict[str, dict] = {}
        flood_pids: list[int] = []
        for name, endpoint in variants.items():
            print(f"  realtime over {name}, idle ...", file=sys.stderr, flush=True)
            rows[name] = {"idle": latency_run(endpoint(), pid, args, counters)}
        flood_seconds = len(variants) * (args.seconds + 5) + 15
        with contextlib.ExitStack() as floods:
            flood = ours_batch_flood(floods, server, flood_seconds, pin, workdir)
            flood_pids += [process.pid for process in flood.processes]
            wait_saturated(counters, saturated, flood, 10.0)
            for name, endpoint in variants.items():
                print(f"  realtime over {name}, flooded ...", file=sys.stderr, flush=True)
                profile = args.profile and f"{args.profile}.{workdir.name}.{name.lower()}.txt"
                with profiled(pid, profile, args.seconds):
                    rows[name]["flooded"] = latency_run(endpoint(), pid, args, counters)
            producers = [line for line in flood.stop() if line.startswith("{")]
        wait_drained(counters)

        print("  both lanes flooded (fairness) ...", file=sys.stderr, flush=True)
        with contextlib.ExitStack() as floods:
            batch = ours_batch_flood(floods, server, args.seconds + 15, pin, workdir)
            realtime = ours_batch_flood(floods, server, args.seconds + 15, pin, workdir, priority=HIGH,
                                        connections=2, grpc=False, topic=f"{FLOOD_TOPIC}-rt")
            flood_pids += [process.pid for process in batch.processes + realtime.processes]
            wait_saturated(counters, saturated, batch, 10.0)
            before, started = counters.read(), time.monotonic()
            samples = []
            while time.monotonic() - started < args.seconds:
                samples.append(counters.read())
                time.sleep(SAMPLE_SECONDS)
            after = counters.read()
            fairness = lane_figures(before, after, samples, time.monotonic() - started)
            fairness["batch_lane_share"] = share
            batch.stop()
            realtime.stop()
        wait_drained(counters)
        version = f"eventstream-server {importlib.metadata.version('eventstream-server')}"
        return {"version": version, "rows": rows, "fairness": fairness, "flood_producers": producers,
                "pid": pid, "flood_pids": flood_pids, "config": config}


def measure_peer(name: str, args: argparse.Namespace, pin: bool, workdir: Path) -> dict:
    """A peer: the realtime stream idle, then under its own tool's flood."""
    with contextlib.ExitStack() as stack:
        running = peer_servers.STARTERS[name](stack, workdir, pin)
        print(f"  {running.version}, idle ...", file=sys.stderr, flush=True)
        endpoint = {"nats": NatsRealtime, "redis": RedisRealtime}[name]
        count = {"nats": nats_flood_messages, "redis": redis_flood_entries}[name]
        row = {"idle": latency_run(endpoint(running.address), running.pid, args)}
        with contextlib.ExitStack() as floods:
            start = {"nats": nats_flood, "redis": redis_flood}[name]
            flood = start(floods, running.address, pin, workdir)
            time.sleep(1.5)  # the tool connects and the server's queues fill
            if any(p.poll() is not None for p in flood.processes):
                raise RuntimeError(f"the {name} flood tool exited early: "
                                   f"{(workdir / 'flood.log').read_text(errors='replace')[-400:]}")
            print("  flooded ...", file=sys.stderr, flush=True)
            row["flooded"] = latency_run(endpoint(running.address), running.pid, args,
                                         flood_count=lambda: count(running.address))
            flood.stop()
        return {"version": running.version, "rows": {"its Python client": row}, "pid": running.pid,
                "flood_pids": [process.pid for process in flood.processes]}


# --------------------------------------------------------------------------- report

KEYS = ("p50_ms", "p99_ms", "p999_ms")


def ratio(row: dict, key: str) -> float:
    return row["flooded"][key] / row["idle"][key] if row["idle"][key] else float("nan")


def latency_rows(runs: list[dict]) -> list[tuple[dict, str, dict]]:
    """(run, realtime via, {idle, flooded}) for every measured latency row."""
    return [(run, via, row) for run in runs for via, row in run.get("rows", {}).items()]


def table(runs: list[dict], goal: float) -> str:
    lines = ["| system | realtime via | idle p50 / p99 / p999 (ms) | flooded p50 / p99 / p999 (ms) "
             "| flooded/idle p50 / p99 / p999 | flood committed meanwhile (events/s) "
             "| server CPU idle / flooded | lost |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for run, via, row in latency_rows(runs):
        idle, flooded = row["idle"], row["flooded"]
        cuts = lambda r: " / ".join(f"{r[k]:.2f}" for k in KEYS)  # noqa: E731
        marks = [f"**{value:.1f}**" if key == "p99_ms" and value > goal and run["system"] == "ours"
                 else f"{value:.1f}" for key, value in ((k, ratio(row, k)) for k in KEYS)]
        lines.append(f"| {run['name']} | {via} | {cuts(idle)} | {cuts(flooded)} | {' / '.join(marks)} "
                     f"| {flooded.get('flood_per_s', 0):,.0f} | {idle['server_cpu']:.0%} / "
                     f"{flooded['server_cpu']:.0%} | {idle['lost'] + flooded['lost']} |")
    return "\n".join(lines)


def fairness_table(runs: list[dict]) -> str:
    lines = ["| both lanes flooded | realtime events/s | batch events/s | batch share "
             "| queues.batch_lane_share |", "|---|---:|---:|---:|---:|"]
    for run in runs:
        fair = run.get("fairness")
        if fair:
            lines.append(f"| {run['name']} | {fair['realtime_per_s']:,.0f} | {fair['batch_per_s']:,.0f} | "
                         f"{fair['batch_share']:.1%} | {fair['batch_lane_share']:.0%} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def ours_notes(run: dict) -> list[str]:
    """What our server did during a run: lanes, rounds, fsyncs, where the latency went."""
    lines = []
    capacity = run["config"].get("queues", {}).get("batch_capacity", 65536)
    for via, row in run["rows"].items():
        lanes = row["flooded"].get("lanes")
        if lanes:
            lines.append(f"- flooded, realtime over {via}: batch lane depth mean {lanes['batch_depth_mean']:,.0f} "
                         f"(min {lanes['batch_depth_min']:,.0f}) of {capacity:,}; {lanes['batch_per_s']:,.0f} "
                         f"batch and {lanes['realtime_per_s']:,.0f} realtime events/s committed in "
                         f"{lanes['commits']:,.0f} commit rounds of {lanes['events_per_round']:,.0f} events on "
                         f"average; fsync {lanes['fsync_mean_ms']:.2f} ms mean, {lanes['fsync_over_10ms']:,.0f} "
                         f"over 10 ms; backpressure pauses {lanes['backpressure']:,.0f}; TCP batch reads paced "
                         f"to the ingest mark {lanes.get('batch_paced', 0):,.0f}; batch rounds held "
                         f"back for realtime publishers {lanes.get('batch_yield_share', 0):.0%} of the time")
    for via, row in run["rows"].items():
        for phase in ("idle", "flooded"):
            parts = row[phase].get("breakdown")
            if parts:
                lines.append(f"- {phase}, realtime over {via}, where the time goes (p50 / p99): sent to its "
                             f"round's start {parts['to_round_p50_ms']:.2f} / {parts['to_round_p99_ms']:.2f} ms, "
                             f"round's start to delivery {parts['round_to_delivery_p50_ms']:.2f} / "
                             f"{parts['round_to_delivery_p99_ms']:.2f} ms")
    fair = run.get("fairness")
    if fair:
        lines.append(f"- both lanes flooded: lane depth mean realtime {fair['realtime_depth_mean']:,.0f} "
                     f"(min {fair['realtime_depth_min']:,.0f}), batch {fair['batch_depth_mean']:,.0f} "
                     f"(min {fair['batch_depth_min']:,.0f}); {fair['events_per_round']:,.0f} events per round")
    lines += [f"- gRPC flood producer: {line}" for line in run.get("flood_producers", [])]
    return lines


def ab_table(runs: list[dict]) -> str:
    """Medians over the repeated runs of each version of our server (with --baseline)."""
    versions: dict[str, list[dict]] = {}
    for run in runs:
        if run["system"] == "ours" and "rows" in run:
            versions.setdefault(run["version_label"], []).append(run)
    if len(versions) < 2:
        return ""
    lines = ["| A/B, medians of runs | runs | flooded p50 / p99, gRPC (ms) | flooded p50 / p99, TCP (ms) "
             "| p99 flooded/idle gRPC / TCP | batch events/s flooded (gRPC, TCP runs) | batch share, both flooded |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    median = statistics.median
    for label, group in versions.items():
        def cut(via: str, key: str) -> float:
            return median(run["rows"][via]["flooded"][key] for run in group)
        ratios = [median(ratio(run["rows"][via], "p99_ms") for run in group) for via in ("gRPC", "TCP")]
        batch = [median(run["rows"][via]["flooded"]["flood_per_s"] for run in group) for via in ("gRPC", "TCP")]
        share = median(run["fairness"]["batch_share"] for run in group)
        lines.append(f"| {label} | {len(group)} | {cut('gRPC', 'p50_ms'):.2f} / {cut('gRPC', 'p99_ms'):.2f} | "
                     f"{cut('TCP', 'p50_ms'):.2f} / {cut('TCP', 'p99_ms'):.2f} | {ratios[0]:.1f} / {ratios[1]:.1f} | "
                     f"{batch[0]:,.0f} / {batch[1]:,.0f} | {share:.1%} |")
    return "\n".join(lines)


def report(runs: list[dict], info: dict, args: argparse.Namespace) -> str:
    lines = ["# Realtime latency while the batch lane floods", "",
             "Produced by `make bench-priority` (`bench/priority_bench.py`); see bench/README.md for the",
             f"setup. Realtime: {args.rate:,} HIGH events/s for {args.seconds:g} s, each published alone; "
             "latency = delivery - send time. Goal: our flooded/idle p99 at most "
             f"{args.goal:g} (bold where missed).", "", table(runs, args.goal), ""]
    for extra in (fairness_table(runs), ab_table(runs)):
        if extra:
            lines += [extra, ""]
    for run in runs:
        if run["system"] == "ours" and "rows" in run:
            lines += [f"{run['name']} during the run:", "", *ours_notes(run), ""]
    lines += ["Systems:", ""]
    for run in runs:
        lines.append(f"- {run['name']}: " + (run["version"] if "rows" in run
                                             else f"not measured: {run['unavailable']}"))
    lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), ""]
    return "\n".join(lines)


def plot(runs: list[dict], path: Path, goal: float) -> None:
    """Left: p50/p99/p999 idle and flooded per row (log scale). Right: flooded/idle p99."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = latency_rows(runs)
    labels = [f"{run['name']}\n{via}" for run, via, _ in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(10, 2.2 * len(rows) + 4), 5),
                                      gridspec_kw={"width_ratios": [2, 1]})
    width = 0.13
    for k_index, key in enumerate(KEYS):
        for p_index, phase in enumerate(("idle", "flooded")):
            offset = (k_index * 2 + p_index - 2.5) * width
            left.bar([i + offset for i in range(len(rows))], [row[phase][key] for _, _, row in rows], width,
                     label=f"{key[:-3]} {phase}", color=f"C{k_index}", alpha=0.45 if phase == "idle" else 1.0)
    left.set_yscale("log")
    left.set_xticks(range(len(rows)))
    left.set_xticklabels(labels, fontsize=7)
    left.set_ylabel("publish -> delivery (ms, log scale)")
    left.set_title("Realtime events, idle and under a batch flood")
    left.legend(fontsize=7, ncol=3)
    ratios = [ratio(row, "p99_ms") for _, _, row in rows]
    right.bar(range(len(rows)), ratios, color=["C0" if run["system"] == "ours" else "C7" for run, _, _ in rows])
    right.axhline(goal, color="red", linewidth=1, linestyle="--", label=f"goal: {goal:g}x")
    right.axhline(1.0, color="black", linewidth=0.8)
    right.set_yscale("log")
    right.set_xticks(range(len(rows)))
    right.set_xticklabels(labels, fontsize=7)
    right.set_title("p99 flooded / idle (lower is better)")
    for index, value in enumerate(ratios):
        right.annotate(f"{value:.1f}x", (index, value), ha="center", va="bottom", fontsize=8)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- main

def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def plan(args: argparse.Namespace) -> list[tuple[str, str, str | None]]:
    """(system, display name, baseline ref or None) of each measurement, in order: our server
    (at --baseline and at the working tree, alternating, --repeat times), then each peer."""
    steps = []
    for run in range(1, args.repeat + 1):
        suffix = f" (run {run})" if args.repeat > 1 else ""
        if args.baseline:
            steps.append(("ours", f"EventStream at {args.baseline}{suffix}", args.baseline))
        steps.append(("ours", f"EventStream{' (working tree)' if args.baseline else ''}{suffix}", None))
    return steps + [(peer, NAMES[peer], None) for peer in args.peers]


def run(args: argparse.Namespace) -> int:
    def terminate(signum, frame):  # SIGTERM unwinds the ExitStacks, so everything stops
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)
    subprocess.run(["make", "-s", "-C", str(BENCH / "loadgen")], check=True, timeout=120)
    pin = pb.pinning()
    if pin:
        os.sched_setaffinity(0, {pb.CLIENT_CORE})
    info = pb.machine()
    info["pinning"] = (f"servers on core {pb.SERVER_CORE}, clients on core {pb.CLIENT_CORE} "
                       f"(flood producers at nice {FLOOD_NICE})" if pin else "none (taskset or 2 cores unavailable)")
    load_before = load_average()
    started = time.monotonic()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="es-priority-") as tmp:
        source = baseline_source(args.baseline, Path(tmp)) if args.baseline else None
        for index, (system, name, ref) in enumerate(plan(args)):
            workdir = Path(tmp) / f"{index}-{system}"
            workdir.mkdir()
            print(f"{name} ...", file=sys.stderr, flush=True)
            try:
                result = (measure_ours(args, pin, workdir, source if ref else None) if system == "ours"
                          else measure_peer(system, args, pin, workdir))
            except peer_servers.Unavailable as error:
                print(f"{name} unavailable: {error}", file=sys.stderr)
                result = {"unavailable": str(error)}
            except Exception as error:  # a broken peer must not hide the others' figures
                if system == "ours":
                    raise
                print(f"{name} failed: {error!r}", file=sys.stderr)
                result = {"unavailable": f"the run failed: {error!r}"}
            runs.append({"system": system, "name": name, **result,
                         "version_label": f"at {ref}" if ref else "working tree"})
            # The next system must not wait behind this one's writeback: its data goes now
            # (deleted files drop their dirty pages) and the rest is flushed.
            shutil.rmtree(workdir, ignore_errors=True)
            os.sync()
    info["load average (1/5/15 min) before / after"] = f"{load_before} / {load_average()}"
    info["run time"] = f"{time.monotonic() - started:.0f} s"
    text = report(runs, info, args)
    print(text)
    if args.out != "-":
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "priority.md").write_text(text)
        settings = {"rate": args.rate, "seconds": args.seconds, "goal": args.goal,
                    "baseline": args.baseline, "repeat": args.repeat}
        (out / "priority.json").write_text(json.dumps({"runs": runs, "machine": info, "settings": settings},
                                                      indent=1) + "\n")
        plot(runs, out / "priority.png", args.goal)
        print(f"wrote {out / 'priority.md'}, {out / 'priority.png'}, {out / 'priority.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated subset of {','.join(PEERS)}, or none")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of each latency run")
    parser.add_argument("--rate", type=int, default=1000, help="realtime events/s")
    parser.add_argument("--goal", type=float, default=2.0, help="the goal for our flooded/idle p99")
    parser.add_argument("--out", default=str(RESULTS),
                        help="directory for priority.md, priority.png, priority.json; - to only print")
    parser.add_argument("--ours-config", default="{}", metavar="JSON",
                        help='config sections merged over ours, e.g. \'{"queues": {"batch_lane_share": 0.5}}\'')
    parser.add_argument("--baseline", metavar="GIT_REF",
                        help="A/B: also measure the server of this git revision, right before ours")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure our server (and the baseline) this many times, alternating")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="py-spy our server during each flooded run into PREFIX.<run>.<via>.txt")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 s per latency run at 200 events/s (figures not of record)")
    parser.add_argument("--flood-client", metavar="TARGET", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.flood_client:
        print(json.dumps(run_async(grpc_flood_client(args.flood_client, min(args.seconds, 600.0)))))
        return 0
    args.peers = [p for p in args.peers.split(",") if p and p != "none"]
    unknown = set(args.peers) - set(PEERS)
    if unknown:
        parser.error(f"--peers: unknown {', '.join(sorted(unknown))} (choose from {', '.join(PEERS)} or none)")
    try:
        args.ours_config = json.loads(args.ours_config)
    except json.JSONDecodeError as error:
        parser.error(f"--ours-config: not JSON: {error}")
    if args.quick:
        args.seconds, args.rate = 1.0, 200
    args.seconds = min(max(args.seconds, 0.5), 60.0)
    args.rate = min(max(args.rate, 1), 20_000)
    args.repeat = min(max(args.repeat, 1), 20)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
