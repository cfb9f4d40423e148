"""A three-node NATS JetStream cluster on 127.0.0.1 and `nats bench` against it.

The peer figure of the replicated benchmark: :class:`NatsCluster` starts
``nats-server`` processes (installed into ``.tools/bin`` by
``tools/install-peers.sh nats``, which ``tools/install-cluster-tools.sh``
runs) with JetStream, each with its own store directory, client, route and
monitoring ports (free loopback ports), and routes to every other node; it
waits until the routes are up and JetStream has a meta leader over all nodes.
:func:`nats_bench` runs ``nats bench js pub`` against it with ``--replicas``,
bounded by a message count and a timeout, and parses its figures.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"
NATS_SERVER = TOOLS_BIN / "nats-server"
NATS_CLI = TOOLS_BIN / "nats"

PublishMode = Literal["sync", "async", "fast"]
"""``nats bench js pub`` modes: ``sync`` waits for each acknowledgement (unary);
``async`` keeps ``--batch`` publishes in flight (pipelined); ``fast`` sends
non-atomic batches of ``--batch`` messages, one flow-control ack each (batched)."""


class NatsError(RuntimeError):
    """A nats-server would not start or form a cluster, or ``nats bench`` failed."""


@dataclass(frozen=True)
class NatsNode:
    """One node's ports and directories."""

    name: str
    client_port: int
    cluster_port: int
    monitor_port: int
    store_dir: Path

    @property
    def url(self) -> str:
        """The client URL."""
        return f"nats://127.0.0.1:{self.client_port}"


