"""RaftLog: storage plus unstable entries, conflicts, commit and what is handed out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstream.server.raft import (
    CompactedError,
    Entry,
    EntryKind,
    MemoryStorage,
    Snapshot,
    UnavailableError,
)
from eventstream.server.raft.errors import RaftInvariantError
from eventstream.server.raft.log import RaftLog


def entries(first: int, *terms: int) -> list[Entry]:
    return [Entry(first + k, t, EntryKind.EVENTS, b"%d" % (first + k)) for k, t in enumerate(terms)]


def log_of(stored: list[int], unstable: list[int] = ()) -> RaftLog:  # type: ignore[assignment]
    storage = MemoryStorage()
    storage.append(entries(1, *stored))
    log = RaftLog(storage, 0)
    log.append(entries(len(stored) + 1, *unstable))
    return log


def test_terms_and_entries_span_storage_and_unstable():
    log = log_of([1, 1], [2, 2])
    assert [log.term(i) for i in range(0, 5)] == [0, 1, 1, 2, 2]
    assert [e.index for e in log.entries(2, 0)] == [2, 3, 4]
    assert [e.index for e in log.entries(1, 0, 3)] == [1, 2]
    assert log.entries(5, 0) == []
    with pytest.raises(UnavailableError):
        log.term(5)
    assert log.term_or_zero(5) == 0


@given(st.lists(st.integers(1, 3), min_size=1, max_size=12).map(sorted), st.integers(0, 14),
       st.integers(0, 4))
def test_find_conflict_by_term_matches_a_linear_scan(terms: list[int], index: int, term: int):
    log = log_of(terms)
    expected = min(index, len(terms))
    while expected > 0 and terms[expected - 1] > term:
        expected -= 1
    assert log.find_conflict_by_term(index, term) == (expected, terms[expected - 1] if expected else 0)


def test_find_conflict_by_term_below_a_snapshot():
    storage = MemoryStorage()
    storage.apply_snapshot(Snapshot(5, 3))
    storage.append(entries(6, 4, 4))
    log = RaftLog(storage, 0)
    assert log.find_conflict_by_term(7, 3) == (5, 3)
    assert log.find_conflict_by_term(7, 2) == (5, 0)
    assert log.find_conflict_by_term(3, 2) == (3, 0)


def test_maybe_append_finds_the_first_conflict_and_truncates_from_there():
    log = log_of([1, 1, 1, 1])
    assert log.maybe_append(1, 1, 0, entries(2, 1, 2, 2)) == 4
    assert [log.term(i) for i in range(1, 5)] == [1, 1, 2, 2]
    assert log.maybe_append(1, 2, 0, entries(2, 3)) is None  # no entry 1 of term 2
    assert log.maybe_append(4, 2, 3, []) == 4 and log.committed == 3


def test_a_committed_entry_is_never_overwritten_and_never_beyond_the_log():
    log = log_of([1, 1])
    log.commit_to(2)
    with pytest.raises(RaftInvariantError, match="overwrite committed"):
        log.maybe_append(1, 1, 2, entries(2, 2))
    with pytest.raises(RaftInvariantError, match="beyond the last index"):
        log.commit_to(3)
    with pytest.raises(RaftInvariantError, match="gap"):
        log.append(entries(5, 1))
    with pytest.raises(RaftInvariantError, match="beyond the commit"):
        log.applied_to(3)


def test_unstable_entries_become_stable_only_if_still_the_same():
    log = log_of([1], [1, 1])
    handed_out = log.unstable_entries()
    log.append(entries(3, 2))  # a new leader replaced entry 3 meanwhile
    log.stable_to(handed_out[-1].index, handed_out[-1].term)
    assert log.has_unstable()
    log.stable_to(2, 1)
    assert [e.index for e in log.unstable_entries()] == [3]


def test_committed_entries_follow_a_pending_snapshot():
    storage = MemoryStorage()
    log = RaftLog(storage, 0)
    snapshot = Snapshot(5, 2)
    log.restore(snapshot)
    log.append(entries(6, 2))
    log.commit_to(6)
    assert log.first_index() == 6 and log.term(5) == 2
    with pytest.raises(CompactedError):
        log.term(4)
    with pytest.raises(CompactedError):
        log.entries(4, 0)
    assert [e.index for e in log.next_committed()] == [6]
    storage.apply_snapshot(snapshot)
    log.stable_snapshot(snapshot)
    assert log.pending_snapshot is None and log.applied == 5
