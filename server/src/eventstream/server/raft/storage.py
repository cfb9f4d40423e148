"""The storage port the Raft core reads its durable log through, and an in-memory one.

Pure: :class:`LogStorage` is a read-only interface; :class:`MemoryStorage`
keeps everything in lists (tests, the simulation and the benchmark).

The core never writes storage. The caller writes what a ``Ready`` asks
(hard state, entries, snapshot) and only then calls ``advance()``; from that
moment the core reads those entries back through this port. Indexes start
at 1; the entry before ``first_index()`` is covered by the latest snapshot
(``term(first_index() - 1)`` is still answered).

Error contract:

- :class:`CompactedError`: the index asked for is older than
  ``first_index() - 1`` (log compaction removed it). The leader answers it by
  sending the follower a snapshot.
- :class:`UnavailableError`: the index is beyond ``last_index()``, or (from
  ``snapshot()``) no snapshot can be given right now; the core asks the
  caller for one (``Ready.snapshot_request``) and tries again later.
- Any other exception is a storage failure: the core lets it propagate and
  the node must stop (a Raft node cannot continue on a log it cannot read).

Ownership: lists returned by ``entries()`` belong to the caller (the core
may slice or extend them); :class:`~eventstream.server.raft.records.Entry`
objects are immutable and may be shared by any number of lists.
"""

from __future__ import annotations

from typing import Protocol

from eventstream.server.raft.membership import Membership
from eventstream.server.raft.records import Entry, HardState, Snapshot, limit_size


class StorageError(Exception):
    """Base of the errors of the storage contract."""


class CompactedError(StorageError):
    """The requested index was compacted away; a snapshot covers it."""


class UnavailableError(StorageError):
    """The requested index (or a snapshot) is not available (yet)."""


class LogStorage(Protocol):
    """Read-only access to a node's durable Raft state (see the module docstring)."""

    def initial_state(self) -> HardState:
        """The hard state last persisted (all zero/None for a new node)."""
        ...

    def entries(self, lo: int, hi: int, max_bytes: int = 0) -> list[Entry]:
        """Entries ``[lo, hi)`` in index order, limited to ``max_bytes``.

        Returns at least one entry when ``lo < hi`` whatever the limit
        (``max_bytes <= 0``: no limit; sizes as ``records.entries_size``).

        Raises:
            CompactedError: ``lo < first_index()``.
            UnavailableError: ``hi > last_index() + 1``.
        """
        ...

    def term(self, index: int) -> int:
        """The term of entry ``index``, for ``first_index() - 1 <= index <= last_index()``.

        Raises:
            CompactedError: ``index < first_index() - 1``.
            UnavailableError: ``index > last_index()``.
        """
        ...

    def first_index(self) -> int:
        """The index of the first entry still stored (``snapshot index + 1`` when empty)."""
        ...

    def last_index(self) -> int:
        """The index of the last entry stored (``first_index() - 1`` when empty)."""
        ...

    def snapshot(self) -> Snapshot:
        """The latest snapshot; its index is at least ``first_index() - 1``.

        Called when the node starts (it must answer then) and when a
        follower needs entries that are compacted.

        Raises:
            UnavailableError: no snapshot can be given right now (a storage
                that makes them on demand); the core sets
                ``Ready.snapshot_request`` and asks again later.
        """
        ...


