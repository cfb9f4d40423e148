"""Pure parts of the durable log: record format, indexes, recovery scans, rolling, retention."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstream.server.native import NativeWire
from eventstream.server.storage.fileops import FileOps
from eventstream.server.storage.log import RecordBatch
from eventstream.server.storage.partition import Partition
from eventstream.server.storage.recovery import (
    recover_partition as recover,
)
from eventstream.server.storage.recovery import (
    torn_record,
    valid_record_after,
)
from eventstream.server.storage.segment import (
    HEADER_SIZE,
    TIME_ENTRY,
    CorruptSegment,
    Segment,
    decode,
    encode_record,
)

CRC = NativeWire()


def recover_partition(directory: Path, checksums, interval: int, *,
                      forgive_unflushed: bool = False) -> list[Segment]:
    """Recovery as a server with ``fsync: always`` (the default) runs it."""
    return recover(directory, checksums, interval, file_ops=FileOps(),
                   forgive_unflushed=forgive_unflushed)

records_strategy = st.lists(
    st.tuples(st.text(min_size=1, max_size=20), st.integers(0, 4), st.binary(max_size=300)),
    min_size=1, max_size=40)


def encode_all(items, base: int = 0, time_ns: int = 1000) -> bytes:
    return b"".join(encode_record(CRC, base + i, time_ns + i, prio, topic.encode(), record)
                    for i, (topic, prio, record) in enumerate(items))


@given(records_strategy, st.integers(0, 2**40))
def test_records_decode_to_what_was_encoded(items, base):
    decoded, problem = decode(encode_all(items, base), 0, CRC)
    assert problem is None
    assert decoded.offsets == list(range(base, base + len(items)))
    assert [(t, p, r) for t, p, r in zip(decoded.topics, decoded.priorities, decoded.records)
            ] == items


@given(records_strategy, st.data())
def test_skips_below_min_offset_and_stops_at_limit(items, data):
    start = data.draw(st.integers(0, len(items)))
    limit = data.draw(st.integers(1, 50))
    decoded, problem = decode(encode_all(items), 0, CRC, min_offset=start, limit=limit)
    assert problem is None
    assert decoded.offsets == list(range(start, min(len(items), start + limit)))


@given(records_strategy, st.data())
def test_a_cut_record_is_reported_truncated_at_its_start(items, data):
    whole = encode_all(items)
    last_start = len(encode_all(items[:-1]))
    cut = data.draw(st.integers(last_start + 1, len(whole) - 1))
    decoded, problem = decode(whole[:cut], 0, CRC)
    assert (problem, decoded.end, len(decoded.offsets)) == ("truncated", last_start,
                                                           len(items) - 1)
    # Nothing valid follows a torn write...
    assert not valid_record_after(whole[:cut], last_start, CRC)


def test_a_damaged_record_followed_by_good_ones_is_not_a_torn_tail():
    items = [("t", 1, b"payload-%d" % i) for i in range(5)]
    data = bytearray(encode_all(items))
    second = len(encode_all(items[:1]))
    data[second + HEADER_SIZE + 2] ^= 0xFF
    decoded, problem = decode(bytes(data), 0, CRC)
    assert (problem, decoded.end) == ("CRC32C mismatch", second)
    assert valid_record_after(bytes(data), second, CRC)


@settings(max_examples=50)
@given(st.lists(st.integers(1, 500), min_size=1, max_size=200), st.integers(64, 2048),
       st.data())
def test_sparse_index_finds_a_position_at_or_before_any_offset_and_time(sizes, interval, data):
    segment = Segment(Path("/nonexistent"), 100)
    position, starts = 0, []
    for i, size in enumerate(sizes):
        segment.note(100 + i, position, 10 * i, interval)
        starts.append(position)
        position += size
    target = data.draw(st.integers(0, len(sizes) - 1))
    found = segment.position_of(100 + target)
    assert found in starts and found <= starts[target]
    assert starts[target] - found < interval + max(sizes)
    found_time = segment.position_of_time(10 * target)
    assert found_time in starts and found_time <= starts[target]


def write_segment(directory: Path, base: int, count: int, size: int = 100) -> bytes:
    data = encode_all([("topic/a", 2, bytes([i % 256]) * size) for i in range(count)], base)
    (directory / f"{base:020d}.log").write_bytes(data)
    return data


def test_recovery_rebuilds_missing_indexes_and_checks_segment_order(tmp_path):
    write_segment(tmp_path, 0, 10)
    write_segment(tmp_path, 10, 10)
    write_segment(tmp_path, 20, 3)
    segments = recover_partition(tmp_path, CRC, 256)
    assert [(s.base, s.next_offset, s.sealed) for s in segments] == [
        (0, 10, True), (10, 20, True), (20, 23, False)]
    assert (tmp_path / f"{0:020d}.index").exists() and (tmp_path / f"{10:020d}.timeindex").exists()
    # The rebuilt index files are used next time, and agree with a scan.
    again = recover_partition(tmp_path, CRC, 256)
    assert [list(s.positions) for s in again] == [list(s.positions) for s in segments]
    (tmp_path / f"{10:020d}.log").unlink()
    (tmp_path / f"{10:020d}.index").unlink()
    with pytest.raises(CorruptSegment, match="starts at offset 20"):
        recover_partition(tmp_path, CRC, 256)


def test_recovery_truncates_a_torn_tail_but_refuses_damage_before_it(tmp_path):
    data = write_segment(tmp_path, 0, 10)
    next_record = encode_all([("topic/a", 2, b"n" * 100)], 10)
    path = tmp_path / f"{0:020d}.log"
    path.write_bytes(data + next_record[:60])
    (segment,) = recover_partition(tmp_path, CRC, 256)
    assert (segment.next_offset, path.read_bytes()) == (10, data)
    damaged = bytearray(data)
    damaged[HEADER_SIZE + 5] ^= 1
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptSegment) as refused:
        recover_partition(tmp_path, CRC, 256)
    assert refused.value.position == 0 and str(path) in str(refused.value)


@settings(max_examples=60, deadline=None)
@given(records_strategy, st.data())
def test_recovery_keeps_exactly_the_whole_records_before_a_torn_write(tmp_path_factory, items,
                                                                       data):
    directory = tmp_path_factory.mktemp("torn")
    whole = encode_all(items)
    cut = data.draw(st.integers(0, len(whole)))
    (directory / f"{0:020d}.log").write_bytes(whole[:cut])
    (segment,) = recover_partition(directory, CRC, 256)
    kept = len(decode(whole[:cut], 0, CRC)[0].offsets)
    assert segment.next_offset == kept
    assert (directory / f"{0:020d}.log").read_bytes() == encode_all(items[:kept])


@settings(max_examples=60, deadline=None)
@given(records_strategy, st.data())
def test_under_interval_or_never_any_bad_tail_goes_and_the_whole_records_stay(
        tmp_path_factory, items, data):
    directory = tmp_path_factory.mktemp("unflushed")
    whole = encode_all(items)
    cut = data.draw(st.integers(0, len(whole)))
    garbage = data.draw(st.sampled_from([b"", bytes(64), b"\xff" * 9]) | st.binary(max_size=80))
    written = whole[:cut] + garbage
    (directory / f"{0:020d}.log").write_bytes(written)
    (segment,) = recover_partition(directory, CRC, 256, forgive_unflushed=True)
    # The whole records written; garbage that happens to restore the cut
    # record's missing bytes exactly makes that one whole again.
    kept = max(k for k in range(len(items) + 1) if written.startswith(encode_all(items[:k])))
    assert kept >= len(decode(whole[:cut], 0, CRC)[0].offsets)
    assert segment.next_offset == kept
    assert (directory / f"{0:020d}.log").read_bytes() == encode_all(items[:kept])


def test_garbage_that_restores_a_cut_record_makes_it_whole_again(tmp_path):
    """Found by the property above: the cut byte and the garbage were both NUL."""
    whole = encode_all([("t", 0, b"ab\x00")])
    (tmp_path / f"{0:020d}.log").write_bytes(whole[:-1] + b"\x00")
    (segment,) = recover_partition(tmp_path, CRC, 256, forgive_unflushed=True)
    assert segment.next_offset == 1


@pytest.mark.parametrize("tail", [bytes(64), bytes(5), b"\xff" * 40, "old record", "bad crc"])
def test_under_fsync_always_only_a_torn_record_is_forgiven(tmp_path, tail):
    data = write_segment(tmp_path, 0, 10)
    path = tmp_path / f"{0:020d}.log"
    if tail == "old record":     # the beginning of a record, but not the one that belongs there
        tail = data[:60]
    elif tail == "bad crc":      # the whole next record, damaged
        damaged = bytearray(encode_all([("topic/a", 2, b"n" * 100)], 10))
        damaged[-1] ^= 1
        tail = bytes(damaged)
    path.write_bytes(data + tail)
    with pytest.raises(CorruptSegment) as refused:
        recover_partition(tmp_path, CRC, 256)
    assert refused.value.position == len(data) and "where offset 10 belongs" in str(refused.value)
    assert path.read_bytes() == data + tail
    (segment,) = recover_partition(tmp_path, CRC, 256, forgive_unflushed=True)
    assert segment.next_offset == 10 and path.read_bytes() == data


@given(records_strategy, st.data())
def test_every_cut_of_the_last_record_is_a_torn_record(items, data):
    whole = encode_all(items)
    last = len(encode_all(items[:-1]))
    cut = data.draw(st.integers(last, len(whole) - 1))
    assert torn_record(whole[:cut], last, len(items) - 1)
    # The offset field tells it from the beginning of any other record.
    assert not torn_record(whole[:cut], last, len(items)) or cut - last < 16


def test_an_empty_newest_segment_is_removed_whatever_its_name(tmp_path):
    write_segment(tmp_path, 0, 10)
    (tmp_path / f"{13:020d}.log").write_bytes(b"")   # a failed roll, named after lost offsets
    (segment,) = recover_partition(tmp_path, CRC, 256)
    assert (segment.base, segment.next_offset, segment.sealed) == (0, 10, False)
    assert not (tmp_path / f"{13:020d}.log").exists()


def pending_partition(tmp_path: Path, **limits: int) -> Partition:
    options = {"segment_bytes": 1 << 20, "segment_ns": 1 << 60, "index_interval": 4096}
    options.update(limits)
    return Partition(tmp_path, [Segment(tmp_path, 0)], checksums=CRC, **options)


def test_partition_rolls_by_size_and_by_age_at_record_boundaries(tmp_path):
    part = pending_partition(tmp_path, segment_bytes=1000)
    part.append(RecordBatch.of([b"x" * 200] * 12, ["t"] * 12, bytes(12)), 5)
    bases = [segment.base for segment, _ in part.pending]
    assert bases == [0, 5, 10]   # each segment rolls once it reached 1000 bytes
    part.publish()
    assert (part.high_watermark(), len(part.segments)) == (12, 3)
    (tmp_path / "age").mkdir()
    part = pending_partition(tmp_path / "age", segment_ns=100)
    part.append(RecordBatch.of([b"x"] * 2, ["t"] * 2, bytes(2)), 1000)
    part.append(RecordBatch.of([b"x"], ["t"], bytes(1)), 1099)
    part.append(RecordBatch.of([b"x"], ["t"], bytes(1)), 1100)
    assert [segment.base for segment, _ in part.pending] == [0, 3]


def test_retention_never_deletes_the_active_segment(tmp_path):
    part = pending_partition(tmp_path, segment_bytes=1000)
    part.append(RecordBatch.of([b"x" * 200] * 12, ["t"] * 12, bytes(12)), 5)
    part.publish()
    removed = part.expire(now_ns=10**12, retention_ns=1, retention_bytes=0)
    assert [s.base for s in removed] == [0, 5]
    assert (part.start_offset(), [s.base for s in part.segments]) == (10, [10])
    assert part.bytes == part.segments[0].size


def test_index_files_of_a_sealed_segment_load_back(tmp_path):
    part = pending_partition(tmp_path, segment_bytes=1000, index_interval=300)
    part.append(RecordBatch.of([b"x" * 200] * 12, ["t"] * 12, bytes(12)), 5)
    segment, buf = part.pending[0]
    segment.path.write_bytes(buf)
    index, times = segment.index_bytes()  # what sealing writes
    segment.index_path.write_bytes(index)
    segment.time_index_path.write_bytes(times)
    loaded = Segment(tmp_path, 0)
    assert loaded.load_index(len(buf), CRC)
    assert len(segment.positions) > 2
    assert [list(s.rel_offsets) + list(s.positions) + list(s.times) for s in (loaded, segment)] \
        == [list(segment.rel_offsets) + list(segment.positions) + list(segment.times)] * 2


def test_packing_index_files_keeps_no_memory_behind():
    # Every sealed segment has its own entry count; nothing per count may outlive the call.
    def pack(count: int) -> None:
        segment = Segment(Path("/nonexistent"), 0)
        segment.rel_offsets.extend(range(count))
        segment.positions.extend(range(0, 8 * count, 8))
        segment.times.extend(range(1000, 1000 + count))
        segment.pending_next = count
        index, times = segment.index_bytes()
        assert times == b"".join(TIME_ENTRY.pack(1000 + i, i) for i in range(count))
        assert len(index) == 8 * count

    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        pack(1999)  # whatever a first call sets up once
        before = tracemalloc.get_traced_memory()[0]
        for count in range(2000, 2010):
            pack(count)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        if started:
            tracemalloc.stop()
    assert kept < 64 * 1024, f"{kept} bytes kept after packing 10 index files"
