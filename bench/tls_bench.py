"""What TLS costs: publish (unary and batched) and subscribe, plaintext against TLS, one run.

Three real servers on 127.0.0.1, each with ``storage.engine: memory`` (the
figures are those of the transport and the publish path, not the disk):

  * ``plaintext``: no TLS, no authentication (the default);
  * ``mTLS``: mutual TLS on the gRPC port (P-256 certificates made here);
  * ``mTLS + auth``: the same with ``auth.enabled``: the client certificate
    names an identity allowed ``#`` (the permission check of a batch then
    costs nothing per event).

The three run at once. Each scenario is measured on each server
``--rounds`` times, in alternating order (so drift on a shared machine
falls on every mode alike), and the median is shown: unary Publish with 64
calls in flight and PublishBatch of 100 events with 16 in flight, each for
``--duration`` seconds, and Subscribe from the earliest of
``--subscribe-events`` events published beforehand (events/s until the last
arrives). Also shown: server CPU microseconds per event and the server's
share of a core. The client is this process (grpc.aio, pre-encoded requests,
every 20th publish answer checked); servers are pinned to core 0 and this
process to core 1 when taskset and two cores are available. Every loop is
bounded in count and time; every server is stopped, also on failure.

    python bench/tls_bench.py [--duration 5] [--subscribe-events 100000] [--rounds 3] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from publish_bench import (  # noqa: E402
    CLIENT_CORE,
    SERVER_CORE,
    batch_acks,
    cpu_seconds,
    event,
    machine,
    pinning,
)

from eventstream.v1 import publish_pb2, subscribe_pb2  # noqa: E402

BATCH = 100
UNARY_IN_FLIGHT = 64
BATCH_IN_FLIGHT = 16
MODES = ("plaintext", "mTLS", "mTLS + auth")
_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.ssl_target_name_override", "localhost")]


def unary_ack(raw: bytes) -> tuple[int, int]:
    """(acknowledged, refused) of one encoded PublishResponse."""
    return (1, 0) if publish_pb2.PublishResponse.FromString(raw).HasField("ack") else (0, 1)


async def publish_load(channel: grpc.aio.Channel, method: str, request: bytes, per_request: int,
                       in_flight: int, duration: float, check) -> dict:
    """``in_flight`` loops send ``request`` until ``duration`` passes; every 20th answer checked."""
    call = channel.unary_unary(method)
    totals = {"responses": 0, "refused": 0}
    deadline = time.monotonic() + duration

    async def worker() -> None:
        count = 0
        while count < 10_000_000 and time.monotonic() < deadline:
            raw = await call(request, timeout=30)
            count += 1
            if time.monotonic() <= deadline:
                totals["responses"] += 1
            if count % 20 == 1:
                totals["refused"] += check(raw)[1]

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    if totals["refused"]:
        raise RuntimeError(f"{method}: the server refused bench events")
    return {"events_per_s": totals["responses"] * per_request / duration}


async def preload(channel: grpc.aio.Channel, events: int) -> int:
    """Publish ``events`` (batches of 100) for the Subscribe scenario; the number stored."""
    publish = channel.unary_unary("/eventstream.v1.PublishService/PublishBatch")
    data = publish_pb2.PublishBatchRequest(events=[event() for _ in range(BATCH)]).SerializeToString()
    for _ in range(events // BATCH):
        await publish(data, timeout=30)
    return events // BATCH * BATCH


async def subscribe_load(channel: grpc.aio.Channel, events: int, timeout: float) -> dict:
    """Read the ``events`` stored from the earliest; events/s until the last arrived."""
    subscribe = channel.unary_stream("/eventstream.v1.SubscribeService/Subscribe",
                                     response_deserializer=subscribe_pb2.SubscribeResponse.FromString)
    call = subscribe(subscribe_pb2.SubscribeRequest(
        patterns=["#"], start_from=subscribe_pb2.START_FROM_EARLIEST).SerializeToString(),
        timeout=timeout)
    received = 0
    started = time.monotonic()
    async for response in call:
        received += len(response.events)
        if received >= events:
            break
    elapsed = time.monotonic() - started
    call.cancel()
    return {"events_per_s": received / elapsed, "events": received}


def channel_for(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    """A plaintext channel, or a TLS one with ``credentials``."""
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=_OPTIONS[:1])
    return grpc.aio.secure_channel(target, credentials, options=_OPTIONS)


SCENARIOS = ("unary Publish", "PublishBatch x100", "Subscribe (replay)")


async def measure_all(servers: dict[str, tuple[str, grpc.ChannelCredentials | None, int]],
                      args: argparse.Namespace) -> dict[str, dict[str, dict]]:
    """Every scenario on every server, ``args.rounds`` times in alternating order; medians."""
    unary = publish_pb2.PublishRequest(event=event()).SerializeToString()
    batch = publish_pb2.PublishBatchRequest(events=[event() for _ in range(BATCH)]).SerializeToString()
    channels = {mode: channel_for(target, credentials)
                for mode, (target, credentials, _) in servers.items()}
    samples: dict[str, dict[str, list[dict]]] = {m: {s: [] for s in SCENARIOS} for m in servers}
    try:
        stored = {}
        for mode, channel in channels.items():
            await asyncio.wait_for(channel.channel_ready(), 10)
            stored[mode] = await preload(channel, args.subscribe_events)
        for round_number in range(args.rounds):
            order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
            for scenario in SCENARIOS:
                for mode in order:
                    channel, pid = channels[mode], servers[mode][2]
                    cpu, wall = cpu_seconds(pid), time.monotonic()
                    if scenario == "unary Publish":
                        row = await publish_load(channel, "/eventstream.v1.PublishService/Publish",
                                                 unary, 1, UNARY_IN_FLIGHT, args.duration, unary_ack)
                    elif scenario == "PublishBatch x100":
                        row = await publish_load(
                            channel, "/eventstream.v1.PublishService/PublishBatch", batch, BATCH,
                            BATCH_IN_FLIGHT, args.duration, batch_acks)
                    else:
                        row = await subscribe_load(channel, stored[mode], 120)
                    seconds = time.monotonic() - wall
                    used = cpu_seconds(pid) - cpu
                    row["server_cpu"] = used / seconds
                    row["cpu_us_per_event"] = used / (row["events_per_s"] * seconds) * 1e6
                    samples[mode][scenario].append(row)
    finally:
        for channel in channels.values():
            await channel.close()
    return {mode: {scenario: {key: statistics.median(row[key] for row in rows)
                              for key in ("events_per_s", "server_cpu", "cpu_us_per_event")}
                   for scenario, rows in by_scenario.items()}
            for mode, by_scenario in samples.items()}


def table(results: dict[str, dict[str, dict]], info: dict[str, str], markdown: bool) -> str:
    """The results as text, or as a markdown table headed by the machine's details."""
    lines = []
    if markdown:
        lines.append(", ".join(f"{k}: {v}" for k, v in info.items()))
        lines.append("")
        head = " | ".join(f"{mode}" for mode in MODES)
        lines.append(f"| scenario | {head} | mTLS / plaintext |")
        lines.append("|---|" + "---:|" * (len(MODES) + 1))
    for scenario in SCENARIOS:
        cells = [f"{results[m][scenario]['events_per_s']:,.0f}/s, "
                 f"{results[m][scenario]['cpu_us_per_event']:.1f} us "
                 f"({results[m][scenario]['server_cpu']:.0%})" for m in MODES]
        ratio = results["mTLS"][scenario]["events_per_s"] / results["plaintext"][scenario]["events_per_s"]
        if markdown:
            lines.append(f"| {scenario} | {' | '.join(cells)} | {ratio:.2f} |")
        else:
            lines.append(f"{scenario:20} " + "  ".join(f"{c:>30}" for c in cells) + f"  {ratio:.2f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Start the three servers, measure, print; every server is stopped at the end."""
    from tests.support.certs import Authority
    from tests.support.server import ServerProcess

    pin = pinning()
    if pin:
        os.sched_setaffinity(0, {CLIENT_CORE})
    info = machine()
    info["pinning"] = (f"servers on core {SERVER_CORE}, client on core {CLIENT_CORE}"
                       if pin else "none")
    with tempfile.TemporaryDirectory(prefix="es-tls-bench-") as tmp, \
            contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        ca = Authority(workdir, "ca")
        server_cert = ca.server()
        client_cert = ca.issue("bench-client", dns=("bench.client",))
        credentials = grpc.ssl_channel_credentials(ca.pem(), client_cert.key_pem(),
                                                   client_cert.pem())
        tls = {"enabled": True, "cert_file": str(server_cert.cert_path),
               "key_file": str(server_cert.key_path), "client_ca_file": str(ca.cert_path),
               "client_auth": "require"}
        auth = {"enabled": True, "identities": [
            {"name": "bench", "certificate_names": ["bench.client"],
             "publish": {"allow": ["#"]}, "subscribe": {"allow": ["#"]}}]}
        configs = {"plaintext": {}, "mTLS": {"tls": tls},
                   "mTLS + auth": {"tls": tls, "auth": auth, "ingest": {"udp_enabled": False}}}
        servers: dict[str, tuple[str, grpc.ChannelCredentials | None, int]] = {}
        for mode in MODES:
            directory = workdir / mode.replace(" ", "").replace("+", "-")
            directory.mkdir()
            server = ServerProcess(directory, config={
                "server": {"drain_timeout_seconds": 5.0}, "storage": {"engine": "memory"},
                **configs[mode]})
            stack.callback(server.stop, 15.0)
            server.start()
            assert server.process is not None
            if pin:
                subprocess.run(["taskset", "-a", "-p", "-c", str(SERVER_CORE),
                                str(server.process.pid)], check=True, capture_output=True,
                               timeout=10)
            servers[mode] = (server.target, None if mode == "plaintext" else credentials,
                             server.process.pid)
        results = asyncio.run(measure_all(servers, args))
    print(table(results, info, markdown=False))
    if args.markdown:
        Path(args.markdown).write_text(table(results, info, markdown=True) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds of load per publish scenario")
    parser.add_argument("--subscribe-events", type=int, default=100_000,
                        help="events published, then replayed by Subscribe")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measurements of each scenario per server, in alternating order "
                             "(the median is shown)")
    parser.add_argument("--markdown", help="also write the table as markdown here")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
