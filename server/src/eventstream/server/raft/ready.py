"""What the core asks its caller to do: the Ready, and the state it reports.

Pure: frozen, slotted dataclasses.

The caller's duties for one Ready, in this order:

1. Persist. If ``snapshot`` is set, store it (it replaces the whole log) and
   restore the application from it. Store ``entries``: when
   ``entries[0].index`` is at or below the last stored index, first delete
   every stored entry from ``entries[0].index`` on (a new leader overwrote
   them), then append. Store ``hard_state`` if set. When ``must_sync``,
   make all of that durable (fsync) before step 2.
2. Send ``messages`` (each names its recipient and group). They may depend
   on what step 1 persisted (a vote, an acknowledgement), so never before.
3. Apply ``committed_entries`` in order, hand out ``read_states`` and, when
   ``snapshot_request`` is set, take a snapshot of the application (see
   ``storage.py``).
4. Call ``RaftNode.advance()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from eventstream.server.raft.membership import Membership
from eventstream.server.raft.messages import Message
from eventstream.server.raft.records import Entry, HardState, Snapshot


class Role(Enum):
    """A node's role in its current term."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state the caller may want to show or act on (not persisted)."""

    role: Role
    leader: str | None


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read: once entry ``index`` is applied, serve the read tagged ``context``."""

    index: int
    context: bytes


@dataclass(frozen=True, slots=True)
class Ready:
    """Everything the caller must do after an input (the order is in the module docstring)."""

    hard_state: HardState | None
    """Persist when set (it changed since the previous Ready)."""
    soft_state: SoftState | None
    """Set when the role or known leader changed."""
    snapshot: Snapshot | None
    """A snapshot from the leader to install before the entries."""
    entries: list[Entry]
    """Entries to persist, in index order, possibly overwriting a stored suffix."""
    must_sync: bool
    """Whether the writes must be durable (fsync) before any message is sent."""
    messages: list[Message]
    """Messages to send once the writes are durable."""
    committed_entries: list[Entry]
    """Entries to apply, in index order (may include ``entries`` of this Ready)."""
    read_states: list[ReadState]
    """Linearizable reads that are ready (see :class:`ReadState`)."""
    snapshot_request: bool
    """A follower needs a snapshot and storage had none: take one."""

    def is_empty(self) -> bool:
        """Whether there is nothing to do."""
        return not (self.hard_state or self.soft_state or self.snapshot or self.entries
                    or self.messages or self.committed_entries or self.read_states
                    or self.snapshot_request)


@dataclass(frozen=True, slots=True)
class FollowerStatus:
    """The leader's view of one member."""

    state: str
    match: int
    next: int
    recent_active: bool
    paused: bool
    """Nothing is sent to it now (a probe is outstanding, the window is full, or a snapshot is on its way)."""


@dataclass(frozen=True, slots=True)
class Status:
    """A read-only summary of a node, e.g. for a status page."""

    node_id: str
    group_id: int
    term: int
    vote: str | None
    role: Role
    leader: str | None
    commit: int
    applied: int
    first_index: int
    last_index: int
    membership: Membership
    progress: Mapping[str, FollowerStatus]
    """Per member, when this node is leader (empty otherwise)."""
    transferring_to: str | None
