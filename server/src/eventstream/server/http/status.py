"""The /status document: typed sections, read from the components, serialized to JSON.

Pure reads: :meth:`NodeStatus.read` looks at the components' counters and
returns frozen dataclasses; :meth:`Status.to_json` turns them into the JSON
document (field names are the document's keys).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..broker.priority import Lane

if TYPE_CHECKING:
    from ..broker.broker import Broker
    from ..broker.lanes import Lanes
    from ..broker.write_path import WritePath
    from ..config.model import Config
    from ..placement import Placement
    from ..rpc.health import HealthState
    from ..storage.log import EventLog


@dataclass(frozen=True, slots=True)
class Writes:
    """Whether writes are accepted."""

    halted: bool
    reason: str | None
    """The storage error that halted them, if any."""


@dataclass(frozen=True, slots=True)
class Native:
    """The native core the node runs on."""

    abi_version: int
    crc32c_hardware: bool


@dataclass(frozen=True, slots=True)
class Cluster:
    """The cluster as this node sees it."""

    enabled: bool
    replication: str
    role: str
    """``leader``, ``follower`` or ``candidate``."""
    term: int
    commit_index: int
    applied_index: int
    """Index of the last log entry applied (visible to readers)."""
    leader: str
    leader_address: str
    """The leader's public gRPC ``host:port`` (what clients use; "" when unknown)."""
    members: list[dict[str, Any]]
    """Per member: ``node_id``, ``address``, ``role``, ``match_index``, ``lag`` (entries
    behind the commit index), ``lag_seconds`` (age of the oldest entry it lacks),
    ``reachable``."""


@dataclass(frozen=True, slots=True)
class LaneStatus:
    """One lane's depth and capacity (events)."""

    depth: int
    capacity: int
    full_rejections: int


@dataclass(frozen=True, slots=True)
class LogStatus:
    """The log's partitions and offsets."""

    kind: str
    partitions: int
    retained_bytes: int
    end_offsets: list[int]
    start_offsets: list[int]
    evicted: int
    disk: Mapping[str, object]
    """The durable log's own figures (fsync policy, segments, retention), flattened in."""


@dataclass(frozen=True, slots=True)
class Status:
    """The /status document."""

    node: str
    version: str
    role: str
    phase: str
    serving: bool
    writes: Writes
    uptime_seconds: float
    native: Native
    numa: Mapping[str, Any]
    cluster: Cluster
    lanes: dict[str, LaneStatus]
    log: LogStatus
    subscribers: int
    listeners: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """The document as JSON values."""
        document = asdict(self)
        log = document["log"]
        log.update(log.pop("disk"))
        return document


class NodeStatus:
    """Reads the /status document from the node's components.

    Args:
        config: the node's configuration.
        version: the server's version.
        health: the serving state.
        write_path: whether writes halted.
        lanes: the lanes.
        event_log: the log.
        broker: counts subscriptions.
        placement: NUMA placement.
        native: the native core's figures.
        cluster: the cluster status (the cluster service's).
        listeners: the bound port of each listener, by name.
        disk: the durable log's own figures (empty for the in-memory log).
        started_at: ``time.monotonic()`` when the node started.
    """

    def __init__(self, config: Config, version: str, health: HealthState,
                 write_path: WritePath, lanes: Lanes, event_log: EventLog, broker: Broker,
                 placement: Placement, native: Native, cluster: Callable[[], dict[str, Any]],
                 listeners: Callable[[], dict[str, int]],
                 disk: Callable[[], Mapping[str, object]], started_at: float) -> None:
        self._config = config
        self._version = version
        self._health = health
        self._write_path = write_path
        self._lanes = lanes
        self._log = event_log
        self._broker = broker
        self._placement = placement
        self._native = native
        self._cluster = cluster
        self._listeners = listeners
        self._disk = disk
        self._started_at = started_at

    def read(self) -> Status:
        """The document now."""
        config, lanes, event_log = self._config, self._lanes, self._log
        cluster = self._cluster()
        partitions = range(event_log.partitions)
        return Status(
            node=config.cluster.node_id,
            version=self._version,
            role=cluster["role"],
            phase=self._health.phase,
            serving=self._health.serving,
            writes=Writes(self._write_path.halted is not None, self._write_path.halted),
            uptime_seconds=round(time.monotonic() - self._started_at, 3),
            native=self._native,
            numa=self._placement.status(),
            cluster=Cluster(config.cluster.enabled,
                            "raft" if config.cluster.enabled else "none (cluster of one)",
                            cluster["role"], cluster["term"], cluster["commit_index"],
                            self._write_path.applied_index, cluster["leader"],
                            cluster["leader_address"], cluster["members"]),
            lanes={lane.label: LaneStatus(lanes.depth[lane], lanes.capacity[lane],
                                          lanes.full_rejections[lane]) for lane in Lane},
            log=LogStatus(config.storage.engine, event_log.partitions,
                          sum(event_log.retained_bytes(p) for p in partitions),
                          [event_log.high_watermark(p) for p in partitions],
                          [event_log.start_offset(p) for p in partitions],
                          event_log.evicted, self._disk()),
            subscribers=self._broker.subscription_count,
            listeners=self._listeners(),
        )

    def document(self) -> dict[str, Any]:
        """The document as JSON values (what /status serves)."""
        return self.read().to_json()


__all__ = ["Cluster", "LaneStatus", "LogStatus", "Native", "NodeStatus", "Status",
           "Writes"]
