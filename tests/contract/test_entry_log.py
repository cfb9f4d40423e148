"""One suite, both entry logs: MemoryEntryLog and DiskEntryLog keep the EntryLog contract.

Then what only the disk log can show: what survives a restart, torn tails
forgiven, damage refused with the file and byte position, zero-fill over
what was durable refused, a data dir of format version 1 refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from eventstream.server.storage.entries import EntryKind
from eventstream.server.storage.entry_api import Compacted, EntryLog, Unavailable
from eventstream.server.storage.entry_log import DiskEntryLog
from eventstream.server.storage.failure import DataDirRefused
from eventstream.server.storage.hard_state import HardState, HardStateRefused
from eventstream.server.storage.memory_entry_log import MemoryEntryLog
from eventstream.server.storage.segment import CorruptSegment
from tests.support.entry_logs import (
    Rounds,
    disk_config,
    expected_records,
    forget_clean_shutdown,
    open_disk,
    segment_files,
)

PARTITIONS = 3


@pytest.fixture(params=["memory", "disk", "disk-uncached"])
async def open_log(request, tmp_path) -> AsyncIterator[Callable[[], EntryLog]]:
    """Opens the log under test; a second call reopens the same data (disk only)."""
    opened: list[EntryLog] = []
    # "disk-uncached": no tail cache, so every read comes from the segment files, and
    # sealed segments' indexes are read from their files each time they are needed.
    uncached = request.param == "disk-uncached"
    config = disk_config(tmp_path / "data", PARTITIONS, tail_cache_bytes=0 if uncached else 1 << 20)

    def open_() -> EntryLog:
        for log in opened:
            log.close()
        log: EntryLog = (MemoryEntryLog(PARTITIONS, 1 << 30) if request.param == "memory"
                         else open_disk(config, index_cache_bytes=1 if uncached else 1 << 20))
        opened.append(log)
        return log

    yield open_
    if opened:
        opened[-1].close()


disk_only = pytest.mark.parametrize("open_log", ["disk", "disk-uncached"], indirect=True)


async def fill(log: EntryLog, rounds: int, *, term: int = 1, time_ns: int = 1000,
               apply: bool = True) -> Rounds:
    """Append ``rounds`` EVENTS entries (a NOOP every fifth), one by one."""
    builder = Rounds.following(log)
    for number in range(rounds):
        if number % 5 == 4:
            builder.add(term, EntryKind.NOOP, b"")
        builder.add_events(term, {number % PARTITIONS: 4, (number + 1) % PARTITIONS: 1},
                           time_ns + number)
        await log.append(builder.finish())
    if apply:
        log.apply(log.last_index())
    return builder


def read_everything(log: EntryLog, partition: int, step: int) -> list[tuple[bytes, str, int]]:
    """(record, topic, priority) of every visible record, read ``step`` at a time at most."""
    collected, offset = [], log.start_offset(partition)
    while offset < log.high_watermark(partition):
        chunk = log.read(partition, offset, step)
        assert 1 <= len(chunk.records) <= step  # fewer than asked is allowed, none is not
        assert chunk.first_offset == offset
        collected += list(zip(chunk.records, chunk.topics, chunk.priorities))
        offset += len(chunk.records)
    return collected


# -- the contract, both logs ------------------------------------------------


async def test_a_new_log_is_empty(open_log):
    log = open_log()
    assert (log.first_index(), log.last_index(), log.durable_index(), log.applied_index()) == (
        1, 0, 0, 0)
    assert log.term(0) == 0
    with pytest.raises(Unavailable):
        log.term(1)
    assert [(log.next_offset(p), log.high_watermark(p), log.start_offset(p))
            for p in range(PARTITIONS)] == [(0, 0, 0)] * PARTITIONS
    assert log.read(0, 0, 10).records == []


async def test_entries_read_back_exactly_as_appended(open_log):
    log = open_log()
    builder = Rounds(PARTITIONS)
    builder.add_events(1, {0: 3, 2: 2}, 100)
    builder.add(1, EntryKind.GROUPS, b"group state")
    builder.add(2, EntryKind.MEMBERSHIP, b"")
    first = builder.finish()
    assert await log.append(first) == 3
    second = builder.events(2, {1: 5}, 200)
    assert await log.append(second) == 4
    assert (log.last_index(), log.durable_index(), [log.term(i) for i in range(5)]) == (
        4, 4, [0, 1, 1, 2, 2])
    got = log.entries(1, 5, 1 << 20)
    assert bytes(got.data) == bytes(first.data) + bytes(second.data)
    assert [(e.index, e.term, e.kind) for e in got] == [
        (1, 1, EntryKind.EVENTS), (2, 1, EntryKind.GROUPS), (3, 2, EntryKind.MEMBERSHIP),
        (4, 2, EntryKind.EVENTS)]
    assert got.entry(1).payload == b"group state"
    # max_bytes bounds the answer, but never below one entry.
    assert log.entries(1, 5, 1).count == 1
    assert log.entries(2, 4, len(got.data)).count == 2
    with pytest.raises(Unavailable):
        log.entries(1, 6, 1 << 20)


async def test_records_are_invisible_until_applied(open_log):
    log = open_log()
    await log.append(Rounds(PARTITIONS).events(1, {1: 5}, 100))
    assert (log.next_offset(1), log.high_watermark(1)) == (5, 0)
    assert log.read(1, 0, 10).records == []
    assert log.offset_for_time(1, 0) == 0
    log.apply(1)
    assert (log.applied_index(), log.high_watermark(1), log.high_watermark(0)) == (1, 5, 0)
    assert log.read(1, 0, 10).records == expected_records(1, 0, 5)


async def test_reads_return_every_partition_in_order(open_log):
    log = open_log()
    await fill(log, 60)
    for partition in range(PARTITIONS):
        collected = read_everything(log, partition, 7)
        end = log.high_watermark(partition)
        assert [c[0] for c in collected] == expected_records(partition, 0, end)
        assert [c[1] for c in collected] == [f"topic/{i % 3}" for i in range(end)]
        assert bytes(c[2] for c in collected) == bytes(i % 5 for i in range(end))
    middle = log.read(0, 37, 5)
    assert (middle.first_offset, middle.records) == (37, expected_records(0, 37, 42))


async def test_seeking_by_time_finds_the_first_record_at_or_after(open_log):
    log = open_log()
    builder = Rounds(PARTITIONS)
    for time_ns in (100, 200, 200, 300, 400):
        await log.append(builder.events(1, {0: 4}, time_ns))
    log.apply(log.last_index())
    assert [log.offset_for_time(0, t) for t in (0, 100, 101, 200, 201, 300, 301, 400, 401)] == [
        0, 0, 4, 4, 12, 12, 16, 16, 20]
    # Times never go back within a partition: the sequencer clamps them, the log refuses.
    with pytest.raises(ValueError, match="time goes back"):
        log.append(builder.events(1, {0: 1}, 300))


async def test_entries_that_do_not_follow_on_are_refused(open_log):
    log = open_log()
    await log.append(Rounds(PARTITIONS).events(2, {0: 1}, 100))
    with pytest.raises(ValueError, match="do not follow"):
        log.append(Rounds(PARTITIONS, first_index=3, next_offsets=[1, 0, 0]).events(2, {0: 1}, 100))
    with pytest.raises(ValueError, match="term 1 after term 2"):
        log.append(Rounds(PARTITIONS, first_index=2, next_offsets=[1, 0, 0]).events(1, {0: 1}, 100))
    with pytest.raises(ValueError, match="offset 0 where 1 belongs"):
        log.append(Rounds(PARTITIONS, first_index=2).events(2, {0: 1}, 100))
    assert log.last_index() == 1


async def test_truncate_after_drops_a_conflicting_suffix(open_log):
    log = open_log()
    await fill(log, 20, apply=False)
    log.apply(6)
    cut = log.last_index()
    kept = [log.next_offset(p) for p in range(PARTITIONS)]
    old = log.entries(1, cut + 1, 1 << 30)
    await fill(log, 30, term=1, time_ns=2000, apply=False)
    with pytest.raises(ValueError, match="applied"):
        log.truncate_after(5)
    assert await log.truncate_after(cut) == cut
    assert (log.last_index(), log.durable_index()) == (cut, cut)
    assert [log.next_offset(p) for p in range(PARTITIONS)] == kept
    assert bytes(log.entries(1, cut + 1, 1 << 30).data) == bytes(old.data)
    # A new leader's entries take the dropped indexes.
    builder = Rounds.following(log)
    replacement = builder.events(3, {2: 2}, 5000)
    assert await log.append(replacement) == cut + 1
    assert [log.term(i) for i in (cut, cut + 1)] == [1, 3]
    assert bytes(log.entries(cut + 1, cut + 2, 1 << 20).data) == bytes(replacement.data)
    log.apply(cut + 1)
    assert log.read(2, kept[2], 10).records == expected_records(2, kept[2], kept[2] + 2)


async def test_pipelined_appends_complete_in_order(open_log):
    log = open_log()
    builder = Rounds(PARTITIONS)
    completed: list[int] = []
    marks: list[int] = []
    futures = []
    for number in range(40):
        future = log.append(builder.events(1, dict.fromkeys(range(PARTITIONS), 2), 100 + number))
        future.add_done_callback(lambda f: (completed.append(f.result()),
                                            marks.append(log.durable_index())))
        futures.append(future)
    assert log.last_index() == 40
    await log.wait_durable(40)
    await asyncio.gather(*futures)
    assert completed == list(range(1, 41))
    assert marks == sorted(marks) and marks[-1] == 40


async def test_retention_drops_whole_units_below_an_index(open_log):
    log = open_log()
    await fill(log, 80, apply=False)
    log.apply(30)
    units = log.segments()
    last = log.last_index()
    assert len(units) > 3 and units[0].first_index == 1 and units[-1].last_index == last
    first = log.drop_before(last - 10)   # only applied units go
    assert 1 < first <= 31 and first in [u.first_index for u in units]
    assert log.first_index() == first and log.segments()[0].first_index == first
    assert log.term(first - 1) == 1
    with pytest.raises(Compacted):
        log.term(first - 2)
    with pytest.raises(Compacted):
        log.entries(first - 1, first + 1, 1 << 20)
    log.apply(last)
    assert log.drop_before(1 << 40) == log.segments()[-1].first_index  # never the newest
    for partition in range(PARTITIONS):
        start = log.start_offset(partition)
        assert start > 0
        with pytest.raises(LookupError):
            log.read(partition, start - 1, 10)
        collected = read_everything(log, partition, 1000)
        assert [c[0] for c in collected] == expected_records(
            partition, start, log.high_watermark(partition))


async def test_hard_state_round_trip(open_log):
    log = open_log()
    assert log.hard_state() == HardState(0, "", 0)
    await log.append(Rounds(PARTITIONS).events(4, {0: 1}, 1))
    await log.set_hard_state(HardState(term=4, vote="n2", commit=1))
    assert log.hard_state() == HardState(4, "n2", 1)


# -- what only the disk log can show -----------------------------------------


@disk_only
async def test_term_index_and_records_survive_a_restart(open_log, tmp_path):
    log = open_log()
    await fill(log, 50, term=3)
    last = log.last_index()
    await log.set_hard_state(HardState(term=3, vote="n1", commit=last))

    def state(log: EntryLog) -> tuple:
        return (log.entries(1, last + 1, 1 << 30).data, [log.term(i) for i in range(last + 1)],
                [read_everything(log, p, 1000) for p in range(PARTITIONS)],
                [log.offset_for_time(p, 1020) for p in range(PARTITIONS)], log.segments())

    before = state(log)
    log = open_log()
    assert (log.last_index(), log.hard_state()) == (last, HardState(3, "n1", last))
    assert [log.high_watermark(p) for p in range(PARTITIONS)] == [0] * PARTITIONS  # not applied
    log.apply(last)
    assert state(log) == before
    await fill(log, 1, term=4, time_ns=9000)
    assert log.term(last + 1) == 4


@disk_only
async def test_a_truncation_survives_a_restart(open_log, tmp_path):
    log = open_log()
    await fill(log, 40, apply=False)
    await log.truncate_after(9)
    await log.append(Rounds.following(log).events(2, {0: 1}, 5000))
    entries = log.entries(1, 11, 1 << 30).data
    offsets = [log.next_offset(p) for p in range(PARTITIONS)]
    log = open_log()
    assert log.last_index() == 10 and log.entries(1, 11, 1 << 30).data == entries
    assert log.term(10) == 2 and [log.next_offset(p) for p in range(PARTITIONS)] == offsets


@disk_only
async def test_sealed_index_files_are_rebuilt_when_missing_or_bad(open_log, tmp_path):
    log = open_log()
    await fill(log, 60)
    before = [read_everything(log, p, 1000) for p in range(PARTITIONS)]
    log.close()
    index_files = sorted((tmp_path / "data" / "log").glob("*.index"))
    assert len(index_files) >= 3
    index_files[0].unlink()
    index_files[1].write_bytes(index_files[1].read_bytes()[:-3] + b"bad")
    log = open_log()
    log.apply(log.last_index())
    assert [read_everything(log, p, 1000) for p in range(PARTITIONS)] == before
    assert index_files[0].exists()


@disk_only
async def test_a_torn_tail_is_forgiven(open_log, tmp_path, caplog):
    log = open_log()
    await fill(log, 10)
    last = log.last_index()
    expected = log.entries(1, last + 1, 1 << 30).data
    unfinished = Rounds.following(log).events(1, {0: 30}, 9999).data
    log.close()
    forget_clean_shutdown(tmp_path / "data")  # as after a crash
    newest = segment_files(tmp_path / "data")[-1]
    with open(newest, "ab") as out:
        out.write(unfinished[:len(unfinished) // 2])
    log = open_log()
    assert log.last_index() == last and log.entries(1, last + 1, 1 << 30).data == expected
    assert "torn tail" in caplog.text
    await fill(log, 1, time_ns=10_000)   # and appends continue where the valid entries end
    assert log.last_index() == last + 1


@disk_only
async def test_damage_in_the_middle_is_refused_naming_the_file_and_byte(open_log, tmp_path):
    log = open_log()
    await fill(log, 60)
    log.close()
    files = segment_files(tmp_path / "data")
    for victim in (files[-1], files[0]):   # the newest (always scanned), a sealed one
        if victim == files[0]:
            victim.with_suffix(".index").unlink()  # so it is scanned
        data = bytearray(victim.read_bytes())
        data[100] ^= 0xFF
        victim.write_bytes(bytes(data))
        with pytest.raises(CorruptSegment) as refused:
            open_log()
        assert refused.value.path == str(victim)
        assert 32 <= refused.value.position <= 100
        assert f"segment {victim} is corrupt at byte {refused.value.position}" in str(
            refused.value)
        data[100] ^= 0xFF
        victim.write_bytes(bytes(data))
    open_log()


@disk_only
async def test_zero_fill_over_what_was_durable_is_refused(open_log, tmp_path):
    log = open_log()
    await fill(log, 10)
    log.close()
    newest = segment_files(tmp_path / "data")[-1]
    size = newest.stat().st_size
    newest.write_bytes(newest.read_bytes()[:200] + bytes(size - 200))
    # A clean stop recorded where the log ended: zeros there are damage.
    with pytest.raises(CorruptSegment, match="durable") as refused:
        open_log()
    assert refused.value.path == str(newest)
    # After a crash (no such record), the hard state's commit index says the same.
    forget_clean_shutdown(tmp_path / "data")
    (tmp_path / "data" / "hard-state").write_bytes(b"")  # damaged: refused on its own
    with pytest.raises(HardStateRefused):
        open_log()


@disk_only
async def test_zero_fill_past_the_commit_index_after_a_crash_is_refused(open_log, tmp_path):
    log = open_log()
    await fill(log, 10)
    last = log.last_index()
    await log.set_hard_state(HardState(1, "", last))
    log.close()
    forget_clean_shutdown(tmp_path / "data")
    newest = segment_files(tmp_path / "data")[-1]
    newest.write_bytes(newest.read_bytes()[:100] + bytes(newest.stat().st_size - 100))
    with pytest.raises(CorruptSegment, match=rf"index {last} was durable \(the commit index"):
        open_log()


@disk_only
async def test_a_data_dir_of_format_version_1_is_refused_with_what_to_do(open_log, tmp_path):
    root = tmp_path / "data"
    (root / "partition-0000").mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps({"format_version": 1, "partitions": PARTITIONS}))
    with pytest.raises(DataDirRefused, match="format version 1") as refused:
        open_log()
    assert "empty storage.data_dir" in str(refused.value)
    (root / "meta.json").unlink()
    with pytest.raises(DataDirRefused, match="format version 1"):
        open_log()


@disk_only
async def test_meta_records_the_format_and_a_cluster_id_placeholder(open_log, tmp_path):
    log = open_log()
    assert json.loads((tmp_path / "data" / "meta.json").read_text()) == {
        "format_version": 2, "partitions": PARTITIONS, "cluster_id": ""}
    assert isinstance(log, DiskEntryLog) and log.meta.cluster_id == ""
