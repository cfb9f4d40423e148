"""What the ``eventstream_cluster_*`` metrics read: the Raft driver and the peer transport.

Registered once by the composition root, for a single node too (a cluster of
one: it leads, no peers). Like :mod:`.readings`, the readings only read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Protocol

from ..raft import Role, Status
from .metrics import Metrics


class DriverView(Protocol):
    """The Raft driver's figures (``cluster.node.RaftDriver``)."""

    @property
    def elections_won(self) -> int:
        """Times this node became leader since start."""
        ...

    def status(self) -> Status:
        """The core's summary."""
        ...

    def lag_seconds(self) -> dict[str, float]:
        """Per peer, the age of the oldest entry it lacks (leader only)."""
        ...


class PeerView(Protocol):
    """The peer transport's figures (``cluster.transport.GrpcTransport``)."""

    forwarded: int

    def connected_peers(self) -> Collection[str]:
        """Peers whose link is up."""
        ...

    def refused_reading(self) -> Iterable[tuple[float, dict[str, str]]]:
        """Calls refused on the cluster port, by reason."""
        ...

    def snapshots_reading(self) -> Iterable[tuple[float, dict[str, str]]]:
        """Snapshot transfers sent and received, by direction."""
        ...


def replication_lag(status: Status) -> list[tuple[float, dict[str, str]]]:
    """Entries each member lacks behind the leader's last entry (the leader only knows)."""
    if status.role is not Role.LEADER:
        return []
    return [(float(max(status.last_index - progress.match, 0)), {"peer": peer})
            for peer, progress in sorted(status.progress.items()) if peer != status.node_id]


def members_by_role(status: Status) -> list[tuple[float, dict[str, str]]]:
    """Voters and learners of the membership in force, as this node applied it."""
    membership = status.membership
    return [(float(len(membership.voters)), {"role": "voter"}),
            (float(len(membership.learners)), {"role": "learner"})]


def observe_cluster(metrics: Metrics, driver: DriverView, peers: PeerView | None) -> None:
    """Register the cluster's readings (``peers`` is None for a single node)."""

    def of_status(read: Callable[[Status], float]) -> Callable[[], list[tuple[float, dict[str, str]]]]:
        return lambda: [(read(driver.status()), {})]

    metrics.observe("eventstream.cluster.is_leader",
                    of_status(lambda status: 1.0 if status.role is Role.LEADER else 0.0))
    metrics.observe("eventstream.cluster.term", of_status(lambda status: status.term))
    metrics.observe("eventstream.cluster.commit_index", of_status(lambda status: status.commit))
    metrics.observe("eventstream.cluster.applied_index", of_status(lambda status: status.applied))
    metrics.observe("eventstream.cluster.elections", lambda: [(driver.elections_won, {})])
    metrics.observe("eventstream.cluster.replication_lag", lambda: replication_lag(driver.status()))
    metrics.observe("eventstream.cluster.members", lambda: members_by_role(driver.status()))
    metrics.observe("eventstream.cluster.is_learner", of_status(
        lambda status: 1.0 if status.node_id in status.membership.learners else 0.0))
    metrics.observe("eventstream.cluster.replication_lag_seconds",
                    lambda: [(age, {"peer": peer}) for peer, age in driver.lag_seconds().items()])
    if peers is None:
        metrics.observe("eventstream.cluster.peers_connected", lambda: [(0, {})])
        metrics.observe("eventstream.cluster.forwarded", lambda: [(0, {})])
        metrics.observe("eventstream.cluster.snapshots", lambda: [
            (0, {"direction": "sent"}), (0, {"direction": "received"})])
        return
    metrics.observe("eventstream.cluster.peers_connected",
                    lambda: [(len(peers.connected_peers()), {})])
    metrics.observe("eventstream.cluster.forwarded", lambda: [(peers.forwarded, {})])
    metrics.observe("eventstream.cluster.peer.refused", peers.refused_reading)
    metrics.observe("eventstream.cluster.snapshots", peers.snapshots_reading)


__all__ = ["members_by_role", "observe_cluster", "replication_lag"]
