"""The in-memory log's bound: what it evicts, and that evicted records are freed."""

from __future__ import annotations

import sys
from array import array

import pytest

from eventstream.server.storage.log import RecordBatch
from eventstream.server.storage.memory_log import MemoryLog


def shared_buffer(counts: list[int], size: int = 100) -> tuple[bytes, list[RecordBatch]]:
    """One buffer holding ``counts[p]`` records of ``size`` bytes for each partition
    (as the event encoder places a submission), topics inside the records."""
    data, batches, ends, spans = b"", [], array("I"), array("I")
    for partition, count in enumerate(counts):
        for i in range(count):
            topic = b"t/%d" % partition
            spans.extend((len(data), len(topic)))
            data += topic + b"%d" % i * size
            data = data[:ends[-1] + size if ends else size]
            ends.append(len(data))
    first = 0
    for count in counts:
        start = ends[first - 1] if first else 0
        batches.append(RecordBatch(data, start, memoryview(ends)[first:first + count],
                                   memoryview(spans)[2 * first:2 * (first + count)],
                                   bytes(count), data))
        first += count
    return data, batches


async def test_a_share_of_a_larger_buffer_is_copied_so_eviction_frees_it():
    log = MemoryLog(2, 1 << 20)
    data, (part0, part1) = shared_buffer([9, 1])
    log.append(0, part0, 1)
    log.append(1, part1, 1)
    del part0, part1
    await log.commit()
    # Neither partition keeps the whole buffer alive for its share: the only
    # references left are this function's name and getrefcount's argument.
    assert sys.getrefcount(data) == 2
    assert [log.retained_bytes(p) for p in (0, 1)] == [900, 100]
    result = log.read(1, 0, 10)
    assert result.records == [data[900:1000]] and result.topics == ["t/1"]
    assert log.read(0, 3, 2).records == [data[300:400], data[400:500]]


async def test_eviction_keeps_the_bound_and_drops_the_oldest_batches_first():
    log = MemoryLog(2, 1000)
    for round_ in range(6):
        _, batches = shared_buffer([3, 1])
        for partition, batch in enumerate(batches):
            log.append(partition, batch, round_)
        await log.commit()
        assert log.retained_bytes(0) + log.retained_bytes(1) <= 1000
    # Partition 0 held the most each time, so it lost its oldest batches (of 3
    # records, 300 bytes): 5 of 6; partition 1 kept all 6 of its own.
    assert (log.start_offset(0), log.high_watermark(0)) == (15, 18)
    assert (log.start_offset(1), log.high_watermark(1)) == (0, 6)
    assert (log.retained_bytes(0), log.retained_bytes(1), log.evicted) == (300, 600, 15)
    with pytest.raises(LookupError):
        log.read(0, 14, 1)
    assert len(log.read(0, 15, 100).records) == 3
    assert len(log.read(1, 0, 100).records) == 6
    assert [log.offset_for_time(0, t) for t in (0, 5, 6)] == [15, 15, 18]


def test_cached_batches_are_nothing_the_garbage_collector_scans():
    """A full cache holds tens of thousands of batches; as tracked objects they
    made every full collection scan them all (20-40 ms pauses under load)."""
    import gc

    log = MemoryLog(1, 1 << 20)
    placed = array("I", [3, 6])
    log.append(0, RecordBatch(b"abcdef", 0, memoryview(placed), memoryview(array("I", [0, 1, 3, 1])),
                              b"\x01\x02", b"abcdef"), 1)
    log.append(0, RecordBatch.of([b"xy", b"z"], ["t", "u"], b"\x00\x00"), 2)
    log.publish()
    gc.collect()
    held = [chunk for chunk in log._parts[0].chunks if chunk is not None]
    assert len(held) == 2
    assert not any(gc.is_tracked(chunk) for chunk in held)
    assert log.read(0, 0, 10).records == [b"abc", b"def", b"xy", b"z"]
