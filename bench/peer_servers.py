"""Start the servers that bench/peers_bench.py compares, each on 127.0.0.1.

Our server (single node, disk log, ``storage.fsync: interval``), NATS with
JetStream (file storage), Redis (append-only file, ``appendfsync everysec``)
the Google Pub/Sub emulator and Kafka (KRaft, one broker that is also its
controller, a flush to disk every second). Every start registers its stop on the
caller's ``contextlib.ExitStack``, so a failure anywhere stops everything
already started. Each server is pinned to the server core when pinning is on.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import publish_bench as pb

ROOT = pb.ROOT
TOOLS_BIN = ROOT / ".tools" / "bin"
KAFKA_JARS = ROOT / ".tools" / "kafka"  # tools/install-peers.sh kafka (bench/kafka/pom.xml)
# kafka-server-start.sh's default heap and collector.
KAFKA_JVM = ["-Xmx1G", "-Xms1G", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
             "-XX:InitiatingHeapOccupancyPercent=35", "-Djava.awt.headless=true"]


class Unavailable(RuntimeError):
    """A peer that cannot run on this machine; the message says why."""


@dataclass
class Running:
    """One started server: its name, the pid whose memory counts, where it listens."""

    name: str
    pid: int
    address: str
    version: str
    metrics: Any = None
    """Ours only: its ServerProcess, for reading /metrics (tests.support.server.metric)."""


def find_tool(name: str) -> str | None:
    """A tool on PATH or in .tools/bin (where tools/install-peers.sh puts them)."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _pin(pid: int, pin: bool) -> None:
    """Move every thread of a started process onto the server core."""
    if pin:
        subprocess.run(["taskset", "-a", "-p", "-c", str(pb.SERVER_CORE), str(pid)],
                       check=True, capture_output=True, timeout=10)


