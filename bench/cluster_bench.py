"""The replicated cluster benchmark: EventStream 3 nodes vs 1 node vs NATS JetStream R3 (and R1).

One run (`make bench-cluster`) measures, on 127.0.0.1, with 100-byte payloads
and every write synced to disk before it is acknowledged:

  * EventStream, one node (`storage.fsync: always`, disk log): unary Publish
    from ghz (SINGLE_CONCURRENCY calls in flight), PublishBatch of 100 events
    (BATCH_CONCURRENCY in flight) and PublishStream (pipelined: STREAMS x
    WINDOW requests of 100 events), from the same clients as
    bench/peers_bench.py;
  * NATS JetStream R3: three nats-server processes routed to each other
    (`jetstream.sync_interval: always`), a file-stored stream with
    `--replicas 3`, driven by `nats bench js pub`: sync (SINGLE_CONCURRENCY
    clients, each waiting for its acknowledgement), fast (batches of 100,
    one flow-control ack each) and async (NATS_ASYNC_WINDOW publishes in flight);
  * fan-out: FANOUT_SUBSCRIBERS subscribers, --fanout-events events published
    in batches of 100, deliveries/s until every subscriber has every event,
    through bench/peer_clients.py's harness on our single node and on an R3
    stream of the NATS cluster (nats-py, ordered push consumers);
  * NATS JetStream R1 on the same cluster (`--replicas 1`), the same runs:
    NATS's own price of replication, R3 / R1, beside ours;
  * EventStream, three nodes: a replicated cluster (`cluster.enabled`, static
    `cluster.peers`), `storage.fsync: always` on every node, so an ack means
    a majority synced the entry; the same clients publish to the leader, and
    the fan-out's subscribers read from the two followers;
    ratio 3 nodes / 1 node per workload;
  * the CPU each EventStream server process spent per event published in
    each workload (leader, followers, single node), from /proc.

Servers are pinned to core 0 (all three NATS nodes share it, as the three
EventStream nodes do) and load tools to core 1 when taskset and two cores
are available. Count-bounded tools (`nats bench`) run once briefly to find
their rate and again for about --duration seconds; every tool run has a
timeout and every process started is stopped, also on failure.

It prints a table and writes cluster.md, cluster.json and cluster.png to
bench/results/ (or --out).

``--rolling`` measures something else instead: a rolling update of the three
nodes as a StatefulSet controller does it (highest ordinal first: SIGTERM,
leadership handed over, restart, wait ready, next), --rolls times, while the
Python SDK (default retry policy, events with ids) publishes one event at a
time through one target naming every node (tests/support/rolling.py). Per
update: the time no node led (every node's /status sampled), the longest wait
between two acknowledgements, the events acknowledged, each node's restart;
written to cluster-rolling.md and cluster-rolling.json (cluster-rolling-learners.*
with learners). Every update must
lose and fail nothing: the run checks it as the cluster test does.
``--learners N`` adds N learners (read replicas, added through AddMember)
before the updates: they are rolled first, as a StatefulSet's highest
ordinals are, and the publisher's connection starts on the last of them.

    python bench/cluster_bench.py [--duration 4] [--quick] [--out DIR]
    python bench/cluster_bench.py --rolling [--rolls 3] [--learners 1] [--out DIR]
    python bench/cluster_bench.py --profile PREFIX [--duration 4] [--sections]

``--profile PREFIX`` runs only the three nodes' batched and pipelined
publishes, prints the CPU per event (user and system, then by thread) and
the events per fsync of the leader and of one follower, records py-spy of both into
PREFIX.<workload>.<role>.txt and keeps the nodes' logs as PREFIX.<node>.log.
py-spy samples at 200 Hz without stopping the process and only the thread
holding the GIL (the Python CPU time); with native frames it must stop the
process at every sample, which cuts these runs' rate about twentyfold.
``--sections`` adds the CPU per call of the replication path's steps in
both (``bench/cluster_sections``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_clients
import peers_bench  # imports publish_bench, which puts the repository root on sys.path
import publish_bench as pb

from tests.support import nats_cluster
from tests.support.cluster import Cluster
from tests.support.cluster_reads import read_stored, wait_caught_up
from tests.support.rolling import RollingFigures, SdkPublisher, roll, service_target
from tests.support.server import ServerProcess, metric

SIZE = 100
BATCH = peers_bench.BATCH
SINGLE_CONCURRENCY = peers_bench.SINGLE_CONCURRENCY
BATCH_CONCURRENCY = peers_bench.BATCH_CONCURRENCY
STREAMS, WINDOW = peers_bench.STREAMS, peers_bench.WINDOW
NATS_ASYNC_WINDOW = peers_bench.NATS_ASYNC_WINDOW
RESULTS = Path(__file__).resolve().parent / "results"

FANOUT_SUBSCRIBERS = peers_bench.FANOUT_SUBSCRIBERS

UNARY, BATCHED, PIPELINED = "publish unary", f"publish batched x{BATCH}", "publish pipelined"
FANOUT = f"fan-out to {FANOUT_SUBSCRIBERS} subscribers (deliveries/s)"
WORKLOADS = [UNARY, BATCHED, PIPELINED, FANOUT]
THREE_NODES, ONE_NODE = "EventStream 3 nodes", "EventStream 1 node"
NATS_R3, NATS_R1 = "NATS JetStream R3", "NATS JetStream R1"
SYSTEMS = [THREE_NODES, ONE_NODE, NATS_R3, NATS_R1]


class NatsClusterEndpoint(peer_clients.NatsEndpoint):
    """peer_clients' NATS endpoint on a stream with ``replicas`` of a cluster (every node's URL)."""

    def __init__(self, urls: str, replicas: int) -> None:
        super().__init__(urls)
        self.replicas = replicas

    async def connect(self) -> None:
        """Connect to the cluster and create the stream with its replicas."""
        import nats
        from nats.js.api import StorageType, StreamConfig
        self.connection = await nats.connect(servers=self.address.split(","), connect_timeout=10)
        self.jetstream = self.connection.jetstream(timeout=10)
        await self.jetstream.add_stream(StreamConfig(name="E2E", subjects=[self.subject],
                                                     storage=StorageType.FILE,
                                                     num_replicas=self.replicas))


def fanout(endpoint: peer_clients.Endpoint, events: int) -> float:
    """Deliveries/s of peer_clients.fanout through ``endpoint`` (connected and closed here)."""
    async def measure() -> dict:
        await endpoint.connect()
        try:
            return await peer_clients.fanout(endpoint, FANOUT_SUBSCRIBERS, events)
        finally:
            await endpoint.close()
    fan = peers_bench.run_async(measure())
    if fan["delivered"] < fan["wanted"]:
        print(f"  fan-out delivered {fan['delivered']} of {fan['wanted']}", file=sys.stderr)
    return float(fan["deliveries_per_s"])


class FollowerFanoutEndpoint(peer_clients.OursEndpoint):
    """Our endpoint publishing to the leader while its subscribers read from the followers.

    Subscriber ``i`` subscribes on ``followers[i % len(followers)]``: every
    delivery comes from a follower's applied log.
    """

    def __init__(self, leader: str, followers: list[str]) -> None:
        super().__init__(leader)
        self.followers = followers

    async def connect(self) -> None:
        """Channels to the leader (publishes) and to every follower (subscriptions)."""
        import grpc

        from eventstream.v1 import subscribe_pb2_grpc
        await super().connect()
        self.follower_channels = [grpc.aio.insecure_channel(address) for address in self.followers]
        self.follower_stubs = [subscribe_pb2_grpc.SubscribeServiceStub(channel)
                               for channel in self.follower_channels]

    def subscriber_for(self, index: int):
        """Subscriber ``index`` reads from a follower."""
        return self.follower_stubs[index % len(self.follower_stubs)]

    async def close(self) -> None:
        """Close every channel."""
        for channel in self.follower_channels:
            await channel.close()
        await super().close()


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def thread_cpu(pid: int) -> collections.Counter[str]:
    """CPU seconds (user + system) the threads of a process used so far, by name.

    The main thread (the event loop's) is ``main``; the others go by the
    name the kernel knows them by (Python's threads keep the process's).
    """
    tick = os.sysconf("SC_CLK_TCK")
    used: collections.Counter[str] = collections.Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            head, _, tail = (task / "stat").read_text().rpartition(")")
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        fields = tail.split()
        name = "main" if task.name == str(pid) else head.partition("(")[2]
        used[name] += (int(fields[11]) + int(fields[12])) / tick
    return used


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    return sum(cpu_split(pid))


def publish_figures(target: str, ghz: str, workdir: Path, args: argparse.Namespace, pin: bool,
                    fanout_endpoint: peer_clients.Endpoint,
                    servers: dict[str, int]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Events/s of unary, batched and pipelined publishes to ``target``, and the fan-out.

    Also the CPU the ``servers`` (role -> pid) spent per event published in
    each workload, in microseconds: where a replicated node's time goes.
    """
    from eventstream.v1 import common_pb2
    unary = pb.publish_pb2.PublishRequest(event=common_pb2.Event(
        topic=pb.TOPIC, payload=b"x" * SIZE)).SerializeToString()
    call = "eventstream.v1.PublishService.Publish"
    pb.run_ghz(ghz, target, call, unary, SINGLE_CONCURRENCY, 1.0, 1, pin, workdir)  # warm-up

    def unary_rate() -> float:
        run = pb.run_ghz(ghz, target, call, unary, SINGLE_CONCURRENCY, args.duration, 1, pin,
                         workdir)
        if run["errors"]:
            raise RuntimeError(f"the server answered errors: {run['errors']}")
        return float(run["events_per_s"])

    workloads = {
        UNARY: unary_rate,
        BATCHED: lambda: peers_bench.raw_client(target, "batch", SIZE, args.duration, 1,
                                                BATCH_CONCURRENCY, pin),
        PIPELINED: lambda: peers_bench.raw_client(target, "stream", SIZE, args.duration, STREAMS,
                                                  WINDOW, pin),
        FANOUT: lambda: fanout(fanout_endpoint, args.fanout_events),
    }
    figures, cpu = {}, {}
    for workload, measure in workloads.items():
        before = {role: cpu_seconds(pid) for role, pid in servers.items()}
        figures[workload] = measure()
        published = (args.fanout_events if workload == FANOUT
                     else figures[workload] * args.duration)
        cpu[workload] = {role: round((cpu_seconds(pid) - before[role]) * 1e6 / max(published, 1), 2)
                         for role, pid in servers.items()}
    return figures, cpu


SERVER_CONFIG = {"server": {"drain_timeout_seconds": 5.0},
                 "storage": {"engine": "disk", "fsync": "always"}}
"""Every EventStream node's settings in this benchmark."""


def version() -> str:
    """The measured server's version."""
    return f"eventstream-server {importlib.metadata.version('eventstream-server')}"


def single_node(workdir: Path, ghz: str, args: argparse.Namespace, pin: bool) -> dict:
    """Events/s of one EventStream node under fsync: always, per workload."""
    (workdir / "one-node").mkdir()
    server = ServerProcess(workdir / "one-node", config=SERVER_CONFIG)
    with contextlib.ExitStack() as stack:
        stack.callback(server.stop, 15.0)
        server.start()
        assert server.process is not None
        peers_bench.peer_servers._pin(server.process.pid, pin)
        figures, cpu = publish_figures(server.target, ghz, workdir, args, pin,
                                       peer_clients.OursEndpoint(server.target),
                                       {"node": server.process.pid})
        return {"figures": figures, "cpu_us_per_event": cpu, "version": version(),
                "setup": "one node, disk log, storage.fsync: always"}


def three_nodes(workdir: Path, ghz: str, args: argparse.Namespace, pin: bool) -> dict:
    """Events/s of a replicated 3-node cluster under fsync: always, per workload.

    Publishes go to the leader (acknowledged once a majority synced the
    entry); the fan-out's subscribers read from the two followers.
    """
    cluster = Cluster(workdir / "three-nodes", 3, SERVER_CONFIG)
    with contextlib.ExitStack() as stack:
        stack.callback(cluster.stop)
        cluster.start()
        for server in cluster.nodes.values():
            assert server.process is not None
            peers_bench.peer_servers._pin(server.process.pid, pin)
        leader = cluster.wait_leader()
        followers = [cluster.nodes[node].target for node in cluster.nodes if node != leader]
        target = cluster.nodes[leader].target
        pids = {"leader": cluster.nodes[leader].process.pid}
        pids.update({f"follower {node}": server.process.pid
                     for node, server in cluster.nodes.items() if node != leader})
        figures, cpu = publish_figures(target, ghz, workdir, args, pin,
                                       FollowerFanoutEndpoint(target, followers), pids)
        term = cluster.status(cluster.wait_leader())["cluster"]["term"]
        return {"figures": figures, "cpu_us_per_event": cpu, "version": version(),
                "setup": "3 nodes replicated with Raft on 127.0.0.1, disk log, storage.fsync: "
                         "always on every node; publishes to the leader, fan-out subscribers "
                         f"on the followers; final term {term}"}


def nats_side(workdir: Path, args: argparse.Namespace, pin: bool) -> dict[str, dict]:
    """Messages/s of NATS JetStream on three routed nodes per workload, R3 and R1 streams."""
    prefix = ["taskset", "-c", str(pb.CLIENT_CORE)] if pin else []
    runs = 0

    def bench(replicas: int, mode: nats_cluster.PublishMode, clients: int, batch: int):
        def run_count(count: int) -> float:
            nonlocal runs
            runs += 1  # a fresh stream per run
            return nats_cluster.nats_bench(
                cluster.urls, mode, messages=count, size=SIZE, replicas=replicas, clients=clients,
                batch=batch, stream=f"r{replicas}-{runs}", timeout=args.duration * 10 + 60,
                command_prefix=prefix, workdir=workdir).messages_per_s
        return run_count

    def measure(replicas: int) -> dict[str, float]:
        return {
            UNARY: peers_bench.calibrated(bench(replicas, "sync", SINGLE_CONCURRENCY, 1),
                                          SINGLE_CONCURRENCY * 20, args.duration, args.quick),
            BATCHED: peers_bench.calibrated(bench(replicas, "fast", 1, BATCH), 5_000,
                                            args.duration, args.quick),
            PIPELINED: peers_bench.calibrated(bench(replicas, "async", 1, NATS_ASYNC_WINDOW), 5_000,
                                              args.duration, args.quick),
        }

    with nats_cluster.NatsCluster(workdir / "nats", sync_always=True) as cluster:
        for pid in cluster.pids():
            peers_bench.peer_servers._pin(pid, pin)
        version = peers_bench.peer_servers._version([str(nats_cluster.NATS_SERVER), "--version"])
        setup = ("3 nats-server nodes routed on 127.0.0.1, jetstream.sync_interval: always, "
                 "file stream with --replicas {}")
        sides = {system: {"figures": measure(replicas), "version": version,
                          "setup": setup.format(replicas)}
                 for system, replicas in ((NATS_R3, 3), (NATS_R1, 1))}
        sides[NATS_R3]["figures"][FANOUT] = fanout(NatsClusterEndpoint(cluster.urls, 3),
                                                   args.fanout_events)
        return sides


def fmt(value: float | None) -> str:
    """A rate with thousands separators, or a dash."""
    return f"{value:,.0f}" if value is not None else "—"


def ratio(numerator: float | None, denominator: float | None) -> str:
    """Numerator / denominator to two places, or a dash when either is missing."""
    return f"{numerator / denominator:.2f}" if numerator and denominator else "—"


def rows(results: dict[str, dict]) -> list[list[str]]:
    """The table: one row per workload, a column per system, then two ratios."""
    def figure(system: str, workload: str) -> float | None:
        return results[system].get("figures", {}).get(workload)
    table = []
    for workload in WORKLOADS:
        three = figure(THREE_NODES, workload)
        table.append([workload, fmt(three),
                      fmt(figure(ONE_NODE, workload)), fmt(figure(NATS_R3, workload)),
                      fmt(figure(NATS_R1, workload)),
                      ratio(three, figure(ONE_NODE, workload)),
                      ratio(figure(NATS_R3, workload), figure(NATS_R1, workload)),
                      ratio(three, figure(NATS_R3, workload))])
    return table


HEADER = ["events/s", *SYSTEMS, "ours 3 / 1 node", "NATS R3 / R1", "ours 3 nodes / NATS R3"]


def text_table(results: dict[str, dict]) -> str:
    """The table for the terminal, columns aligned."""
    lines = [HEADER, *rows(results)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(width) if i == 0 else cell.rjust(width)
                               for i, (cell, width) in enumerate(zip(line, widths, strict=True)))
                     for line in lines)


