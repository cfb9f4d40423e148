"""Settings of one Raft node.

Pure: a frozen dataclass and its validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from eventstream.server.raft.bugs import InjectedBug


class ReadOnlyMode(Enum):
    """How the leader confirms it is still leader before serving a linearizable read."""

    SAFE = "safe"
    """Read index: a round of heartbeats acknowledged by a majority, per read batch."""

    LEASE = "lease"
    """A majority acknowledged a heartbeat less than an election timeout ago, so
    no other leader can exist yet: answer at once; fall back to SAFE when the
    lease has lapsed. Assumes tick rates of nodes differ by well under one
    tick per election timeout. Needs ``check_quorum``."""


@dataclass(frozen=True, slots=True)
class Config:
    """Settings of one :class:`~eventstream.server.raft.core.RaftNode`."""

    node_id: str
    """This node's id; stable, never reused by another node (e.g. ``eventstream-0``)."""

    group_id: int = 0
    """The Raft group this node belongs to; tags every message."""

    election_ticks: int = 10
    """Ticks without hearing from a leader before a follower campaigns. The
    actual timeout is drawn at random in ``[election_ticks, 2 * election_ticks)``
    each time, so that candidates rarely collide. Default 10."""

    heartbeat_ticks: int = 1
    """Ticks between a leader's heartbeats; must be below ``election_ticks``. Default 1."""

    pre_vote: bool = True
    """Ask for pre-votes before campaigning, so that a node that cannot win
    (isolated, or with a stale log) does not raise the term and disrupt the
    group. Default on."""

    check_quorum: bool = True
    """A leader that has not heard from a majority within an election timeout
    steps down, and followers ignore campaigns while they hear from a leader.
    Default on."""

    max_msg_bytes: int = 1 << 20
    """Most entry bytes in one append (at least one entry is always sent;
    0: no limit). Default 1 MiB."""

    max_inflight_msgs: int = 256
    """Most unacknowledged appends to one follower in REPLICATE state. Default 256."""

    max_inflight_bytes: int = 0
    """Most unacknowledged entry bytes to one follower (0: no limit). Default 0."""

    max_committed_bytes: int = 8 << 20
    """Most committed-entry bytes in one Ready (at least one entry; 0: no
    limit). Default 8 MiB."""

    read_only: ReadOnlyMode = ReadOnlyMode.SAFE
    """How linearizable reads are confirmed. Default SAFE."""

    injected_bugs: frozenset[InjectedBug] = frozenset()
    """TEST ONLY: deliberate defects (``bugs.py``). Production never sets it."""

    def __post_init__(self) -> None:
        errors = []
        if not self.node_id:
            errors.append("node_id must not be empty")
        if self.heartbeat_ticks < 1:
            errors.append("heartbeat_ticks must be at least 1")
        if self.election_ticks <= self.heartbeat_ticks:
            errors.append("election_ticks must be greater than heartbeat_ticks")
        if self.max_inflight_msgs < 1:
            errors.append("max_inflight_msgs must be at least 1")
        if self.read_only == ReadOnlyMode.LEASE and not self.check_quorum:
            errors.append("read_only LEASE needs check_quorum")
        if errors:
            raise ValueError("invalid Raft config: " + "; ".join(errors))