class NatsCluster:
    """``size`` nats-server processes with JetStream, routed to each other on loopback.

    Args:
        workdir: where the config files, stores and logs go.
        size: the number of nodes (3 for R3 streams).
        sync_always: ``jetstream.sync_interval: always`` (an fsync per write,
            as EventStream's ``fsync: always``); False keeps NATS's default
            (a background sync every two minutes).
        binary: the nats-server executable.
    """

    def __init__(self, workdir: Path, size: int = 3, *, sync_always: bool = True,
                 binary: Path = NATS_SERVER) -> None:
        self.workdir = workdir
        self.sync_always = sync_always
        self._binary = binary
        self.nodes = [NatsNode(f"n{i + 1}", free_port(), free_port(), free_port(),
                               workdir / f"n{i + 1}" / "store") for i in range(size)]
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def urls(self) -> str:
        """Every node's client URL, comma-separated (the ``-s`` of the nats CLI)."""
        return ",".join(node.url for node in self.nodes)

    def config(self, node: NatsNode) -> str:
        """The configuration file of one node."""
        routes = ", ".join(f"nats-route://127.0.0.1:{other.cluster_port}"
                           for other in self.nodes if other is not node)
        sync = "\n  sync_interval: always" if self.sync_always else ""
        return (f"server_name: {node.name}\n"
                f"listen: 127.0.0.1:{node.client_port}\n"
                f"http: 127.0.0.1:{node.monitor_port}\n"
                f"jetstream {{\n  store_dir: \"{node.store_dir}\"{sync}\n}}\n"
                f"cluster {{\n  name: eventstream-bench\n"
                f"  listen: 127.0.0.1:{node.cluster_port}\n  routes: [{routes}]\n}}\n")

    def start(self, timeout: float = 30.0) -> NatsCluster:
        """Start every node and wait until the cluster has formed (see :meth:`wait_formed`)."""
        if not self._binary.is_file():
            raise NatsError(f"{self._binary} is missing: run tools/install-cluster-tools.sh")
        try:
            for node in self.nodes:
                node.store_dir.mkdir(parents=True, exist_ok=True)
                config = self.workdir / node.name / "nats.conf"
                config.write_text(self.config(node))
                with open(self.workdir / node.name / "nats.log", "ab") as log:
                    self._processes.append(subprocess.Popen(
                        [str(self._binary), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT))
            self.wait_formed(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_formed(self, timeout: float = 30.0) -> None:
        """Wait until every node routes to the others and JetStream has a leader over all nodes.

        Raises:
            NatsError: a node exited, or the cluster did not form within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            for node, process in zip(self.nodes, self._processes, strict=True):
                if process.poll() is not None:
                    raise NatsError(f"nats-server {node.name} exited with {process.returncode}: "
                                    f"{self.log(node)[-1500:]}")
            try:
                if all(self._formed(node) for node in self.nodes):
                    return
            except (OSError, ValueError) as error:
                last = str(error)
            if time.monotonic() > deadline:
                raise NatsError(f"the NATS cluster did not form within {timeout}s ({last}): "
                                f"{self.log(self.nodes[0])[-1500:]}")
            time.sleep(0.1)

    def _formed(self, node: NatsNode) -> bool:
        routes = self.monitor(node, "routez")
        jetstream = self.monitor(node, "jsz")
        meta = jetstream.get("meta_cluster") or {}
        peers = {node.name} | {replica.get("name") for replica in meta.get("replicas") or []
                               if replica.get("current")}
        expected = {other.name for other in self.nodes}
        return (routes.get("num_routes", 0) >= len(self.nodes) - 1
                and bool(meta.get("leader")) and meta.get("cluster_size") == len(self.nodes)
                and (meta.get("leader") != node.name or peers == expected))

    def monitor(self, node: NatsNode, endpoint: str) -> dict:
        """One monitoring endpoint of a node (``varz``, ``routez``, ``jsz``, ...), decoded."""
        url = f"http://127.0.0.1:{node.monitor_port}/{endpoint}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.load(response))

    def log(self, node: NatsNode) -> str:
        """What a node printed so far."""
        path = self.workdir / node.name / "nats.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def pids(self) -> list[int]:
        """The process ids of the nodes."""
        return [process.pid for process in self._processes]

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every node (SIGKILL after ``timeout``) and wait for each."""
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


@dataclass(frozen=True)
class BenchFigures:
    """What one ``nats bench js pub`` run reported (its aggregate, or its only client)."""

    messages: int
    """Messages published."""
    messages_per_s: float
    """Aggregate rate."""
    mib_per_s: float
    """Aggregate payload throughput, MiB/s."""
    p50_us: float | None
    """Median publish latency in microseconds (per operation: a batch in ``fast`` mode)."""
    p99_us: float | None
    """99th percentile of the same."""
    output: str
    """Everything it printed."""


# With several clients the aggregate comes last:
#   "NATS JetStream synchronous publisher aggregated stats: 1,102 msgs/sec ~ 108 KiB/sec"
#   "latencies per operation min ... | P50 1,679.60us | P90 ... | P99 4,580.51us | ..."
# with one client, one line:
#   "NATS JetStream synchronous publisher stats: 795 msgs/sec ~ 78 KiB/sec ~ min: ... ~ P50: 1,105.82us ~ ..."
_STATS = re.compile(r"stats: ([\d,]+) msgs/sec ~ ([\d.,]+) (B|KiB|MiB|GiB)/sec")
_UNITS = {"B": 1 / 1024 / 1024, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _percentile(output: str, name: str) -> float | None:
    found = re.findall(rf"{name}:? ([\d.,]+)(us|ms|s)\b", output)
    if not found:
        return None
    value, unit = found[-1]  # the aggregate's, when there is one
    return _number(value) * {"us": 1.0, "ms": 1e3, "s": 1e6}[unit]


def parse_bench(output: str, messages: int) -> BenchFigures:
    """The aggregate figures of ``nats bench js pub`` output.

    Raises:
        NatsError: no stats line in it.
    """
    found = _STATS.findall(output)
    if not found:
        raise NatsError(f"nats bench printed no stats line: {output[-600:]}")
    rate, size, unit = found[-1]
    return BenchFigures(messages, _number(rate), _number(size) * _UNITS[unit],
                        _percentile(output, "P50"), _percentile(output, "P99"), output)


def create_stream(urls: str, stream: str, subject: str, *, replicas: int, workdir: Path,
                  timeout: float = 30.0, cli: Path = NATS_CLI) -> dict:
    """Create a file stream as ``nats bench --create`` does, and wait until it is ready.

    Ready: it has a leader and, with replicas, every follower is current. A
    publish to an R3 stream whose group is still settling can wait for an
    acknowledgement past the client's timeout (seen with fast batches on a
    busy machine), so the benchmark starts only then.

    Returns:
        The stream's ``stream info``.

    Raises:
        NatsError: it could not be created, or was not ready within ``timeout``.
    """
    config = workdir / f"{stream}.json"
    config.write_text(json.dumps({
        "name": stream, "subjects": [subject], "retention": "limits", "discard": "new",
        "storage": "file", "num_replicas": replicas, "max_bytes": 1 << 30, "allow_direct": True,
        "allow_batched": True}))
    done = subprocess.run([str(cli), "-s", urls, "stream", "add", "--config", str(config)],
                          capture_output=True, timeout=timeout)
    if done.returncode != 0:
        raise NatsError(f"nats stream add {stream} failed: {(done.stdout + done.stderr).decode()[-400:]}")
    deadline = time.monotonic() + timeout
    while True:
        info = stream_info(urls, stream, cli)
        group = info.get("cluster") or {}
        followers = group.get("replicas") or []
        if group.get("leader") and len(followers) == replicas - 1 and all(
                follower.get("current") for follower in followers):
            return info
        if time.monotonic() > deadline:
            raise NatsError(f"stream {stream} not ready within {timeout}s: {group}")
        time.sleep(0.1)


def nats_bench(urls: str, mode: PublishMode, *, messages: int, workdir: Path, size: int = 100,
               replicas: int = 3, clients: int = 1, batch: int = 100, stream: str = "bench",
               timeout: float = 120.0, command_prefix: Sequence[str] = (),
               cli: Path = NATS_CLI) -> BenchFigures:
    """Run ``nats bench js pub MODE`` on a fresh file stream with ``replicas``.

    The stream is made by :func:`create_stream` first (the configuration
    ``nats bench --create`` uses, then waiting until it is ready).

    Args:
        urls: the servers (:attr:`NatsCluster.urls`).
        mode: see :data:`PublishMode`.
        messages: how many to publish (the run's bound in count).
        workdir: where the stream's configuration file is written.
        size: payload bytes.
        replicas: the stream's replicas.
        clients: concurrent publishing clients.
        batch: publishes in flight (``async``) or per batch (``fast``).
        stream: the stream's name, new for each run.
        timeout: seconds before the run is killed (its bound in time).
        command_prefix: prepended to the command (e.g. ``taskset -c 1``).
        cli: the nats CLI executable.
    """
    if not cli.is_file():
        raise NatsError(f"{cli} is missing: run tools/install-cluster-tools.sh")
    subject = f"{stream}.subject"
    create_stream(urls, stream, subject, replicas=replicas, workdir=workdir, cli=cli)
    extra = [] if mode == "sync" else ["--batch", str(batch)]
    command = [*command_prefix, str(cli), "-s", urls, "--timeout", "30s", "bench", "js", "pub", mode,
               subject, "--stream", stream, "--msgs", str(messages), "--size", f"{size}B",
               "--clients", str(clients), "--no-progress", *extra]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise NatsError(f"nats bench {mode} did not finish within {timeout}s") from error
    output = (done.stdout + done.stderr).decode(errors="replace")
    if done.returncode != 0:
        raise NatsError(f"nats bench {mode} failed ({done.returncode}): {output[-600:]}")
    return parse_bench(output, messages)


def stream_info(urls: str, stream: str, cli: Path = NATS_CLI) -> dict:
    """``nats stream info --json``: the stream's config, state and cluster (leader, replicas)."""
    done = subprocess.run([str(cli), "-s", urls, "stream", "info", stream, "--json"],
                          capture_output=True, timeout=30)
    if done.returncode != 0:
        raise NatsError(f"nats stream info failed: {(done.stdout + done.stderr).decode()[-400:]}")
    with contextlib.suppress(ValueError):
        return dict(json.loads(done.stdout))
    raise NatsError(f"nats stream info printed no JSON: {done.stdout.decode()[-400:]}")


__all__ = ["NATS_CLI", "NATS_SERVER", "BenchFigures", "NatsCluster", "NatsError", "NatsNode",
           "PublishMode", "create_stream", "nats_bench", "parse_bench", "stream_info"]
