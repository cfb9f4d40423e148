"""The messages Raft nodes exchange.

Pure: frozen, slotted dataclasses; no protobuf (the transport converts them).

Every message carries the Raft ``group_id`` (several groups may share one
transport), the ``sender`` and ``recipient`` node ids and the sender's
``term``. Messages are immutable; the ``entries`` of an append may be shared
with the sender's log and must not be modified.

Message types are dispatched by class, so adding a field is compatible for
the core; the transport owns the wire format and its compatibility.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eventstream.server.raft.records import Entry, Snapshot


@dataclass(frozen=True, slots=True)
class Message:
    """Fields every message has."""

    group_id: int
    sender: str
    recipient: str
    term: int


@dataclass(frozen=True, slots=True)
class AppendEntries(Message):
    """Leader -> follower: entries after ``index`` (whose term is ``log_term``), and the commit index."""

    index: int
    log_term: int
    entries: Sequence[Entry]
    commit: int


@dataclass(frozen=True, slots=True)
class AppendResponse(Message):
    """Follower -> leader: an answer to :class:`AppendEntries` or :class:`InstallSnapshot`.

    Accepted (``reject`` False): the follower's log matches the leader's up
    to ``index``. Rejected: the entry at ``index`` did not match; the
    follower's log may match up to ``reject_hint`` at best, where its term
    is ``log_term``, so the leader can skip a whole term per round trip.
    """

    index: int
    reject: bool = False
    reject_hint: int = 0
    log_term: int = 0


@dataclass(frozen=True, slots=True)
class VoteRequest(Message):
    """Candidate -> voters: vote for me in ``term``; my log ends at ``last_index``/``last_term``.

    ``pre_vote``: would you vote for me (``term`` is the one I would
    campaign in; nobody changes term or vote for it). ``transfer``: the
    leader asked me to campaign (TimeoutNow), so a voter answers even
    though it heard from that leader recently.
    """

    last_index: int
    last_term: int
    pre_vote: bool = False
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class VoteResponse(Message):
    """Voter -> candidate: the vote (or pre-vote) is ``granted`` or not."""

    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    """Leader -> member: I am alive.

    ``commit`` is capped at what the member is known to store.
    ``context`` is the latest pending read-index request (b"" if none),
    ``sent_at`` the leader's tick count, echoed back for its lease.
    """

    commit: int
    context: bytes = b""
    sent_at: int = 0


@dataclass(frozen=True, slots=True)
class HeartbeatResponse(Message):
    """Member -> leader: an answer to :class:`Heartbeat`, echoing its ``context`` and ``sent_at``."""

    context: bytes = b""
    sent_at: int = 0


@dataclass(frozen=True, slots=True)
class InstallSnapshot(Message):
    """Leader -> follower: replace your state with ``snapshot`` (answered by :class:`AppendResponse`)."""

    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class TimeoutNow(Message):
    """Leader -> chosen follower: campaign now (leadership transfer)."""


@dataclass(frozen=True, slots=True)
class ReadIndexRequest(Message):
    """Follower -> leader: give me a read index for ``context``."""

    context: bytes


@dataclass(frozen=True, slots=True)
class ReadIndexResponse(Message):
    """Leader -> follower: reads for ``context`` are linearizable once ``index`` is applied."""

    index: int
    context: bytes