def _version(command: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(command, capture_output=True, timeout=20)
        return (done.stdout or done.stderr).decode(errors="replace").strip().splitlines()[0]
    return "unknown"


def _popen(stack: contextlib.ExitStack, command: list[str], log: Path, pin: bool,
           group: bool = False) -> subprocess.Popen:
    """Start a process logging to ``log``; its stop is on the stack before anything can fail."""
    process = subprocess.Popen(pb.pinned(pb.SERVER_CORE, command, pin), stdout=open(log, "wb"),
                               stderr=subprocess.STDOUT, start_new_session=group)
    if group:
        stack.callback(_stop_group, process)
    else:
        stack.callback(pb.stop_process, process)
    return process


def _stop_group(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the process group (gcloud leaves its java child behind otherwise), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # the group outlives its leader until java exits
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def start_ours(stack: contextlib.ExitStack, workdir: Path, pin: bool) -> Running:
    """eventstream-server: one node, segment log on disk, background fsync every second."""
    from tests.support.server import ServerProcess
    (workdir / "ours").mkdir()
    server = ServerProcess(workdir / "ours", config={
        "server": {"drain_timeout_seconds": 5.0},
        "storage": {"engine": "disk", "fsync": "interval", "fsync_interval_ms": 1000}})
    stack.callback(server.stop, 15.0)
    server.start()
    assert server.process is not None
    _pin(server.process.pid, pin)
    import importlib.metadata
    return Running("ours", server.process.pid, server.target,
                   f"eventstream-server {importlib.metadata.version('eventstream-server')}", server)


def _start_native(stack: contextlib.ExitStack, workdir: Path, pin: bool, name: str, server: str,
                  client: str, install: str, arguments: Callable[[int, Path], list[str]]) -> Running:
    """A peer that is one native server binary plus its load tool: check both are installed,
    start the server with ``arguments(port, data_dir)``, wait until it listens."""
    binary = find_tool(server)
    if binary is None or find_tool(client) is None:
        raise Unavailable(f"{server} / {client} not installed ({install})")
    data = workdir / name
    data.mkdir()
    port = pb.free_port()
    process = _popen(stack, [binary, *arguments(port, data)], workdir / f"{name}.log", pin)
    pb.wait_port(port, process)
    return Running(name, process.pid, f"127.0.0.1:{port}", _version([binary, "--version"]))


def start_redis(stack: contextlib.ExitStack, workdir: Path, pin: bool) -> Running:
    """Debian's redis-server with the append-only file synced every second."""
    return _start_native(stack, workdir, pin, "redis", "redis-server", "redis-benchmark",
                         "apt-get install redis-server", lambda port, data: [
                             "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(data)])


def start_nats(stack: contextlib.ExitStack, workdir: Path, pin: bool) -> Running:
    """nats-server with JetStream, file storage in the work dir."""
    return _start_native(stack, workdir, pin, "nats", "nats-server", "nats", "tools/install-peers.sh",
                         lambda port, data: ["-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(data)])


def _java_descendant(pid: int) -> int | None:
    """The emulator's java process under the gcloud wrapper (its memory is the server's)."""
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            if Path(f"/proc/{current}/comm").read_text().strip() == "java":
                return current
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    return None


def start_pubsub(stack: contextlib.ExitStack, workdir: Path, pin: bool) -> Running:
    """The Pub/Sub emulator of the Google Cloud CLI (`gcloud beta emulators pubsub start`)."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise Unavailable("gcloud not installed (the Pub/Sub emulator ships with google-cloud-cli)")
    if shutil.which("java") is None:
        raise Unavailable("java not installed (the Pub/Sub emulator is a Java program)")
    data = workdir / "pubsub"
    data.mkdir()
    port = pb.free_port()
    process = _popen(stack, [gcloud, "beta", "emulators", "pubsub", "start", "--quiet",
                             f"--host-port=127.0.0.1:{port}", f"--data-dir={data}"],
                     workdir / "pubsub.log", pin, group=True)
    try:
        pb.wait_port(port, process, timeout=90.0)  # the JVM takes a few seconds to start
    except RuntimeError as error:
        log = (workdir / "pubsub.log").read_text(errors="replace")[-600:]
        raise Unavailable(f"the Pub/Sub emulator did not start: {error}: {log}") from error
    java = _java_descendant(process.pid)
    if java is None:
        raise Unavailable("the Pub/Sub emulator listens, but no java process was found under gcloud")
    # The emulator's version is in its jar's name, on the java command line.
    command = Path(f"/proc/{java}/cmdline").read_bytes().decode(errors="replace")
    found = re.search(r"(cloud-pubsub-emulator-[\w.]+?)(?:-all)?\.jar", command)
    return Running("pubsub", java, f"127.0.0.1:{port}", found.group(1) if found else "unknown version")


def kafka_classpath() -> str:
    """The classpath of the broker and its tools, or Unavailable when they are not installed."""
    if shutil.which("java") is None:
        raise Unavailable("java not installed (Kafka is a Java program)")
    if not list(KAFKA_JARS.glob("kafka_2.13-*.jar")) or not list(KAFKA_JARS.glob("kafka-tools-*.jar")):
        raise Unavailable("the Kafka jars are not installed (tools/install-peers.sh kafka)")
    return str(KAFKA_JARS / "*")


def _kafka_properties(data: Path, port: int, controller_port: int) -> str:
    """One node that is broker and KRaft controller, everything replicated once, and a
    flush of the log to disk every second (like Redis's everysec and our fsync interval)."""
    return "\n".join([
        "process.roles=broker,controller", "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={data}", "num.partitions=1",
        "offsets.topic.replication.factor=1", "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1", "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1", "group.initial.rebalance.delay.ms=0",
        "log.flush.interval.ms=1000", "log.flush.scheduler.interval.ms=1000", ""])


def start_kafka(stack: contextlib.ExitStack, workdir: Path, pin: bool) -> Running:
    """Kafka in KRaft mode from the Maven Central jars: format the storage, start kafka.Kafka."""
    classpath = kafka_classpath()
    data = workdir / "kafka"
    data.mkdir()
    port, controller_port = pb.free_port(), pb.free_port()
    properties = workdir / "server.properties"
    properties.write_text(_kafka_properties(data, port, controller_port))
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    formatted = subprocess.run(["java", "-cp", classpath, "kafka.tools.StorageTool", "format",
                                "-t", cluster_id, "-c", str(properties)], capture_output=True, timeout=120)
    if formatted.returncode != 0:
        raise Unavailable(f"kafka-storage format failed: {formatted.stderr.decode(errors='replace')[-600:]}")
    log = workdir / "kafka.log"
    process = _popen(stack, ["java", *KAFKA_JVM, "-cp", classpath, "kafka.Kafka", str(properties)], log, pin)
    try:
        pb.wait_port(port, process, timeout=90.0)  # the JVM takes a few seconds to start
    except RuntimeError as error:
        raise Unavailable(f"Kafka did not start: {error}: "
                          f"{log.read_text(errors='replace')[-600:]}") from error
    version = re.search(r"kafka_2\.13-([\w.]+)\.jar", " ".join(p.name for p in KAFKA_JARS.iterdir()))
    return Running("kafka", process.pid, f"127.0.0.1:{port}",
                   f"Kafka {version.group(1)} (KRaft)" if version else "Kafka (KRaft)")


STARTERS = {"redis": start_redis, "nats": start_nats, "pubsub": start_pubsub, "kafka": start_kafka}