def cpu_table(results: dict[str, dict], pinned: bool = True) -> str:
    """Server CPU microseconds per event published, per workload and process (markdown)."""
    columns = [(system, role) for system in (THREE_NODES, ONE_NODE)
               for role in results[system].get("cpu_us_per_event", {}).get(UNARY, {})]
    where = "all servers share one core" if pinned else "servers and load tools share both cores"
    lines = [f"Server CPU per event published (µs; {where}):", "",
             "| workload | " + " | ".join(f"{system}: {role}" for system, role in columns) + " |",
             "|" + "---|" * (len(columns) + 1)]
    for workload in WORKLOADS:
        lines.append(f"| {workload} | " + " | ".join(
            f"{results[system]['cpu_us_per_event'][workload][role]:.1f}"
            for system, role in columns) + " |")
    return "\n".join(lines)


def markdown(results: dict[str, dict], info: dict[str, str], args: argparse.Namespace) -> str:
    """cluster.md: the table, the systems and the machine."""
    out = ["# Replicated cluster benchmark (`bench/cluster_bench.py`)", "",
           f"100-byte payloads, every write synced before it is acknowledged, "
           f"{args.duration:g} s per publish workload{' (quick run)' if args.quick else ''}; "
           f"fan-out of {args.fanout_events:,} events to {FANOUT_SUBSCRIBERS} subscribers.", "",
           "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(row) + " |" for row in rows(results)]
    pinned = info.get("pinning", "").startswith("servers on core")
    out += ["", cpu_table(results, pinned), "", "Systems:"]
    for system in SYSTEMS:
        entry = results[system]
        out.append(f"- {system}: " + (entry.get("unavailable") or
                                     f"{entry['version']}; {entry['setup']}"))
    out += ["", "Machine:"] + [f"- {key}: {value}" for key, value in info.items()]
    return "\n".join(out) + "\n"


def plot(results: dict[str, dict], path: Path) -> None:
    """Grouped bars of events/s per workload and system, log scale.

    A system without figures is left out and named in the title.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    measured = [s for s in SYSTEMS if "figures" in results[s]]
    fig, ax = plt.subplots(figsize=(9, 5))
    width = 0.8 / max(1, len(measured))
    for offset, system in enumerate(measured):
        heights = [results[system]["figures"].get(w, float("nan")) for w in WORKLOADS]
        ax.bar([i + offset * width for i in range(len(WORKLOADS))], heights, width, label=system)
    ax.set_yscale("log")
    ax.set_xticks([i + width * (len(measured) - 1) / 2 for i in range(len(WORKLOADS))])
    ax.set_xticklabels([w.replace(" (deliveries/s)", "") for w in WORKLOADS])
    ax.set_ylabel("events/s (log scale)")
    missing = [s for s in SYSTEMS if s not in measured]
    ax.set_title("Publish with fsync before the ack, same machine, same run"
                 + (f"\n(not shown: {', '.join(missing)}: the run failed)" if missing else ""))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """Measure both sides, print the table, write the results; 0 when NATS R3 ran too."""
    started_run = peers_bench.start_run("load tools")
    if started_run is None:
        return 2
    pin, ghz, info = started_run
    if args.no_pin:
        # A member per core is what a deployment has; two cores cannot give each of
        # three members one, so this run lets every process use both instead.
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        pin = False
        info["pinning"] = "none (--no-pin): servers and load tools share both cores"
    load_before = peers_bench.load_average()
    started = time.monotonic()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="es-cluster-bench-") as tmp:
        results[THREE_NODES] = three_nodes(Path(tmp), ghz, args, pin)
        results[ONE_NODE] = single_node(Path(tmp), ghz, args, pin)
        try:
            results.update(nats_side(Path(tmp), args, pin))
        except nats_cluster.NatsError as error:  # EventStream's figures still print
            print(f"NATS JetStream failed: {error}", file=sys.stderr)
            results[NATS_R3] = results[NATS_R1] = {"unavailable": f"the run failed: {error}"}
    info["load average (1/5/15 min) before / after"] = f"{load_before} / {peers_bench.load_average()}"
    info["run time"] = f"{time.monotonic() - started:.0f} s"
    print(text_table(results))
    print(cpu_table(results, pin))
    for key, value in info.items():
        print(f"{key}: {value}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cluster.md").write_text(markdown(results, info, args))
    (out / "cluster.json").write_text(json.dumps({"results": results, "machine": info}, indent=1) + "\n")
    plot(results, out / "cluster.png")
    print(f"wrote {out / 'cluster.md'}, {out / 'cluster.png'}")
    return 0 if "figures" in results[NATS_R3] else 1


ROLLING_MAX_EVENTS = 1_000_000
"""The rolling publisher's bound; it is stopped once the updates are done."""


def rolling_updates(workdir: Path, rolls: int, pin: bool, learners: int = 0) -> list[RollingFigures]:
    """``rolls`` rolling updates of 3 voters and ``learners`` learners under the SDK publisher.

    Returns each update's figures.

    Raises:
        AssertionError: a publish failed, or an acknowledged event is not
            stored exactly once on every node.
    """
    cluster = Cluster(workdir / "rolling", 3, SERVER_CONFIG)
    figures: list[RollingFigures] = []
    with contextlib.ExitStack() as stack:
        stack.callback(cluster.stop)
        cluster.start()

        def pin_server(server: ServerProcess) -> None:
            assert server.process is not None
            peers_bench.peer_servers._pin(server.process.pid, pin)
        for server in cluster.nodes.values():
            pin_server(server)
        cluster.wait_leader()
        for number in range(4, 4 + learners):
            pin_server(cluster.add_learner(f"n{number}"))
        first = f"n{3 + learners}" if learners else None
        publisher = SdkPublisher(service_target(cluster, first), "roll", ROLLING_MAX_EVENTS).start()
        stack.callback(publisher.stop)
        publisher.wait_acks(100)
        for number in range(rolls):
            figures.append(roll(cluster, publisher, on_restart=pin_server))
            print(f"update {number + 1}: {figures[-1].line()}", flush=True)
            publisher.wait_acks(len(publisher.acks) + 100)
        publisher.stop()
        publisher.join(60)
        assert publisher.errors == [], publisher.errors[:5]
        ids = [event_id for _, event_id, *_ in publisher.acks]
        assert len(ids) == len(set(ids)), "an event acknowledged twice"
        cluster.wait_leader()
        wait_caught_up(cluster, list(cluster.nodes))
        expected = sorted((partition, offset, event_id)
                          for _, event_id, partition, offset in publisher.acks)
        for node in cluster.nodes:
            stored = asyncio.run(read_stored(cluster, node))
            assert stored == expected, f"{node} does not hold every acknowledged event once"
    return figures


def rolling_markdown(figures: list[RollingFigures], info: dict[str, str]) -> str:
    """The rolling updates' table and the machine they ran on."""
    lines = ["| update | restarts (SIGTERM to ready) | leaders | no leader, total (s) | "
             "no leader, longest (s) | longest gap between acks (s) | events acknowledged |",
             "|---|---|---|---|---|---|---|"]
    for number, update in enumerate(figures, 1):
        restarts = ", ".join(f"{node} {seconds:.2f} s" for node, seconds in update.restarts)
        lines.append(f"| {number} | {restarts} | {' → '.join(update.leaders)} | "
                     f"{update.leaderless_seconds:.3f} | {update.longest_leaderless_seconds:.3f} | "
                     f"{update.longest_ack_gap_seconds:.3f} | {update.acks:,} |")
    samples = max(update.sample_seconds for update in figures)
    lines += ["", f"Who leads sampled about every {samples * 1000:.0f} ms (every node's "
              "/status); no publish failed and every acknowledged event is stored once on "
              "every node.", ""]
    lines += [f"- {key}: {value}" for key, value in info.items()]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def profiled(pids: dict[str, int], prefix: str, workload: str, seconds: float):
    """py-spy (raw collapsed stacks, GIL holder only) of every process in ``pids`` (role -> pid)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    name = workload.split()[1]
    recorders = {role: subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--output", f"{prefix}.{name}.{role}.txt", "--format", "raw",
         "--rate", "200", "--nonblocking", "--gil", "--duration", str(int(seconds) + 1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for role, pid in pids.items()}
    try:
        time.sleep(1.0)  # py-spy attaches
        yield
        for role, recorder in recorders.items():
            _, errors = recorder.communicate(timeout=seconds + 60)
            if recorder.returncode:
                print(f"py-spy of the {role} failed: {errors.strip()[-400:]}", file=sys.stderr)
    finally:
        for recorder in recorders.values():
            pb.stop_process(recorder)


FSYNCS = "eventstream_storage_fsyncs_total"
"""fdatasync calls of a node's log (one per write round under fsync: always)."""


def run_profile(args: argparse.Namespace) -> int:
    """py-spy of the leader and one follower during the three nodes' batched and pipelined runs."""
    pin = pb.pinning()
    if pin:
        os.sched_setaffinity(0, {pb.CLIENT_CORE})
    with tempfile.TemporaryDirectory(prefix="es-cluster-profile-") as tmp:
        env = None
        if args.sections:
            (Path(tmp) / "sections").mkdir()
            path = [str(SECTIONS), *filter(None, [os.environ.get("PYTHONPATH")])]
            env = {SECTIONS_ENV: str(Path(tmp) / "sections"), "PYTHONPATH": os.pathsep.join(path)}
        cluster = Cluster(Path(tmp) / "three-nodes", 3, SERVER_CONFIG, env=env)
        with contextlib.ExitStack() as stack:
            stack.callback(lambda: [shutil.copy(server.log_path, f"{args.profile}.{node}.log")
                                    for node, server in cluster.nodes.items()])
            stack.callback(cluster.stop)
            cluster.start()
            for server in cluster.nodes.values():
                peers_bench.peer_servers._pin(server.process.pid, pin)
            leader = cluster.wait_leader()
            follower = next(node for node in cluster.nodes if node != leader)
            target = cluster.nodes[leader].target
            pids = {"leader": cluster.nodes[leader].process.pid,
                    "follower": cluster.nodes[follower].process.pid}
            runs = {BATCHED: ("batch", 1, BATCH_CONCURRENCY), PIPELINED: ("stream", STREAMS, WINDOW)}
            for workload, (mode, streams, window) in runs.items():
                nodes = {"leader": cluster.nodes[leader], "follower": cluster.nodes[follower]}
                fsyncs = {role: metric(node, FSYNCS) for role, node in nodes.items()}
                before = {role: cpu_split(pid) for role, pid in pids.items()}
                threads = {role: thread_cpu(pid) for role, pid in pids.items()}
                with profiled(pids, args.profile, workload, args.duration):
                    rate = peers_bench.raw_client(target, mode, SIZE, args.duration, streams, window, pin)
                events = max(rate * args.duration, 1)
                cpu = {role: "{:.2f} user + {:.2f} system".format(
                    *((now - then) * 1e6 / events for now, then in zip(cpu_split(pid), before[role],
                                                                       strict=True)))
                       for role, pid in pids.items()}
                per_fsync = {role: round(events / max(metric(node, FSYNCS) - fsyncs[role], 1))
                             for role, node in nodes.items()}
                print(f"{workload}: {rate:,.0f} events/s, CPU µs per event {cpu}, "
                      f"events per fsync {per_fsync}", flush=True)
                for role, pid in pids.items():
                    used = thread_cpu(pid)
                    used.subtract(threads[role])
                    print(f"  {role}'s threads, CPU µs per event: " + ", ".join(
                        f"{name} {seconds * 1e6 / events:.2f}"
                        for name, seconds in used.most_common() if seconds > 0), flush=True)
        if args.sections:
            for role, pid in pids.items():
                print_sections(role, Path(tmp) / "sections" / f"{pid}.json")
    return 0


SECTIONS = Path(__file__).resolve().parent / "cluster_sections"
"""The directory whose ``sitecustomize`` times the replication path's steps (``--sections``)."""
SECTIONS_ENV = "EVENTSTREAM_BENCH_SECTIONS"


def print_sections(role: str, path: Path) -> None:
    """Print what ``cluster_sections`` recorded in one server: CPU per call of each step."""
    if not path.exists():
        print(f"no sections recorded by the {role} (it did not exit cleanly?)", file=sys.stderr)
        return
    found = json.loads(path.read_text())
    main = found["main_thread_seconds"]
    print(f"  {role}: main thread {main:.2f} s of CPU from its first peer message on; per step, "
          "calls, µs per call, share of the main thread:")
    for label, step in sorted(found["sections"].items(), key=lambda item: -item[1]["seconds"]):
        share = step["seconds"] / main if main else 0.0
        print(f"    {label}: {step['calls']:,}, {step['seconds'] * 1e6 / max(step['calls'], 1):.1f}, "
              f"{share:.1%}")


def run_rolling(args: argparse.Namespace) -> int:
    """Measure --rolls rolling updates, print them, write cluster-rolling.md and .json."""
    pin = pb.pinning()
    if pin:
        os.sched_setaffinity(0, {pb.CLIENT_CORE})
    info = pb.machine()
    info["setup"] = (f"3 voters and {args.learners} learner(s) on 127.0.0.1, disk log, "
                     "storage.fsync: always; the SDK publisher (default retry policy) through "
                     "one target naming every node")
    info["load average (1/5/15 min) before"] = peers_bench.load_average()
    with tempfile.TemporaryDirectory(prefix="es-cluster-rolling-") as tmp:
        figures = rolling_updates(Path(tmp), args.rolls, pin, args.learners)
    info["load average (1/5/15 min) after"] = peers_bench.load_average()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "cluster-rolling-learners" if args.learners else "cluster-rolling"
    (out / f"{stem}.md").write_text(rolling_markdown(figures, info))
    (out / f"{stem}.json").write_text(json.dumps(
        {"updates": [dataclasses.asdict(update) for update in figures], "machine": info},
        indent=1) + "\n")
    print(f"wrote {out / stem}.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description="EventStream 3 nodes vs 1 node vs NATS JetStream R3 and R1")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per workload")
    parser.add_argument("--out", default=str(RESULTS), help="directory for cluster.md, .json and .png")
    parser.add_argument("--fanout-events", type=int, default=10_000,
                        help=f"events published to the {FANOUT_SUBSCRIBERS} subscribers of the fan-out")
    parser.add_argument("--no-pin", action="store_true",
                        help="let servers and load tools use every core (default: servers on core 0, "
                             "load tools on core 1)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 s per workload, one short nats bench run each, "
                             "1,000 fan-out events")
    parser.add_argument("--rolling", action="store_true",
                        help="measure rolling updates under an SDK publisher instead")
    parser.add_argument("--rolls", type=int, default=3, help="rolling updates with --rolling")
    parser.add_argument("--learners", type=int, default=0,
                        help="learners (read replicas) beside the 3 voters with --rolling")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="only py-spy the three nodes' batched and pipelined runs into "
                             "PREFIX.<workload>.<role>.txt")
    parser.add_argument("--sections", action="store_true",
                        help="with --profile: also time the replication path's steps in the "
                             "leader and the follower (CPU per call, bench/cluster_sections)")
    args = parser.parse_args(argv)
    if args.profile:
        args.duration = min(max(args.duration, 0.5), 60.0)
        return run_profile(args)
    if args.rolling:
        args.rolls = min(max(args.rolls, 1), 20)
        args.learners = min(max(args.learners, 0), 4)
        return run_rolling(args)
    if args.quick:
        args.duration = 1.0
        args.fanout_events = min(args.fanout_events, 1000)
    args.duration = min(max(args.duration, 0.5), 60.0)
    args.fanout_events = min(max(args.fanout_events, 100), 1_000_000)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
