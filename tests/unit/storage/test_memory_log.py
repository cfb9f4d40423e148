"""The in-memory entry log's bound: what it evicts, and never what readers may still need."""

from __future__ import annotations

import pytest

from eventstream.server.storage.memory_entry_log import MemoryEntryLog
from tests.support.entry_logs import Rounds


async def test_eviction_keeps_the_bound_and_drops_the_oldest_applied_entries_first():
    log = MemoryEntryLog(2, 2000)
    rounds = Rounds.following(log)
    for number in range(12):
        await log.append(rounds.events(1, {0: 3, 1: 1}, 1000 + number))
        log.apply(log.last_index())
        assert sum(log.retained_bytes(p) for p in (0, 1)) <= 2000 or log.first_index() == \
            log.last_index()
    assert log.first_index() > 1 and log.last_index() == 12
    evicted_entries = log.first_index() - 1
    assert [log.start_offset(p) for p in (0, 1)] == [3 * evicted_entries, evicted_entries]
    assert log.evicted == 4 * evicted_entries   # records, over both partitions
    assert [log.high_watermark(p) for p in (0, 1)] == [36, 12]
    with pytest.raises(LookupError):
        log.read(0, log.start_offset(0) - 1, 1)
    assert len(log.read(1, log.start_offset(1), 100).records) == 12 - evicted_entries


async def test_entries_not_applied_are_never_evicted():
    log = MemoryEntryLog(1, 100)
    rounds = Rounds.following(log)
    for number in range(5):
        await log.append(rounds.events(1, {0: 4}, 1000 + number))
    assert log.first_index() == 1 and log.evicted == 0  # over the bound, nothing applied yet
    log.apply(3)
    assert log.first_index() == 4 and log.start_offset(0) == 12 and log.high_watermark(0) == 12
    log.apply(5)
    assert log.high_watermark(0) == 20 and len(log.read(0, log.start_offset(0), 100).records) >= 4


async def test_eviction_drops_down_to_a_share_of_the_bound_at_once_not_a_unit_per_round():
    # One unit per round moved the lists of every unit kept, each round: a pass over
    # the whole log per round once the bound was reached.
    log = MemoryEntryLog(1, 20_000)
    rounds = Rounds.following(log)
    drops = 0
    for number in range(400):
        first = log.first_index()
        await log.append(rounds.events(1, {0: 1}, 1000 + number))
        log.apply(log.last_index())
        drops += log.first_index() != first
        assert log.segment_count() == 1 or sum(info.bytes for info in log.segments()) <= 20_000
    assert log.evicted > 0
    units = log.first_index() - 1
    assert units >= 5 * drops  # several units per eviction (1/16 of the bound each time)
