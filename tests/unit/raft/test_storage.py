"""MemoryStorage keeps the storage port's contract: ranges, errors, byte limits, compaction."""

from __future__ import annotations

import pytest

from eventstream.server.raft import (
    CompactedError,
    Entry,
    EntryKind,
    HardState,
    Membership,
    MemoryStorage,
    Snapshot,
    UnavailableError,
)
from eventstream.server.raft.records import ENTRY_OVERHEAD, entries_size, limit_size

VOTERS = Membership(frozenset({"a", "b", "c"}))


def stored(*terms: int, data: bytes = b"x") -> MemoryStorage:
    storage = MemoryStorage(VOTERS)
    storage.append([Entry(i + 1, t, EntryKind.EVENTS, data) for i, t in enumerate(terms)])
    return storage


def test_a_new_storage_holds_the_bootstrap_membership_and_nothing_else():
    storage = MemoryStorage(VOTERS)
    assert storage.initial_state() == HardState()
    assert storage.snapshot() == Snapshot(0, 0, VOTERS, b"")
    assert (storage.first_index(), storage.last_index(), storage.term(0)) == (1, 0, 0)
    assert MemoryStorage().snapshot().membership == Membership()


def test_entries_and_terms_within_range_and_errors_outside():
    storage = stored(1, 1, 2)
    assert [e.index for e in storage.entries(1, 4)] == [1, 2, 3]
    assert storage.term(3) == 2
    with pytest.raises(UnavailableError):
        storage.term(4)
    with pytest.raises(UnavailableError):
        storage.entries(2, 5)
    storage.create_snapshot(2, VOTERS, b"app")
    storage.compact(2)
    assert (storage.first_index(), storage.term(2)) == (3, 1)
    with pytest.raises(CompactedError):
        storage.term(1)
    with pytest.raises(CompactedError):
        storage.entries(2, 4)


def test_entries_are_limited_in_bytes_but_never_empty():
    storage = stored(1, 1, 1, 1, data=b"12345678")
    one = 8 + ENTRY_OVERHEAD
    assert len(storage.entries(1, 5, one * 2)) == 2
    assert len(storage.entries(1, 5, one * 2 + 1)) == 2
    assert len(storage.entries(1, 5, 1)) == 1
    assert len(storage.entries(1, 5, 0)) == 4
    assert entries_size(storage.entries(1, 5)) == one * 4


def test_limit_size_returns_the_same_list_when_nothing_is_cut():
    entries = stored(1, 1).entries(1, 3)
    assert limit_size(entries, 0) is entries
    assert limit_size(entries, 10_000) is entries
    assert limit_size([], 1) == []


def test_append_overwrites_a_suffix_and_refuses_gaps_and_compacted_rewrites():
    storage = stored(1, 1, 1)
    storage.append([Entry(2, 2, EntryKind.EVENTS, b"new")])
    assert [(e.index, e.term) for e in storage.entries(1, 3)] == [(1, 1), (2, 2)]
    storage.append([])
    with pytest.raises(ValueError, match="gap"):
        storage.append([Entry(5, 2, EntryKind.EVENTS, b"")])
    storage.create_snapshot(2, VOTERS, b"")
    storage.compact(2)
    with pytest.raises(ValueError, match="compacted"):
        storage.append([Entry(2, 3, EntryKind.EVENTS, b"")])


def test_snapshots_replace_the_log_and_never_go_back():
    storage = stored(1, 1, 1)
    storage.apply_snapshot(Snapshot(10, 3, VOTERS, b"s"))
    assert (storage.first_index(), storage.last_index(), storage.term(10)) == (11, 10, 3)
    with pytest.raises(ValueError, match="older"):
        storage.apply_snapshot(Snapshot(5, 3, VOTERS, b""))
    with pytest.raises(ValueError, match="cannot snapshot"):
        storage.create_snapshot(11, VOTERS, b"")


def test_compaction_needs_a_snapshot_covering_it():
    storage = stored(1, 1, 1)
    with pytest.raises(ValueError, match="cannot compact"):
        storage.compact(2)
    storage.create_snapshot(3, VOTERS, b"")
    storage.compact(1)
    storage.compact(1)  # already done: nothing happens
    assert storage.first_index() == 2
