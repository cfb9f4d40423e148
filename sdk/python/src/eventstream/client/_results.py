"""What calls return: acknowledgements, per-event results and cluster status.

Pure: no I/O; converts generated messages at the boundary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from eventstream.v1 import cluster_pb2, publish_pb2

from ._errors import EventStreamError, error_from_event_error
from ._events import Durability, datetime_from_timestamp


@dataclass(frozen=True)
class PublishAck:
    """The acknowledgement of one committed event.

    Attributes:
        id: the event's id.
        partition: the partition holding it.
        offset: its position in the partition.
        duplicate: True when the id had been stored before: partition and
            offset are the first event's and nothing new was stored (a retry
            after a lost acknowledgement looks like this).
        durability: how durable the event is now.
        ingest_time: when the server accepted it.
    """

    id: str
    partition: int
    offset: int
    duplicate: bool
    durability: Durability
    ingest_time: datetime | None


@dataclass(frozen=True)
class PublishResult:
    """The outcome of one event of a batch or stream: exactly one of ``ack`` and ``error``.

    Example:
        >>> for result in client.publish_batch(events):
        ...     if not result.ok:
        ...         print(result.error.field, result.error.reason)
    """

    ack: PublishAck | None = None
    error: EventStreamError | None = None

    @property
    def ok(self) -> bool:
        """True when the event was acknowledged."""
        return self.ack is not None

    def unwrap(self) -> PublishAck:
        """The acknowledgement, or raise the event's error."""
        if self.ack is None:
            assert self.error is not None
            raise self.error
        return self.ack


def ack_from_proto(message: publish_pb2.PublishAck) -> PublishAck:
    """Convert an acknowledgement."""
    return PublishAck(
        id=message.id, partition=message.partition, offset=message.offset,
        duplicate=message.duplicate, durability=Durability.from_proto(message.durability),
        ingest_time=(datetime_from_timestamp(message.ingest_time)
                     if message.HasField("ingest_time") else None))


def result_from_proto(message: publish_pb2.PublishResult) -> PublishResult:
    """Convert one per-event result."""
    if message.HasField("ack"):
        return PublishResult(ack=ack_from_proto(message.ack))
    return PublishResult(error=error_from_event_error(message.error))


@dataclass(frozen=True)
class Member:
    """One member of the cluster as the answering node sees it.

    Attributes:
        node_id: the member's node id.
        address: ``host:port`` of its cluster port.
        role: as :attr:`ClusterStatus.role`.
        match_index: the highest log index known stored on it.
        reachable: whether the answering node's link to it is up.
        lag_entries: entries it lacks behind the commit index; None where the
            answering node does not know (another member, on a follower).
        lag_seconds: the age of the oldest entry it lacks, 0.0 when none;
            None where the answering node does not know.
    """

    node_id: str
    address: str
    role: str
    match_index: int
    reachable: bool
    lag_entries: int | None = None
    lag_seconds: float | None = None


@dataclass(frozen=True)
class ClusterStatus:
    """The state of the cluster of the node that answered.

    Attributes:
        node_id: the answering node.
        role: ``"LEADER"``, ``"FOLLOWER"``, ``"CANDIDATE"``, ``"LEARNER"`` (a
            non-voting member) or ``"UNSPECIFIED"``.
        term: the consensus term.
        commit_index: the highest committed log index.
        leader_id: the leader's node id ("" when unknown).
        members: every member, the answering node included.
        leader_address: the leader's public gRPC ``host:port``, where clients
            publish ("" when unknown).
    """

    node_id: str
    role: str
    term: int
    commit_index: int
    leader_id: str
    members: list[Member]
    leader_address: str = ""


@dataclass(frozen=True)
class MembershipResult:
    """A membership change the leader applied.

    Attributes:
        log_index: the index of its entry in the log.
        members: the members once it is applied, as the leader sees them.
    """

    log_index: int
    members: list[Member]


def _role(value: int) -> str:
    return cluster_pb2.Role.Name(value).removeprefix("ROLE_")


def status_from_proto(message: cluster_pb2.GetClusterStatusResponse) -> ClusterStatus:
    """Convert a cluster status."""
    return ClusterStatus(
        node_id=message.node_id, role=_role(message.role), term=message.term,
        commit_index=message.commit_index, leader_id=message.leader_id,
        members=_members(message.members), leader_address=message.leader_address)


def _members(members: Iterable[cluster_pb2.Member]) -> list[Member]:
    return [Member(m.node_id, m.address, _role(m.role), m.match_index, m.reachable,
                   m.lag_entries if m.HasField("lag_entries") else None,
                   m.lag_seconds if m.HasField("lag_seconds") else None)
            for m in members]


def membership_from_proto(message: cluster_pb2.AddMemberResponse
                          | cluster_pb2.PromoteLearnerResponse
                          | cluster_pb2.RemoveMemberResponse) -> MembershipResult:
    """Convert the answer of a membership change."""
    return MembershipResult(message.log_index, _members(message.members))
