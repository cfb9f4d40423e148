"""Raw frame ingest throughput of eventstream-server, with Redis Streams as a peer.

One run, on 127.0.0.1, with 100-byte payloads:
  * TCP fire-and-forget and TCP acknowledged ingest from the native load
    generator (bench/loadgen, built here with make): events/s and MB/s from
    the first frame sent to the last event committed (read from /metrics);
  * UDP at a modest rate, at 20,000 and 50,000 datagrams/s and as a blast:
    datagrams/s sent and the loss (read by the server, dropped by reason,
    dropped by the kernel);
  * Debian's redis-server (no persistence) on a free port with
    redis-benchmark XADD, pipelined (-P 64), as the peer figure;
  * for each, the server's CPU share and events per server CPU-second, the
    figure that stays comparable when other work shares the machine.

The storage is the durable segment log with ``storage.fsync: interval``
(written before the acknowledgement, fsynced every 100 ms), in a temporary
data dir. The server is pinned to
core 0 and the load generators to core 1 when taskset and two cores are
available. Every load is bounded in count and time; every process started
is stopped, also on failure.

    python bench/ingest_bench.py [--events 1000000] [--markdown FILE] [--profile FILE.svg]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
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

from publish_bench import (  # noqa: E402
    CLIENT_CORE, SERVER_CORE, cpu_seconds, free_port, machine, pinned, pinning, stop_process,
    wait_port)

from tests.support.server import ServerProcess, http_get, metric  # noqa: E402

LOADGEN = BENCH / "loadgen" / "loadgen"
PAYLOAD = 100
TOPIC = "bench/ingest"


def build_loadgen() -> None:
    subprocess.run(["make", "-s", "-C", str(BENCH / "loadgen")], check=True)


def loadgen(args: list[str], pin: bool, timeout: float) -> dict:
    """Run the load generator; return its JSON result line."""
    done = subprocess.run(pinned(CLIENT_CORE, [str(LOADGEN), *args], pin), capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"loadgen {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_committed(server: ServerProcess, transport: str, wanted: float, timeout: float) -> float:
    """Poll until ``wanted`` events of ``transport`` are committed; return the time it happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(server, "eventstream_events_committed_total", transport=transport) >= wanted:
            return time.monotonic()
        time.sleep(0.01)
    raise RuntimeError(f"{wanted:.0f} {transport} events not committed after {timeout}s")


def tcp_run(server: ServerProcess, pin: bool, label: str, events: int, extra: list[str]) -> dict:
    """One TCP load; events/s from first frame sent to last event committed."""
    before = metric(server, "eventstream_events_committed_total", transport="tcp")
    cpu0, start = cpu_seconds(server.process.pid), time.monotonic()
    result = loadgen(["tcp", "--port", str(server.tcp_port), "--count", str(events),
                      "--payload", str(PAYLOAD), "--topic", TOPIC, "--seconds", "120", *extra],
                     pin, timeout=180)
    end = wait_committed(server, "tcp", before + result["frames"], 120)
    cpu = cpu_seconds(server.process.pid) - cpu0
    seconds = end - start
    return {"mode": label, "events": result["frames"], "seconds": seconds,
            "events_per_s": result["frames"] / seconds,
            "mb_per_s": result["frames"] * PAYLOAD / seconds / 1e6,
            "sender_events_per_s": result["frames_per_s"], "server_cpu": cpu / seconds}


def udp_accounting(server: ServerProcess) -> tuple[float, float, float]:
    """(datagrams read, dropped by reason, dropped by the kernel)."""
    read = metric(server, "eventstream_ingest_datagrams_total")
    kernel = metric(server, "eventstream_ingest_udp_kernel_drops_total")
    dropped = 0.0
    for line in http_get(f"{server.http}/metrics", timeout=10.0)[1].decode().splitlines():
        if line.startswith("eventstream_ingest_datagrams_dropped_total{"):
            dropped += float(line.rsplit(" ", 1)[1])
    return read, dropped, kernel


def udp_run(server: ServerProcess, pin: bool, label: str, datagrams: int, rate: float,
            frames_per_datagram: int) -> dict:
    read0, dropped0, kernel0 = udp_accounting(server)
    cpu0, start = cpu_seconds(server.process.pid), time.monotonic()
    result = loadgen(["udp", "--port", str(server.udp_port), "--count", str(datagrams),
                      "--payload", str(PAYLOAD), "--topic", TOPIC, "--rate", str(rate),
                      "--frames-per-datagram", str(frames_per_datagram), "--seconds", "60"],
                     pin, timeout=120)
    sent = result["datagrams"]
    deadline = time.monotonic() + 30
    while True:  # until every datagram is read or counted as dropped by the kernel
        read, dropped, kernel = udp_accounting(server)
        if read - read0 + kernel - kernel0 >= sent or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    cpu = cpu_seconds(server.process.pid) - cpu0
    seconds = time.monotonic() - start
    accepted = (read - read0) - (dropped - dropped0)
    return {"mode": label, "sent": sent, "frames_per_datagram": frames_per_datagram,
            "sent_per_s": result["datagrams_per_s"], "accepted": accepted,
            "dropped": dropped - dropped0, "kernel_dropped": kernel - kernel0,
            "unaccounted": sent - (read - read0) - (kernel - kernel0),
            "loss": 1 - accepted / sent if sent else 0.0,
            "accepted_per_s": accepted / seconds, "server_cpu": cpu / seconds}


