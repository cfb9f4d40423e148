"""Raft consensus core: a pure, deterministic state machine; the caller does all I/O.

Pure: this package imports only the standard library and has no I/O, clock,
threads, global randomness or logging. A test guards that.

Contracts other components rely on (details in each module):

- **Driving a node** (``core.RaftNode``). Inputs: ``tick()`` (the only
  time source; election and heartbeat intervals are counted in ticks,
  ``Config`` defaults 10 and 1), ``step(message)``, ``propose(data,
  kind=EntryKind.EVENTS)``, ``propose_many([(kind, data), ...])`` (one call
  for a whole batch), ``propose_membership_change(change)``,
  ``transfer_leadership(to=None)``, ``read_index(context)``, ``campaign()``,
  ``report_unreachable(id)``, ``report_snapshot(id, ok)``. The election
  jitter comes from the ``rng`` given to the constructor.
- **Refusals.** A node that is not the leader (or is handing leadership
  over) raises ``NotLeaderError`` from the propose calls, with
  ``leader_hint`` naming the node to forward to (None when unknown). Invalid
  membership changes raise ``MembershipError``. Protocol rejections are
  messages, never exceptions.
- **Ready** (``ready.Ready``): after inputs, while ``has_ready()``, take
  ``ready()``; persist ``snapshot``, ``entries`` and ``hard_state`` (durably
  when ``must_sync``), then send ``messages``, then apply
  ``committed_entries`` and serve ``read_states``, then call ``advance()``.
  When ``entries[0].index`` is at or below the last stored index, the stored
  entries from that index on are deleted before appending (a new leader
  overwrote them).
- **Entries** (``records.Entry``): ``Entry(index, term, kind, data)``, frozen.
  ``EntryKind`` values are append-only; the core interprets NOOP (a new
  leader's first entry) and MEMBERSHIP (``membership.py`` documents its
  versioned data format) and passes every other kind through untouched.
- **Storage port** (``storage.LogStorage``): ``initial_state()``,
  ``entries(lo, hi, max_bytes)``, ``term(i)``, ``first_index()``,
  ``last_index()``, ``snapshot()``, with ``CompactedError`` and
  ``UnavailableError``; ``MemoryStorage`` is the in-memory reference. A new
  group is bootstrapped by giving every initial voter a storage whose
  snapshot (index 0) holds the initial membership; nodes added later start
  empty. On restart the node re-delivers committed entries after the
  snapshot for the application to apply again.
- **Messages** (``messages.py``): frozen dataclasses tagged with
  ``group_id``, ``sender``, ``recipient`` (string node ids) and ``term``.
- **Snapshots** are small: the application's state at an index, the
  membership then, and opaque bytes. A follower that needs compacted
  entries gets the snapshot, then the remaining entries by normal appends.
"""

from eventstream.server.raft.bugs import InjectedBug
from eventstream.server.raft.config import Config, ReadOnlyMode
from eventstream.server.raft.core import RaftNode
from eventstream.server.raft.errors import NotLeaderError, RaftInvariantError
from eventstream.server.raft.membership import (
    Membership,
    MembershipChange,
    MembershipError,
    MembershipOp,
    apply_change,
    decode_membership_entry,
    encode_membership_entry,
)
from eventstream.server.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from eventstream.server.raft.ready import FollowerStatus, ReadState, Ready, Role, SoftState, Status
from eventstream.server.raft.records import Entry, EntryKind, HardState, Payload, Snapshot
from eventstream.server.raft.storage import (
    CompactedError,
    LogStorage,
    MemoryStorage,
    StorageError,
    UnavailableError,
)

__all__ = [
    "AppendEntries",
    "AppendResponse",
    "CompactedError",
    "Config",
    "Entry",
    "EntryKind",
    "FollowerStatus",
    "HardState",
    "Heartbeat",
    "HeartbeatResponse",
    "InjectedBug",
    "InstallSnapshot",
    "LogStorage",
    "Membership",
    "MembershipChange",
    "MembershipError",
    "MembershipOp",
    "MemoryStorage",
    "Message",
    "NotLeaderError",
    "Payload",
    "RaftInvariantError",
    "RaftNode",
    "ReadIndexRequest",
    "ReadIndexResponse",
    "ReadOnlyMode",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SoftState",
    "Status",
    "StorageError",
    "TimeoutNow",
    "UnavailableError",
    "VoteRequest",
    "VoteResponse",
    "apply_change",
    "decode_membership_entry",
    "encode_membership_entry",
]
