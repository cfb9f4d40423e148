"""What the node's gauges and observed counters read, one function per component.

Each function registers readings (callbacks the metric reader calls at each
collection) for one component; the composition root calls them once, after
building the components. The readings only read: no I/O, no locks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..broker.priority import Lane
from .metrics import Metrics, Reading


class RaftView(Protocol):
    """The Raft driver's figures (``cluster.node.RaftDriver``)."""

    @property
    def term(self) -> int:
        """The current term."""
        ...

    @property
    def commit_index(self) -> int:
        """The last committed index."""
        ...

    @property
    def applied_index(self) -> int:
        """The last applied index."""
        ...

if TYPE_CHECKING:
    from ..broker.groups import Group, GroupCoordinator
    from ..broker.lanes import Lanes, Submission
    from ..broker.sequencer import RoundResult
    from ..broker.write_path import WritePath
    from ..ingest.tcp import TcpIngest
    from ..ingest.udp import UdpIngest
    from ..native import DedupTable
    from ..placement import Placement
    from ..storage.entry_log import DiskEntryLog
    from ..storage.log import EventLog


class CommitRecorder:
    """Counts each committed round: events, duplicates and publish latency by transport.

    Args:
        metrics: the server's metrics.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._attrs: dict[str, dict[str, str]] = {}
        """One attribute dictionary per transport, made once (never changed)."""

    def __call__(self, taken: list[Submission], results: list[RoundResult]) -> None:
        """Record one round (the write path's ``on_commit``).

        The counters are added once per transport of the round, the latency
        recorded per submission (each is one request's).
        """
        metrics = self._metrics
        record = metrics.publish_latency.record
        now = time.time_ns()
        committed: dict[str, int] = {}
        duplicated: dict[str, int] = {}
        for submission, result in zip(taken, results):
            transport = submission.transport
            attrs = self._attrs.get(transport)
            if attrs is None:
                attrs = self._attrs[transport] = {"transport": transport}
            duplicates = result.duplicates
            committed[transport] = committed.get(transport, 0) + result.count - duplicates
            if duplicates:
                duplicated[transport] = duplicated.get(transport, 0) + duplicates
            record((now - submission.received_ns) / 1e9, attrs)
        for transport, count in committed.items():
            metrics.committed.add(count, self._attrs[transport])
        for transport, count in duplicated.items():
            metrics.duplicates.add(count, self._attrs[transport])
        metrics.commits.add(1)


def observe_lanes(metrics: Metrics, lanes: Lanes) -> None:
    """Depth, capacity and counters of each lane."""
    by_lane = [(lane, {"queue": lane.label}) for lane in Lane]
    metrics.observe("eventstream.queue.depth",
                    lambda: [(lanes.depth[lane], attrs) for lane, attrs in by_lane])
    metrics.observe("eventstream.queue.capacity",
                    lambda: [(lanes.capacity[lane], attrs) for lane, attrs in by_lane])
    metrics.observe("eventstream.queue.full",
                    lambda: [(lanes.full_rejections[lane], attrs) for lane, attrs in by_lane])
    metrics.observe("eventstream.queue.pushes",
                    lambda: [(lanes.pushed[lane], attrs) for lane, attrs in by_lane])
    metrics.observe("eventstream.queue.pops",
                    lambda: [(lanes.popped[lane], attrs) for lane, attrs in by_lane])
    metrics.observe("eventstream.queue.waiting_peak",
                    lambda: [(lanes.waiting_peak[lane], attrs) for lane, attrs in by_lane])


def observe_log(metrics: Metrics, event_log: EventLog) -> None:
    """Retained bytes and end offset per partition, and evictions."""
    partitions = [(p, {"partition": str(p)}) for p in range(event_log.partitions)]
    metrics.observe("eventstream.log.retained",
                    lambda: [(event_log.retained_bytes(p), a) for p, a in partitions])
    metrics.observe("eventstream.log.end_offset",
                    lambda: [(event_log.high_watermark(p), a) for p, a in partitions])
    metrics.observe("eventstream.log.evicted", lambda: [(event_log.evicted, {})])


def observe_disk_log(metrics: Metrics, disk_log: DiskEntryLog) -> None:
    """Bytes per partition, segments, fsyncs and what retention deleted."""
    partitions = [(p, {"partition": str(p)}) for p in range(disk_log.partitions)]
    metrics.observe("eventstream.storage.bytes",
                    lambda: [(disk_log.retained_bytes(p), a) for p, a in partitions])
    # A segment holds every partition's records: each partition reports the same count.
    metrics.observe("eventstream.storage.segments",
                    lambda: [(disk_log.segment_count(), a) for _, a in partitions])
    metrics.observe("eventstream.storage.fsyncs", lambda: [(disk_log.fsyncs, {})])
    metrics.observe("eventstream.storage.retention.deleted_segments",
                    lambda: [(disk_log.dropped_segments, a) for _, a in partitions])
    metrics.observe("eventstream.storage.retention.deleted",
                    lambda: [(disk_log.dropped_bytes[p], a) for p, a in partitions])


def observe_raft(metrics: Metrics, driver: RaftView, write_path: WritePath) -> None:
    """The replicated log: term, commit and applied index, and the write path's rounds."""
    metrics.observe("eventstream.raft.term", lambda: [(driver.term, {})])
    metrics.observe("eventstream.raft.commit_index", lambda: [(driver.commit_index, {})])
    metrics.observe("eventstream.raft.applied_index", lambda: [(driver.applied_index, {})])
    metrics.observe("eventstream.log.rounds", lambda: [(write_path.rounds, {})])
    metrics.observe("eventstream.queue.batch_yield", lambda: [(write_path.yielded_seconds, {})])


def observe_groups(metrics: Metrics, groups: GroupCoordinator, event_log: EventLog) -> None:
    """Lag, members and counters of each consumer group, and the number of groups."""
    known = groups.groups

    def per_group(read: Callable[[Group], int]) -> Reading:
        return lambda: [(read(group), {"group": name}) for name, group in list(known.items())]

    metrics.observe("eventstream.group.lag", per_group(
        lambda group: group.lag([event_log.high_watermark(p)
                                 for p in range(event_log.partitions)])))
    metrics.observe("eventstream.group.members", per_group(lambda group: len(group.members)))
    metrics.observe("eventstream.group.acks", per_group(lambda group: group.acked))
    metrics.observe("eventstream.group.redeliveries", per_group(lambda group: group.redelivered))
    metrics.observe("eventstream.group.dead_lettered",
                    per_group(lambda group: group.dead_lettered))
    metrics.observe("eventstream.group.acks_ignored", per_group(lambda group: group.ignored))
    metrics.observe("eventstream.groups", lambda: [(groups.count, {})])
    table = groups.table
    # Read through the table each time: installing a snapshot replaces its records.
    metrics.observe("eventstream.group.committed", lambda: [
        (sum(record.offsets), {"group": name}) for name, record in list(table.records.items())])


def observe_ingest(metrics: Metrics, tcp: TcpIngest, udp: UdpIngest) -> None:
    """Raw ingest: the UDP receive queue and kernel drops, TCP's buffered bytes."""
    metrics.observe("eventstream.ingest.udp.kernel_drops", lambda: [(udp.kernel_drops(), {})])

    def queue_reading(field: str) -> Reading:
        return lambda: udp.queue_reading(field)

    for name, field in (("depth", "depth"), ("used", "depth_bytes"),
                        ("capacity", "capacity_bytes")):
        metrics.observe(f"eventstream.ingest.udp.queue.{name}", queue_reading(field))
    metrics.observe("eventstream.ingest.buffered",
                    lambda: [(tcp.budget.used, {"transport": "tcp"})])


def observe_node(metrics: Metrics, *, dedup: DedupTable, placement: Placement,
                 write_path: WritePath, started_at: float, frozen: Callable[[], int]) -> None:
    """The rest: dedup window, NUMA, the collector, storage failure, uptime.

    Args:
        metrics: the server's metrics.
        dedup: the de-duplication window.
        placement: NUMA placement.
        write_path: says whether (and why) writes halted.
        started_at: ``time.monotonic()`` at start.
        frozen: the objects the collector no longer scans, as counted when they
            were frozen (``gc.get_freeze_count()`` walks them all: milliseconds
            per scrape on the event loop).
    """
    metrics.observe("eventstream.dedup.ids", lambda: [(len(dedup), {})])
    metrics.observe("eventstream.numa.nodes", lambda: [(len(placement.nodes), {})])
    metrics.observe("eventstream.gc.frozen", lambda: [(frozen(), {})])
    metrics.observe("eventstream.storage.failed", lambda: [
        (1, {"error": write_path.halted_error}) if write_path.halted_error else (0, {})])
    metrics.observe("eventstream.uptime", lambda: [(time.monotonic() - started_at, {})])


__all__ = ["CommitRecorder", "observe_disk_log", "observe_groups", "observe_ingest", "observe_lanes",
           "observe_log", "observe_node", "observe_raft"]