def redis_run(events: int, pin: bool) -> dict | None:
    """XADD of 100-byte values, pipelined, on a fresh redis-server without persistence."""
    server_bin, bench_bin = shutil.which("redis-server"), shutil.which("redis-benchmark")
    if not server_bin or not bench_bin:
        print("redis-server/redis-benchmark missing: apt-get install redis-server redis-tools",
              file=sys.stderr)
        return None
    port = free_port()
    process = subprocess.Popen(pinned(SERVER_CORE, [
        server_bin, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
        "--appendonly", "no", "--protected-mode", "yes"], pin),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, process)
        cpu0, start = cpu_seconds(process.pid), time.monotonic()
        done = subprocess.run(pinned(CLIENT_CORE, [
            bench_bin, "-p", str(port), "-q", "-n", str(events), "-P", "64", "-c", "50",
            "XADD", "bench", "*", "payload", "x" * PAYLOAD], pin),
            capture_output=True, text=True, timeout=180)
        seconds = time.monotonic() - start
        cpu = cpu_seconds(process.pid) - cpu0
        found = re.findall(r"([\d.]+) requests per second", done.stdout)
        if not found:
            raise RuntimeError(f"redis-benchmark said: {done.stdout} {done.stderr}")
        rate = float(found[-1])
        return {"mode": "Redis XADD -P 64 (50 clients)", "events": events, "events_per_s": rate,
                "mb_per_s": rate * PAYLOAD / 1e6, "server_cpu": cpu / seconds}
    finally:
        stop_process(process)


def profile(server: ServerProcess, pin: bool, events: int, output: str) -> None:
    """py-spy profile of the server during a TCP fire-and-forget run.

    An output ending in ``.svg`` gets a flame graph, anything else py-spy's
    collapsed stacks (one line per stack with its sample count).
    """
    spy = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
    if not Path(spy).exists():
        print("py-spy not installed; no profile", file=sys.stderr)
        return
    recorder = subprocess.Popen([spy, "record", "--pid", str(server.process.pid), "--output",
                                 output, "--format",
                                 "flamegraph" if output.endswith(".svg") else "raw",
                                 "--rate", "200", "--nonblocking", "--duration", "6"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # py-spy attaches
        # Several times the bench's events, so the load lasts most of the recording.
        tcp_run(server, pin, "profiled", 5 * events, ["--connections", "4"])
        _, errors = recorder.communicate(timeout=60)
        if recorder.returncode:
            print(f"py-spy failed: {errors.strip()}", file=sys.stderr)
    finally:
        stop_process(recorder)


def report(tcp: list[dict], udp: list[dict], redis: dict | None, info: dict) -> str:
    lines = [", ".join(f"{k}: {v}" for k, v in info.items()), "",
             "| mode | events/s | MB/s | server CPU | events per server CPU-second |",
             "|---|---:|---:|---:|---:|"]
    for row in tcp + ([redis] if redis else []):
        lines.append(f"| {row['mode']} | {row['events_per_s']:,.0f} | {row['mb_per_s']:.1f} | "
                     f"{row['server_cpu']:.0%} | "
                     f"{row['events_per_s'] / max(row['server_cpu'], 1e-9):,.0f} |")
    lines += ["", "| UDP | datagrams sent | sent/s | frames/datagram | accepted | accepted/s | "
              "dropped (reason) | dropped (kernel) | loss | server CPU |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in udp:
        lines.append(f"| {row['mode']} | {row['sent']:,} | {row['sent_per_s']:,.0f} | "
                     f"{row['frames_per_datagram']} | {row['accepted']:,.0f} | "
                     f"{row['accepted_per_s']:,.0f} | "
                     f"{row['dropped']:,.0f} | {row['kernel_dropped']:,.0f} | {row['loss']:.1%} | "
                     f"{row['server_cpu']:.0%} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    build_loadgen()
    pin = pinning()
    info = {**machine(), "pinning": f"server core {SERVER_CORE}, load core {CLIENT_CORE}"
            if pin else "none"}
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        workdir = Path(tmp)
        server = ServerProcess(workdir, config={
            "storage": {"engine": "disk", "fsync": "interval", "fsync_interval_ms": 100},
            "server": {"drain_timeout_seconds": 5.0}})
        try:
            server.start()
            if pin:
                subprocess.run(["taskset", "-a", "-p", "-c", str(SERVER_CORE),
                                str(server.process.pid)], check=True, capture_output=True)
            tcp_run(server, pin, "warm-up", 50_000, ["--connections", "4"])
            tcp = [
                tcp_run(server, pin, "TCP fire-and-forget, 4 connections", args.events,
                        ["--connections", "4"]),
                tcp_run(server, pin, "TCP acknowledged, 4 connections, batches of 1000, "
                        "window 8", args.events // 2,
                        ["--connections", "4", "--acked", "--batch", "1000", "--window", "8"]),
            ]
            scale = 10 if args.quick else 1
            udp = [
                udp_run(server, pin, "UDP modest rate", 20_000 // scale, 5_000, 10),
                udp_run(server, pin, "UDP 20,000/s", 40_000 // scale, 20_000, 10),
                udp_run(server, pin, "UDP 50,000/s for 1 s", 50_000 // scale, 50_000, 10),
                udp_run(server, pin, "UDP blast", 100_000 // scale, 0, 10),
            ]
            if args.profile:
                profile(server, pin, args.events, args.profile)
        finally:
            server.stop()
        redis = redis_run(args.events, pin)
    text = report(tcp, udp, redis, info)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="TCP events per run")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--quick", action="store_true",
                        help="a tenth of the UDP datagrams (a smoke run; figures not of record)")
    parser.add_argument("--profile", help="record a py-spy profile of a TCP run "
                        "(FILE.svg: flame graph; else collapsed stacks)")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
