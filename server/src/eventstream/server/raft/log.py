"""A node's Raft log: what storage holds plus what is not yet persisted.

Pure: reads the storage port, never writes it; no I/O of its own.

Entries below ``unstable_offset`` are in storage; entries from it on are
held here until the caller persists them and calls ``advance()``. A
snapshot received from the leader is held the same way until persisted.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventstream.server.raft.errors import RaftInvariantError
from eventstream.server.raft.records import Entry, Snapshot, limit_size
from eventstream.server.raft.storage import CompactedError, LogStorage, UnavailableError


class RaftLog:
    """The log as the core sees it: storage, then unstable entries; commit and applied indexes."""

    __slots__ = (
        "_offset",
        "_snapshot",
        "_unstable",
        "applied",
        "committed",
        "max_committed_bytes",
        "storage",
    )

    def __init__(self, storage: LogStorage, max_committed_bytes: int) -> None:
        self.storage = storage
        self.max_committed_bytes = max_committed_bytes
        self._unstable: list[Entry] = []
        self._offset = storage.last_index() + 1
        """Index of ``_unstable[0]``; always one past the last entry persisted or to keep."""
        self._snapshot: Snapshot | None = None
        """A snapshot from the leader that the caller has not persisted yet."""
        first = storage.first_index()
        self.committed = first - 1
        self.applied = first - 1

    # Positions.

    def first_index(self) -> int:
        """The first index whose entry can be read."""
        if self._snapshot is not None:
            return self._snapshot.index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        """The index of the last entry (stored or not)."""
        return self._offset + len(self._unstable) - 1

    def last_term(self) -> int:
        """The term of the last entry (0 for an empty log)."""
        return self.term(self.last_index())

    def term(self, index: int) -> int:
        """The term of entry ``index``.

        Raises:
            CompactedError: the entry is compacted (a snapshot covers it).
            UnavailableError: the entry is beyond the last index.
        """
        if index >= self._offset:
            position = index - self._offset
            if position < len(self._unstable):
                return self._unstable[position].term
            raise UnavailableError(f"entry {index} is beyond the last index {self.last_index()}")
        if self._snapshot is not None:
            if index == self._snapshot.index:
                return self._snapshot.term
            raise CompactedError(f"entry {index} is covered by the snapshot at {self._snapshot.index}")
        return self.storage.term(index)

    def term_or_zero(self, index: int) -> int:
        """The term of entry ``index``, or 0 when it is compacted or beyond the end."""
        try:
            return self.term(index)
        except (CompactedError, UnavailableError):
            return 0

    def matches(self, index: int, term: int) -> bool:
        """Whether the log has an entry at ``index`` with ``term``."""
        return self.term_or_zero(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a log ending at ``last_index``/``last_term`` is at least as up to date as this one."""
        ours = self.last_term()
        return last_term > ours or (last_term == ours and last_index >= self.last_index())

    # Reading entries.

    def entries(self, lo: int, max_bytes: int, hi: int | None = None) -> list[Entry]:
        """Entries from ``lo`` up to ``hi`` (exclusive; default: the end), within ``max_bytes``.

        Raises:
            CompactedError: ``lo`` is compacted.
        """
        last = self.last_index()
        hi = last + 1 if hi is None else min(hi, last + 1)
        if lo >= hi:
            return []
        if lo < self.first_index():
            raise CompactedError(f"entry {lo} is compacted (first index {self.first_index()})")
        offset = self._offset
        if lo >= offset:
            return limit_size(self._unstable[lo - offset:hi - offset], max_bytes)
        stored = self.storage.entries(lo, min(hi, offset), max_bytes)
        if hi <= offset or len(stored) < min(hi, offset) - lo:
            return stored
        return limit_size(stored + self._unstable[:hi - offset], max_bytes)

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The last entry at or below ``index`` whose term is at most ``term``, as (index, term).

        Terms never decrease along a log, so this is a binary search. When
        the answer is compacted, returns the first readable position with
        term 0 (nothing is known there).
        """
        index = min(index, self.last_index())
        low = self.first_index() - 1
        if index < low:
            return index, 0
        if self.term(index) <= term:
            return index, self.term(index)
        if self.term(low) > term:
            return low, 0
        # term(low) <= term < term(index): find the last such position.
        while index - low > 1:
            middle = (low + index) // 2
            if self.term(middle) <= term:
                low = middle
            else:
                index = middle
        return low, self.term(low)

    # Writing (in memory; the caller persists through the Ready).

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries that continue the log or replace a suffix (never committed entries)."""
        if not entries:
            return
        first = entries[0].index
        if first <= self.committed:
            raise RaftInvariantError(
                f"entry {first} would overwrite committed entries (commit {self.committed})")
        offset = self._offset
        if first > offset + len(self._unstable):
            raise RaftInvariantError(f"entry {first} would leave a gap after {self.last_index()}")
        if first == offset + len(self._unstable):
            self._unstable.extend(entries)
        elif first <= offset:
            # Replaces everything unstable and a stored suffix the caller will truncate.
            self._offset = first
            self._unstable = list(entries)
        else:
            del self._unstable[first - offset:]
            self._unstable.extend(entries)

    def maybe_append(self, index: int, term: int, commit: int, entries: Sequence[Entry]) -> int | None:
        """A follower's append: ``entries`` follow entry ``index`` of ``term``.

        Returns the index of the last entry the message covers, or None when
        the log has no entry ``index`` with ``term`` (the leader must retry
        further back).
        """
        if not self.matches(index, term):
            return None
        last_new = index + len(entries)
        conflict = self._first_conflict(entries)
        if conflict:
            self.append(entries[conflict - entries[0].index:])
        self.commit_to(min(commit, last_new))
        return last_new

    def _first_conflict(self, entries: Sequence[Entry]) -> int:
        """The index of the first of ``entries`` the log lacks or holds with another term; 0 if none."""
        if not entries:
            return 0
        first = entries[0].index
        last_ours = self.last_index()
        if first > last_ours:
            return first
        overlap_end = min(entries[-1].index, last_ours)
        # Log matching: equal terms at one index mean equal logs up to it, so
        # the terms agree on a prefix of the overlap and differ after it.
        if self.term_or_zero(overlap_end) == entries[overlap_end - first].term:
            return overlap_end + 1 if overlap_end < entries[-1].index else 0
        low, high = first, overlap_end
        while low < high:
            middle = (low + high) // 2
            if self.term_or_zero(middle) == entries[middle - first].term:
                low = middle + 1
            else:
                high = middle
        return low

    def commit_to(self, index: int) -> None:
        """Raise the commit index to ``index`` (never lowers it)."""
        if index > self.committed:
            if index > self.last_index():
                raise RaftInvariantError(f"commit {index} is beyond the last index {self.last_index()}")
            self.committed = index

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log by ``snapshot`` (persisted by the caller through the Ready)."""
        self._snapshot = snapshot
        self._unstable = []
        self._offset = snapshot.index + 1
        self.committed = snapshot.index

    # What the caller must persist and apply, and its acknowledgements.

    @property
    def pending_snapshot(self) -> Snapshot | None:
        """The snapshot to persist, if any."""
        return self._snapshot

    def has_unstable(self) -> bool:
        """Whether entries wait to be persisted."""
        return bool(self._unstable)

    def unstable_entries(self) -> list[Entry]:
        """A copy of the entries to persist."""
        return self._unstable[:]

    def apply_floor(self) -> int:
        """The index after which committed entries are still to be applied."""
        if self._snapshot is not None:
            return max(self.applied, self._snapshot.index)
        return self.applied

    def has_next_committed(self) -> bool:
        """Whether committed entries wait to be applied."""
        return self.committed > self.apply_floor()

    def next_committed(self) -> list[Entry]:
        """The next committed entries to apply, within ``max_committed_bytes``."""
        floor = self.apply_floor()
        if self.committed <= floor:
            return []
        return self.entries(floor + 1, self.max_committed_bytes, self.committed + 1)

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to ``index`` (of ``term``) are persisted; stop holding them."""
        position = index - self._offset
        if 0 <= position < len(self._unstable) and self._unstable[position].term == term:
            del self._unstable[:position + 1]
            self._offset = index + 1

    def stable_snapshot(self, snapshot: Snapshot) -> None:
        """``snapshot`` is persisted."""
        if self._snapshot is snapshot:
            self._snapshot = None
        self.applied = max(self.applied, snapshot.index)

    def applied_to(self, index: int) -> None:
        """Committed entries up to ``index`` are applied."""
        if index > self.committed:
            raise RaftInvariantError(f"applied {index} is beyond the commit index {self.committed}")
        self.applied = max(self.applied, index)
