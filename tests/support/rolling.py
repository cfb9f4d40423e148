"""A rolling update of a replicated cluster as a StatefulSet controller does it, under SDK load.

The cluster's nodes are replaced one at a time, highest ordinal first: SIGTERM
(the node drains and hands its leadership over), restart on the same data
dir, and wait until it is ready again (``/health``: it knows a leader and has
caught up) before the next. Meanwhile a :class:`SdkPublisher` publishes
events with ids through a "service" (one gRPC target listing every node; the
channel keeps one connection and moves to another node when it breaks, as a
connection through a Kubernetes Service does) and a :class:`LeaderWatch`
samples every node's ``/status`` to time the moments no node leads.

Used by ``tests/integration/test_cluster_rolling.py`` (correctness, figures
printed) and ``bench/cluster_bench.py --rolling`` (figures recorded).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from eventstream.client import Client, Event

from .cluster import Cluster
from .server import ServerProcess

SAMPLE_SECONDS = 0.02
"""How often :class:`LeaderWatch` asks every node who leads: the resolution of its figures."""


def service_target(cluster: Cluster, first: str | None = None) -> str:
    """One gRPC target naming every node (pick-first: one connection, moved when it breaks).

    ``first`` puts that node first, so the connection starts there, as a
    Service picking that pod for it would.
    """
    nodes = sorted(cluster.nodes, key=lambda node: node != first)
    return "ipv4:" + ",".join(f"{cluster.nodes[node].host}:{cluster.nodes[node].grpc_port}"
                              for node in nodes)


class SdkPublisher:
    """The SDK client with its default retry policy publishing ``<prefix>-<n>`` one at a time.

    Bounded by ``count`` events and by :meth:`stop`; runs in its own thread.
    Records each acknowledgement with the monotonic time it came.

    Args:
        target: the gRPC target (a node, or :func:`service_target`).
        prefix: the events' id prefix.
        count: at most this many events.
    """

    def __init__(self, target: str, prefix: str, count: int) -> None:
        self.acks: list[tuple[float, str, int, int]] = []
        """(monotonic time acknowledged, id, partition, offset) of each event, in order."""
        self.sent: list[float] = []
        """When the publish of each acknowledged event started (same order)."""
        self.errors: list[str] = []
        self._target = target
        self._prefix = prefix
        self._count = count
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SdkPublisher:
        """Start publishing."""
        self._thread.start()
        return self

    def _run(self) -> None:
        with Client(self._target, timeout=30.0) as client:  # the SDK's default retry policy
            for i in range(self._count):
                if self._stop.is_set():
                    return
                sent_at = time.monotonic()
                try:
                    ack = client.publish(Event(f"load/{i % 3}", b"%d" % i, key=f"k{i % 5}",
                                               id=f"{self._prefix}-{i}"))
                except Exception as error:  # recorded: the callers assert there is none
                    self.errors.append(f"{self._prefix}-{i}: {error}")
                    continue
                self.acks.append((time.monotonic(), ack.id, ack.partition, ack.offset))
                self.sent.append(sent_at)

    def stop(self) -> None:
        """Publish no further event (the one in flight finishes)."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        """Wait until the thread ends (fails after ``timeout`` seconds)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the publisher did not finish in time"

    def wait_acks(self, count: int, timeout: float = 30.0) -> None:
        """Wait until ``count`` events are acknowledged."""
        deadline = time.monotonic() + timeout
        while len(self.acks) < count:
            assert time.monotonic() < deadline, f"only {len(self.acks)} acks: {self.errors}"
            time.sleep(0.01)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time between consecutive acknowledgements within [start, end] (seconds)."""
        times = [start, *(at for at, *_ in self.acks if start <= at <= end), end]
        return max(later - earlier for earlier, later in itertools.pairwise(times))


class SdkSubscriber:
    """The SDK client with its default retry policy subscribed to ``pattern`` from the earliest event.

    The subscription resumes after a broken connection from the next offset
    of every partition it delivered from. Records every event delivered;
    bounded by ``count`` events and by :meth:`stop`; runs in its own thread.

    Args:
        target: the gRPC target (a node, or :func:`service_target`).
        pattern: the topic pattern.
        count: at most this many events.
    """

    def __init__(self, target: str, pattern: str, count: int) -> None:
        self.events: list[tuple[str, int, int]] = []
        """(id, partition, offset) of every event delivered, in order."""
        self.errors: list[str] = []
        self._client = Client(target, timeout=30.0)
        self._subscription = self._client.subscribe(pattern, start="earliest")
        self._count = count
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SdkSubscriber:
        """Start reading."""
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for event in self._subscription:
                self.events.append((event.id, event.partition, event.offset))
                if len(self.events) >= self._count:
                    return
        except Exception as error:  # recorded: the callers assert there is none
            self.errors.append(repr(error))

    def wait_ids(self, ids: set[str], timeout: float = 60.0) -> None:
        """Wait until every id in ``ids`` was delivered."""
        deadline = time.monotonic() + timeout
        while not ids <= {event_id for event_id, *_ in self.events}:
            assert time.monotonic() < deadline, (
                f"{len(ids - {event_id for event_id, *_ in self.events})} events not delivered: "
                f"{self.errors}")
            time.sleep(0.05)

    def stop(self) -> None:
        """End the subscription and wait for the thread."""
        self._subscription.close()
        self._thread.join(30)
        self._client.close()
        assert not self._thread.is_alive(), "the subscriber did not finish in time"


class LeaderWatch:
    """Samples every node's ``/status`` each :data:`SAMPLE_SECONDS`: who leads, if anyone.

    A sample's leader is a running node that reports role ``leader``; a node
    that does not answer (stopped, restarting) leads no one.
    """

    def __init__(self, cluster: Cluster) -> None:
        self.samples: list[tuple[float, str | None]] = []
        """(monotonic time, the leader or None) of each sample."""
        self._cluster = cluster
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LeaderWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self._leader()))
            self._stop.wait(SAMPLE_SECONDS)

    def _leader(self) -> str | None:
        for node in self._cluster.running():
            try:
                if self._cluster.status(node)["cluster"]["role"] == "leader":
                    return node
            except (OSError, ValueError, KeyError):
                continue
        return None

    def leaders(self) -> list[str]:
        """The leaders seen, in order, each once per term of office."""
        seen: list[str] = []
        for _, leader in self.samples:
            if leader is not None and seen[-1:] != [leader]:
                seen.append(leader)
        return seen

    def leaderless(self) -> tuple[float, float]:
        """(total, longest) seconds from a sample without a leader to the next with one."""
        total = longest = 0.0
        since: float | None = None
        for at, leader in self.samples:
            if leader is None and since is None:
                since = at
            elif leader is not None and since is not None:
                total += at - since
                longest = max(longest, at - since)
                since = None
        return total, longest

    def interval(self) -> float:
        """The mean time between samples: the resolution of :meth:`leaderless`."""
        times = [at for at, _ in self.samples]
        return (times[-1] - times[0]) / max(len(times) - 1, 1)


@dataclass(frozen=True, slots=True)
class RollingFigures:
    """What a rolling update cost the publisher."""

    restarts: list[tuple[str, float]]
    """(node, seconds from SIGTERM until it was ready again), in the order rolled."""
    leaders: list[str]
    """The leaders in office during the update, in order."""
    leaderless_seconds: float
    """Time no node led, summed over the update (sampled: see ``sample_seconds``)."""
    longest_leaderless_seconds: float
    sample_seconds: float
    """The mean time between two samples of who leads."""
    acks: int
    """Events acknowledged during the update."""
    longest_ack_gap_seconds: float
    """The longest wait between two acknowledgements during the update."""

    def line(self) -> str:
        """One printable line."""
        restarts = ", ".join(f"{node} {seconds:.2f} s" for node, seconds in self.restarts)
        return (f"rolling update ({restarts}; leaders {' -> '.join(self.leaders)}): no leader "
                f"{self.leaderless_seconds:.3f} s in all, longest "
                f"{self.longest_leaderless_seconds:.3f} s (sampled every "
                f"{self.sample_seconds * 1000:.0f} ms); {self.acks} events "
                f"acknowledged meanwhile, longest gap between acks "
                f"{self.longest_ack_gap_seconds:.3f} s")


def ordinal(node: str) -> int:
    """The number a node id ends with: ``n3`` -> 3, ``eventstream-3`` -> 3."""
    match = re.search(r"(\d+)$", node)
    assert match is not None, f"{node} ends with no number"
    return int(match.group(1))


def roll(cluster: Cluster, publisher: SdkPublisher, ready_timeout: float = 60.0,
         on_restart: Callable[[ServerProcess], None] | None = None) -> RollingFigures:
    """Replace every node, highest ordinal first, while ``publisher`` publishes (see the module).

    ``on_restart`` is called with each node right after its process started again.
    """
    order = sorted(cluster.nodes, key=ordinal, reverse=True)
    restarts = []
    with LeaderWatch(cluster) as watch:
        started = time.monotonic()
        for node in order:
            server = cluster.nodes[node]
            stopping = time.monotonic()
            assert server.stop() == 0, f"{node} did not drain cleanly:\n{server.log()}"
            server.start(wait=False)
            if on_restart is not None:
                on_restart(server)
            server.wait_healthy(ready_timeout)
            restarts.append((node, time.monotonic() - stopping))
        ended = time.monotonic()
    total, longest = watch.leaderless()
    acks = sum(1 for at, *_ in publisher.acks if started <= at <= ended)
    return RollingFigures(restarts, watch.leaders(), total, longest, watch.interval(), acks,
                          publisher.longest_gap(started, ended))


def roll_under_load(cluster: Cluster, publisher: SdkPublisher) -> RollingFigures:
    """Run :func:`roll` once ``publisher`` has 50 acknowledgements.

    It must get 50 more after the update. The publisher is stopped (and
    joined) in any case.
    """
    try:
        publisher.wait_acks(50)
        figures = roll(cluster, publisher)
        publisher.wait_acks(len(publisher.acks) + 50)  # and it goes on after the update
    finally:
        publisher.stop()
        publisher.join(60)
    return figures
