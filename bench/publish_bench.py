"""Publish throughput and publish-to-delivery latency of eventstream-server.

One run measures, on 127.0.0.1:
  * publish events/s of the real server and of a no-op grpc.aio server with
    the same messages (bench/noop_server.py), for unary Publish, PublishBatch
    (100 events per request) and PublishStream (pipelined, 100 events per
    request), 100-byte payloads, and the ratio ours / no-op;
  * publish-to-delivery latency p50/p99 on the real server (a subscriber on
    "#", a publisher at a fixed rate stamping publish_time).

Each server is pinned to core 0 and the load client to core 1 when taskset
and two cores are available. Unary, batch and stream load comes from ghz
(found on PATH or in .tools/bin) with the API's .proto files (the stream
scenario: --stream-call-count requests per PublishStream call, several calls
at once); batch and stream load also from a Python grpc.aio client in its own
process that sends pre-encoded requests and samples every 20th response (so it
stays cheap). The same client drives both servers. Every loop is bounded in count and time; every process started is
stopped, also on failure.

    python bench/publish_bench.py [--duration 5] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from eventstream.v1 import common_pb2, publish_pb2, subscribe_pb2, subscribe_pb2_grpc  # noqa: E402

PAYLOAD = bytes(range(100))
TOPIC = "bench/publish"
BATCH = 100
# ghz 0.120 answers "Symbol not found" when resolving these methods through
# server reflection, so it reads the same descriptors from the .proto files.
PROTO = ROOT / "api" / "eventstream" / "v1" / "publish.proto"
STREAM_METHOD = "/eventstream.v1.PublishService/PublishStream"
BATCH_METHOD = "/eventstream.v1.PublishService/PublishBatch"
SERVER_CORE, CLIENT_CORE = 0, 1


# --------------------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinning() -> bool:
    """True when taskset exists and cores 0 and 1 are both usable."""
    return bool(shutil.which("taskset")) and {SERVER_CORE, CLIENT_CORE} <= os.sched_getaffinity(0)


def pinned(core: int, command: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", str(core), *command] if pin else command


def find_ghz() -> str | None:
    found = shutil.which("ghz")
    if found:
        return found
    local = ROOT / ".tools" / "bin" / "ghz"
    return str(local) if local.is_file() and os.access(local, os.X_OK) else None


def wait_port(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def event(**fields: object) -> common_pb2.Event:
    return common_pb2.Event(topic=TOPIC, payload=PAYLOAD, **fields)


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import google.protobuf
    try:
        import uvloop
        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio"
    return {"nproc": str(os.cpu_count()), "cpu": model,
            "python": platform.python_version(), "grpcio": grpc.__version__,
            "protobuf": google.protobuf.__version__, "server event loop": loop,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# --------------------------------------------------------------------------- ghz (unary, batch, stream)

def run_ghz(ghz: str, target: str, call: str, data: bytes, concurrency: int, duration: float,
            per_request: int, pin: bool, workdir: Path, stream_messages: int = 0) -> dict:
    """One ghz run; events/s = calls answered OK x ``per_request`` / duration.

    With ``stream_messages`` the call is a stream: each of ``concurrency`` workers
    opens one, sends ``data`` that many times as fast as flow control lets it
    (reading the answers concurrently), half-closes, counts one call once every
    answer arrived, and opens the next; ``per_request`` is then the events of a
    whole stream.
    """
    data_file = workdir / f"{call.rsplit('.', 1)[-1]}.bin"
    # Count-prefixed (ghz's form for one or more messages), so ghz never takes a
    # single message's first bytes for a count.
    data_file.write_bytes(_varint(len(data)) + data)
    # A stream in flight when the time is up holds many events: wait for it and
    # count it (ghz's total time then includes the wait), instead of dropping it.
    streaming = (["--stream-call-count", str(stream_messages), "--duration-stop", "wait"]
                 if stream_messages else ["--duration-stop", "ignore"])
    command = pinned(CLIENT_CORE, [
        ghz, "--insecure", "--proto", str(PROTO), "-i", str(ROOT / "api"),
        "--call", call, "-B", str(data_file), *streaming,
        "-c", str(concurrency), "--connections", "1", "-z", f"{duration}s",
        "-t", "10s", "--cpus", "1" if pin else "2",
        "-O", "json", target], pin)
    completed = subprocess.run(command, capture_output=True, timeout=duration + 60)
    if completed.returncode != 0 and not completed.stdout:
        raise RuntimeError(f"ghz failed: {completed.stderr.decode(errors='replace')[-500:]}")
    report = json.loads(completed.stdout)
    ok = report.get("statusCodeDistribution", {}).get("OK", 0)
    seconds = report["total"] / 1e9
    errors = {k: v for k, v in report.get("statusCodeDistribution", {}).items() if k != "OK"}
    return {"events_per_s": ok * per_request / seconds, "requests_ok": ok, "errors": errors}


# --------------------------------------------------------------------------- stream client

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


async def stream_client(target: str, duration: float, streams: int, window: int,
                        mode: str = "stream") -> dict:
    """Pipelined PublishStream load; requests are pre-encoded bytes, responses
    are counted raw and every 20th is parsed to check its acknowledgements.
    With ``mode`` "batch": unary PublishBatch, ``streams`` x ``window`` requests in flight."""
    if mode == "batch":
        request = publish_pb2.PublishBatchRequest(events=[event() for _ in range(BATCH)]).SerializeToString()
        return await unary_client(target, BATCH_METHOD, request, streams * window, duration, batch_acks)
    events_part = publish_pb2.PublishStreamRequest(
        events=[event() for _ in range(BATCH)]).SerializeToString()
    channel = grpc.aio.insecure_channel(target, options=[
        ("grpc.max_receive_message_length", 16 * 1024 * 1024)])
    method = channel.stream_stream(STREAM_METHOD)  # bytes in, bytes out
    totals = {"responses": 0, "sampled": 0, "sampled_acks": 0, "sampled_errors": 0}
    await asyncio.wait_for(channel.channel_ready(), 10)
    start = time.monotonic()
    deadline = start + duration

    async def one_stream() -> None:
        credits = asyncio.Semaphore(window)
        call = method()

        async def reader() -> None:
            count = 0
            async for raw in call:
                if time.monotonic() <= deadline:
                    totals["responses"] += 1
                count += 1
                if count % 20 == 1:
                    response = publish_pb2.PublishStreamResponse.FromString(raw)
                    totals["sampled"] += 1
                    for result in response.results:
                        if result.HasField("ack"):
                            totals["sampled_acks"] += 1
                        else:
                            totals["sampled_errors"] += 1
                credits.release()

        read_task = asyncio.create_task(reader())
        sequence = 0
        max_requests = 10_000_000  # count bound next to the time bound
        try:
            while sequence < max_requests and time.monotonic() < deadline:
                await asyncio.wait_for(credits.acquire(), 10)
                sequence += 1
                await call.write(b"\x08" + _varint(sequence) + events_part)
            await call.done_writing()
            await asyncio.wait_for(read_task, 15)
        finally:
            read_task.cancel()
            call.cancel()

    await asyncio.gather(*(one_stream() for _ in range(streams)))
    await channel.close()
    events = totals["responses"] * BATCH
    acked_share = (totals["sampled_acks"] / (totals["sampled"] * BATCH)) if totals["sampled"] else 0.0
    return {"events_per_s": events * acked_share / duration, **totals}


def batch_acks(raw: bytes) -> tuple[int, int]:
    """(acknowledged, refused) events of one encoded PublishBatchResponse."""
    results = publish_pb2.PublishBatchResponse.FromString(raw).results
    acks = sum(1 for result in results if result.HasField("ack"))
    return acks, len(results) - acks


async def unary_client(target: str, method: str, request: bytes, workers: int, duration: float,
                       sample: Callable[[bytes], tuple[int, int]], per_request: int = BATCH) -> dict:
    """Unary load of one pre-encoded ``request`` of ``per_request`` events on ``method`` (bytes in,
    bytes out): ``workers`` loops each send it and await the answer until ``duration`` is over.
    Every 20th answer goes to ``sample`` for its (acknowledged, refused) events, the rest are
    only counted, so the client stays cheap whatever the service; events/s counts the
    acknowledged share."""
    channel = grpc.aio.insecure_channel(target, options=[
        ("grpc.max_receive_message_length", 16 * 1024 * 1024)])
    call = channel.unary_unary(method)
    totals = {"responses": 0, "sampled": 0, "sampled_acks": 0, "sampled_errors": 0}
    await asyncio.wait_for(channel.channel_ready(), 10)
    deadline = time.monotonic() + duration

    async def one_worker() -> None:
        count = 0
        while count < 10_000_000 and time.monotonic() < deadline:  # count bound next to the time bound
            raw = await call(request, timeout=10)
            count += 1
            if time.monotonic() <= deadline:
                totals["responses"] += 1
            if count % 20 == 1:
                acks, refused = sample(raw)
                totals["sampled"] += 1
                totals["sampled_acks"] += acks
                totals["sampled_errors"] += refused

    await asyncio.gather(*(one_worker() for _ in range(workers)))
    await channel.close()
    acked_share = (totals["sampled_acks"] / (totals["sampled"] * per_request)) if totals["sampled"] else 0.0
    return {"events_per_s": totals["responses"] * per_request * acked_share / duration, **totals}


def run_stream(target: str, duration: float, streams: int, window: int, pin: bool,
               mode: str = "stream") -> dict:
    command = pinned(CLIENT_CORE, [
        sys.executable, str(Path(__file__).resolve()), "--stream-client", target, "--client-mode", mode,
        "--duration", str(duration), "--streams", str(streams), "--window", str(window)], pin)
    completed = subprocess.run(command, capture_output=True, timeout=duration + 60)
    if completed.returncode != 0:
        raise RuntimeError(f"stream client failed: {completed.stderr.decode(errors='replace')[-800:]}")
    result = json.loads(completed.stdout.decode().strip().splitlines()[-1])
    result["errors"] = {"sampled_event_errors": result["sampled_errors"]} if result["sampled_errors"] else {}
    return result


# --------------------------------------------------------------------------- latency

async def latency(target: str, rate: int, seconds: float) -> dict:
    """Subscriber on '#', publisher at ``rate`` events/s; latency = receive - publish_time."""
    from eventstream.v1 import publish_pb2_grpc
    channel = grpc.aio.insecure_channel(target)
    publisher = publish_pb2_grpc.PublishServiceStub(channel)
    subscriber = subscribe_pb2_grpc.SubscribeServiceStub(channel)
    total = int(rate * seconds)
    received: dict[str, int] = {}
    first_seen = asyncio.Event()
    call = subscriber.Subscribe(subscribe_pb2.SubscribeRequest(patterns=["#"]))

    async def consume() -> None:
        async for response in call:
            now = time.time_ns()
            for delivered in response.events:
                if delivered.id.startswith("lat-"):
                    received[delivered.id] = now - delivered.publish_time.ToNanoseconds()
                elif delivered.id.startswith("probe-"):
                    first_seen.set()
            if len(received) >= total:
                return

    consumer = asyncio.create_task(consume())
    try:
        # The subscription is live once a probe published after it comes back.
        for attempt in range(50):
            await publisher.Publish(publish_pb2.PublishRequest(event=event(id=f"probe-{attempt}")))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(first_seen.wait()), 0.1)
                break
        if not first_seen.is_set():
            raise RuntimeError("the subscription never delivered a probe event")

        async def publish_one(index: int) -> None:
            stamped = event(id=f"lat-{index}")
            stamped.publish_time.FromNanoseconds(time.time_ns())
            await publisher.Publish(publish_pb2.PublishRequest(event=stamped), timeout=10)

        tasks = set()
        start = time.monotonic()
        for index in range(total):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(publish_one(index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait_for(asyncio.gather(*tasks), 15)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(consumer), 5)
    finally:
        consumer.cancel()
        call.cancel()
        await channel.close()
    values = sorted(received.values())
    if not values:
        raise RuntimeError("no latency sample arrived")
    quantiles = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": quantiles[49] / 1e6, "p99_ms": quantiles[98] / 1e6,
            "samples": len(values), "lost": total - len(values), "rate": rate, "seconds": seconds}


# --------------------------------------------------------------------------- report

def table(rows: list[dict], lat: dict | None, info: dict, markdown: bool) -> str:
    lines = []
    if markdown:
        lines += ["| mode | events/s ours | events/s no-op | ratio | server CPU ours / no-op "
                  "| client CPU ours / no-op |", "|---|---:|---:|---:|---:|---:|"]
        for row in rows:
            lines.append(f"| {row['mode']} | {row['ours']:,.0f} | {row['noop']:,.0f} | {row['ratio']:.2f} "
                         f"| {row['ours_server_cpu']:.0%} / {row['noop_server_cpu']:.0%} "
                         f"| {row['ours_client_cpu']:.0%} / {row['noop_client_cpu']:.0%} |")
        if lat:
            lines += ["", "| publish-to-delivery latency | p50 | p99 |", "|---|---:|---:|",
                      f"| {lat['rate']} events/s for {lat['seconds']:g} s ({lat['samples']} samples, "
                      f"{lat['lost']} lost) | {lat['p50_ms']:.2f} ms | {lat['p99_ms']:.2f} ms |"]
        lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items())]
    else:
        lines.append(f"{'mode':<24}{'events/s ours':>15}{'events/s no-op':>16}{'ratio':>7}"
                     f"{'server CPU ours/no-op':>23}{'client CPU ours/no-op':>23}")
        for row in rows:
            cpu = lambda kind: f"{row['ours_' + kind]:.0%} / {row['noop_' + kind]:.0%}"  # noqa: E731
            lines.append(f"{row['mode']:<24}{row['ours']:>15,.0f}{row['noop']:>16,.0f}{row['ratio']:>7.2f}"
                         f"{cpu('server_cpu'):>23}{cpu('client_cpu'):>23}")
            for side in ("ours_errors", "noop_errors"):
                if row.get(side):
                    lines.append(f"    {side}: {row[side]}")
        if lat:
            lines.append(f"latency publish->delivery at {lat['rate']} events/s for {lat['seconds']:g} s: "
                         f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
                         f"({lat['samples']} samples, {lat['lost']} lost)")
        lines += [f"{k}: {v}" for k, v in info.items()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from tests.support.server import ServerProcess

    def terminate(signum, frame):  # stop cleanly (and stop the servers) on SIGTERM
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)
    pin = pinning()
    if pin:
        os.sched_setaffinity(0, {CLIENT_CORE})  # keep this process off the server's core
    ghz = find_ghz()
    if ghz is None:
        print("ghz not found on PATH or in .tools/bin (make bench installs it)", file=sys.stderr)
        return 2
    info = machine()
    info["pinning"] = (f"servers on core {SERVER_CORE}, load client on core {CLIENT_CORE}"
                       if pin else "none (taskset or 2 cores unavailable)")
    unary_data = publish_pb2.PublishRequest(event=event()).SerializeToString()
    batch_data = publish_pb2.PublishBatchRequest(
        events=[event() for _ in range(BATCH)]).SerializeToString()
    # ghz sends this same request over and over on each stream (the server only
    # echoes the sequence, it does not check it).
    stream_data = publish_pb2.PublishStreamRequest(
        sequence=1, events=[event() for _ in range(BATCH)]).SerializeToString()

    with tempfile.TemporaryDirectory(prefix="es-bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)

        def start_server(name: str, env: dict[str, str] | None = None) -> ServerProcess:
            """Start our server in its own directory, pinned (all its threads) to the server core."""
            (workdir / name).mkdir()
            # The in-memory log: this bench measures the publish path against the transport
            # ceiling; storage_bench.py measures the durable log.
            server = ServerProcess(workdir / name, env=env,
                                   config={"server": {"drain_timeout_seconds": 5.0},
                                           "storage": {"engine": "memory"}})
            stack.callback(server.stop, 15.0)
            server.start()
            if pin:
                assert server.process is not None
                subprocess.run(["taskset", "-a", "-p", "-c", str(SERVER_CORE), str(server.process.pid)],
                               check=True, capture_output=True, timeout=10)
            return server

        real = start_server("server")
        noop_port = free_port()
        noop = subprocess.Popen(pinned(SERVER_CORE, [
            sys.executable, str(Path(__file__).resolve().parent / "noop_server.py"),
            "--port", str(noop_port)], pin),
            stdout=subprocess.DEVNULL, stderr=open(workdir / "noop.log", "wb"))
        stack.callback(stop_process, noop)
        wait_port(noop_port, noop)
        targets = {"ours": real.target, "noop": f"127.0.0.1:{noop_port}"}
        pids = {"ours": real.process.pid, "noop": noop.pid}  # type: ignore[union-attr]

        # Sanity: a batch and a stream request of the bench are fully acknowledged
        # by the real server (ghz counts answered calls, it does not read the results).
        async def check() -> None:
            from eventstream.v1 import publish_pb2_grpc
            async with grpc.aio.insecure_channel(real.target) as channel:
                stub = publish_pb2_grpc.PublishServiceStub(channel)
                response = await stub.PublishBatch(
                    publish_pb2.PublishBatchRequest.FromString(batch_data), timeout=10)
                stream = stub.PublishStream(
                    iter([publish_pb2.PublishStreamRequest.FromString(stream_data)]), timeout=10)
                results = [*response.results, *[r async for answer in stream for r in answer.results]]
                bad = [r for r in results if not r.HasField("ack")]
                if bad or len(results) != 2 * BATCH:
                    raise RuntimeError(f"the real server refused bench events: {bad[:1]}")
        asyncio.run(check())

        for name, target in targets.items():  # warm-up, not reported
            run_ghz(ghz, target, "eventstream.v1.PublishService.Publish", unary_data,
                    16, 1.0, 1, pin, workdir)

        # PublishBatch and PublishStream run twice: with ghz, and with the raw-bytes
        # Python client, because ghz decodes every 100-result response into dynamic
        # messages and can saturate its core before the no-op server does (see the
        # client CPU column).
        modes = [
            ("unary Publish (ghz)", lambda t: run_ghz(
                ghz, t, "eventstream.v1.PublishService.Publish", unary_data,
                args.unary_concurrency, args.duration, 1, pin, workdir)),
            (f"PublishBatch x{BATCH} (ghz)", lambda t: run_ghz(
                ghz, t, "eventstream.v1.PublishService.PublishBatch", batch_data,
                args.batch_concurrency, args.duration, BATCH, pin, workdir)),
            (f"PublishBatch x{BATCH} (py)", lambda t: run_stream(
                t, args.duration, 1, args.batch_concurrency, pin, mode="batch")),
            (f"PublishStream x{BATCH} (ghz)", lambda t: run_ghz(
                ghz, t, "eventstream.v1.PublishService.PublishStream", stream_data,
                args.streams, args.duration, BATCH * args.stream_messages, pin, workdir,
                stream_messages=args.stream_messages)),
            (f"PublishStream x{BATCH} (py)", lambda t: run_stream(
                t, args.duration, args.streams, args.window, pin)),
        ]
        rows = []
        for mode, measure in modes:
            row: dict = {"mode": mode}
            for name, target in targets.items():
                print(f"measuring {mode} on {name} for {args.duration:g} s ...", file=sys.stderr, flush=True)
                server_before, client_before, wall_before = (
                    cpu_seconds(pids[name]), children_cpu(), time.monotonic())
                result = measure(target)
                wall = time.monotonic() - wall_before
                row[f"{name}_server_cpu"] = (cpu_seconds(pids[name]) - server_before) / wall
                row[f"{name}_client_cpu"] = (children_cpu() - client_before) / wall
                row[name] = result["events_per_s"]
                row[f"{name}_errors"] = result.get("errors")
            row["ratio"] = row["ours"] / row["noop"] if row["noop"] else 0.0
            rows.append(row)

        print(f"measuring latency at {args.latency_rate} events/s for {args.latency_seconds:g} s ...",
              file=sys.stderr, flush=True)
        lat = asyncio.run(latency(real.target, args.latency_rate, args.latency_seconds))
        real.stop(15.0)

    print(table(rows, lat, info, markdown=False))
    if args.markdown:
        Path(args.markdown).write_text(table(rows, lat, info, markdown=True) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="eventstream publish benchmark")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as markdown")
    parser.add_argument("--unary-concurrency", type=int, default=128)
    parser.add_argument("--batch-concurrency", type=int, default=16)
    parser.add_argument("--streams", type=int, default=4, help="PublishStream calls in parallel")
    parser.add_argument("--window", type=int, default=16, help="requests in flight per stream")
    parser.add_argument("--stream-messages", type=int, default=50,
                        help="requests per PublishStream call driven by ghz")
    parser.add_argument("--latency-rate", type=int, default=500)
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    parser.add_argument("--stream-client", metavar="TARGET", help=argparse.SUPPRESS)
    parser.add_argument("--client-mode", choices=("stream", "batch"), default="stream",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.duration = min(max(args.duration, 0.5), 120.0)
    args.latency_seconds = min(max(args.latency_seconds, 0.5), 120.0)
    if args.stream_client:
        try:
            import uvloop
            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        result = runner(stream_client(args.stream_client, args.duration, args.streams, args.window,
                                      args.client_mode))
        print(json.dumps(result))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
