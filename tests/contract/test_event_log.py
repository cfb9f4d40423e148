"""One suite, both logs: MemoryLog and DiskLog keep the EventLog contract."""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import AsyncIterator, Callable

import pytest

from eventstream.server.config.model import StorageConfig
from eventstream.server.native import NativeWire
from eventstream.server.storage.disk_log import DiskLog
from eventstream.server.storage.log import EventLog, RecordBatch
from eventstream.server.storage.memory_log import MemoryLog

PARTITIONS = 2


@pytest.fixture(params=["memory", "disk", "disk-uncached"])
async def open_log(request, tmp_path) -> AsyncIterator[Callable[[], EventLog]]:
    """Opens the log under test; a second call reopens the same data (disk only)."""
    opened: list[EventLog] = []
    # "disk-uncached": no tail cache, so every read comes from the segment files.
    config = StorageConfig(data_dir=str(tmp_path / "data"), partitions=PARTITIONS,
                           segment_bytes=4096, index_interval_bytes=128, retention_ms=0,
                           tail_cache_bytes=0 if request.param == "disk-uncached" else 1 << 20)

    def open_() -> EventLog:
        for log in opened:
            log.close()
        log: EventLog
        if request.param == "memory":
            log = MemoryLog(PARTITIONS, 1 << 20)
        else:
            log = DiskLog(dataclasses.replace(config), NativeWire())
        opened.append(log)
        return log

    yield open_
    if opened:
        opened[-1].close()


def records(start: int, count: int) -> tuple[list[bytes], list[str], bytes]:
    return ([b"\x0a\x03r%02d" % i for i in range(start, start + count)],
            [f"topic/{i % 3}" for i in range(start, start + count)],
            bytes(i % 5 for i in range(start, start + count)))


async def test_appended_records_are_invisible_until_committed(open_log):
    log = open_log()
    assert (log.next_offset(1), log.high_watermark(1), log.start_offset(1)) == (0, 0, 0)
    log.append(1, RecordBatch.of(*records(0, 5)), 100)
    assert (log.next_offset(1), log.high_watermark(1)) == (5, 0)
    assert log.read(1, 0, 10).records == []
    await log.commit()
    assert (log.next_offset(1), log.high_watermark(1), log.high_watermark(0)) == (5, 5, 0)


async def test_reads_return_what_was_appended_in_order(open_log):
    log = open_log()
    for batch in range(40):
        log.append(batch % 2, RecordBatch.of(*records(batch * 10, 10)), 1000 + batch)
        await log.commit()
    result = log.read(0, 37, 1000)
    expected = [r for b in range(0, 40, 2) for r in records(b * 10, 10)[0]]
    assert result.first_offset == 37
    assert result.records == expected[37:37 + len(result.records)]
    collected = read_everything(log, 0, 7)
    assert [c[0] for c in collected] == expected
    assert [c[1] for c in collected] == [t for b in range(0, 40, 2) for t in records(b * 10, 10)[1]]
    assert bytes(c[2] for c in collected) == b"".join(
        records(b * 10, 10)[2] for b in range(0, 40, 2))


def read_everything(log: EventLog, partition: int, step: int) -> list[tuple[bytes, str, int]]:
    """(record, topic, priority) of every committed record, read ``step`` at a time at most."""
    collected, offset = [], log.start_offset(partition)
    while offset < log.high_watermark(partition):
        chunk = log.read(partition, offset, step)
        assert 1 <= len(chunk.records) <= step  # fewer than asked is allowed, none is not
        collected += list(zip(chunk.records, chunk.topics, chunk.priorities))
        offset += len(chunk.records)
    return collected


async def test_seeking_by_time_finds_the_first_record_at_or_after(open_log):
    log = open_log()
    for batch, time_ns in enumerate([100, 200, 200, 300, 250, 400]):  # 250: the clock stepped back
        log.append(0, RecordBatch.of(*records(batch * 4, 4)), time_ns)
        await log.commit()
    # Times never go backwards: the batch given 250 is stored at 300.
    assert [log.offset_for_time(0, t) for t in (0, 100, 101, 200, 201, 300, 301, 400, 401)] == [
        0, 0, 4, 4, 12, 12, 20, 20, 24]


@pytest.mark.parametrize("open_log", ["disk", "disk-uncached"], indirect=True)
async def test_disk_log_keeps_everything_across_reopening(open_log):
    log = open_log()
    for batch in range(30):
        log.append(batch % 2, RecordBatch.of(*records(batch * 10, 10)), 1000 + batch)
        await log.commit()
    before = [(read_everything(log, p, 1000), log.offset_for_time(p, 1010))
              for p in range(PARTITIONS)]
    assert log.durability == 3
    log = open_log()
    assert [(read_everything(log, p, 1000), log.offset_for_time(p, 1010))
            for p in range(PARTITIONS)] == before
    assert log.next_offset(0) == 150
    log.append(0, RecordBatch.of(*records(0, 1)), 5000)
    await log.commit()
    assert log.read(0, 150, 10).records == records(0, 1)[0]


async def test_batches_may_share_one_buffer_with_topics_inside_the_records(open_log):
    """As the event encoder places a submission: one buffer, each partition's records
    in a run, each topic a span inside its record."""
    data, ends, spans = bytearray(b"??"), array("I"), array("I")
    for i in range(7):
        topic = b"shared/%d" % (i % 2)
        spans.extend((len(data) + 2, len(topic)))
        data += b"\x0a" + bytes([len(topic)]) + topic + b"#%d" % i
        ends.append(len(data))
    data = bytes(data)
    log = open_log()
    log.append(0, RecordBatch(data, 2, memoryview(ends)[:4], memoryview(spans)[:8],
                              b"\x01\x02\x03\x04", data), 10)
    log.append(1, RecordBatch(data, ends[3], memoryview(ends)[4:], memoryview(spans)[8:],
                              b"\x00\x00\x00", data), 10)
    await log.commit()
    records = [data[a:b] for a, b in zip([2, *ends[:-1]], ends)]
    assert read_everything(log, 0, 3) == [(records[i], f"shared/{i % 2}", i + 1) for i in range(4)]
    assert read_everything(log, 1, 2) == [(records[i], f"shared/{i % 2}", 0) for i in range(4, 7)]
    assert log.retained_bytes(1) >= ends[6] - ends[3]