class MemoryStorage:
    """A :class:`LogStorage` in memory, with the writes a caller performs on a Ready.

    ``MemoryStorage(membership)`` is a new node of a group bootstrapped with
    that membership (its snapshot at index 0 holds it); ``MemoryStorage()``
    is a node that joins later and learns the membership from the log or a
    snapshot.
    """

    def __init__(self, membership: Membership | None = None) -> None:
        self._hard_state = HardState()
        self._snapshot = Snapshot(membership=membership or Membership())
        # _entries[k] has index _base_index + 1 + k; _base_term is the term
        # of entry _base_index, the last one removed by compaction.
        self._base_index = 0
        self._base_term = 0
        self._entries: list[Entry] = []

    # The read-only port.

    def initial_state(self) -> HardState:
        """See :meth:`LogStorage.initial_state`."""
        return self._hard_state

    def entries(self, lo: int, hi: int, max_bytes: int = 0) -> list[Entry]:
        """See :meth:`LogStorage.entries`."""
        if lo <= self._base_index:
            raise CompactedError(f"entry {lo} is compacted (first index {self._base_index + 1})")
        if hi > self.last_index() + 1:
            raise UnavailableError(f"entries up to {hi - 1} asked, last index is {self.last_index()}")
        offset = self._base_index + 1
        return limit_size(self._entries[lo - offset:hi - offset], max_bytes)

    def term(self, index: int) -> int:
        """See :meth:`LogStorage.term`."""
        if index == self._base_index:
            return self._base_term
        if index < self._base_index:
            raise CompactedError(f"entry {index} is compacted (first index {self._base_index + 1})")
        if index > self._base_index + len(self._entries):
            raise UnavailableError(f"entry {index} is beyond the last index {self.last_index()}")
        return self._entries[index - self._base_index - 1].term

    def first_index(self) -> int:
        """See :meth:`LogStorage.first_index`."""
        return self._base_index + 1

    def last_index(self) -> int:
        """See :meth:`LogStorage.last_index`."""
        return self._base_index + len(self._entries)

    def snapshot(self) -> Snapshot:
        """See :meth:`LogStorage.snapshot`."""
        return self._snapshot

    # What the caller does with a Ready.

    def set_hard_state(self, hard_state: HardState) -> None:
        """Persist ``Ready.hard_state``."""
        self._hard_state = hard_state

    def append(self, entries: list[Entry]) -> None:
        """Persist ``Ready.entries``: drop stored entries from ``entries[0].index`` on, then append.

        Raises:
            ValueError: the entries would leave a gap or rewrite compacted entries.
        """
        if not entries:
            return
        first = entries[0].index
        if first <= self._base_index:
            raise ValueError(f"entry {first} rewrites the compacted log (first index {self._base_index + 1})")
        if first > self.last_index() + 1:
            raise ValueError(f"entry {first} leaves a gap after the last index {self.last_index()}")
        del self._entries[first - self._base_index - 1:]
        self._entries.extend(entries)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Persist ``Ready.snapshot``: it replaces the whole log.

        Raises:
            ValueError: the snapshot is older than the one stored.
        """
        if snapshot.index < self._snapshot.index:
            raise ValueError(f"snapshot at {snapshot.index} is older than the stored one "
                             f"at {self._snapshot.index}")
        self._snapshot = snapshot
        self._base_index, self._base_term = snapshot.index, snapshot.term
        self._entries = []

    def create_snapshot(self, index: int, membership: Membership, data: bytes) -> Snapshot:
        """Record the application's snapshot at applied entry ``index`` (still stored).

        ``membership`` is the node's membership after applying ``index``
        (``RaftNode.membership`` right after ``advance()``).

        Raises:
            ValueError: ``index`` is not stored or is older than the stored snapshot.
        """
        if index < self._snapshot.index or index > self.last_index():
            raise ValueError(f"cannot snapshot at {index}: log holds "
                             f"{self._base_index + 1}..{self.last_index()}")
        self._snapshot = Snapshot(index, self.term(index), membership, data)
        return self._snapshot

    def compact(self, index: int) -> None:
        """Drop the entries up to ``index``, which a snapshot must already cover.

        Raises:
            ValueError: ``index`` is beyond the latest snapshot or the log.
        """
        if index <= self._base_index:
            return
        if index > self._snapshot.index or index > self.last_index():
            raise ValueError(f"cannot compact to {index}: snapshot at {self._snapshot.index}, "
                             f"last index {self.last_index()}")
        self._base_term = self.term(index)
        del self._entries[:index - self._base_index]
        self._base_index = index
