"""Pure parts of the entry log: the entry codec, the hard state, index files, the block cache."""

from __future__ import annotations

import dataclasses
import struct
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstream.server.native import InvalidArgument
from eventstream.server.storage.block_cache import BlockCache
from eventstream.server.storage.block_records import Collected
from eventstream.server.storage.entries import (
    B_COUNT,
    B_FIRST_OFFSET,
    B_PARTITION,
    B_POSITION,
    B_SIZE,
    BLOCK_FIELDS,
    ENTRY_HEADER_SIZE,
    CorruptEntry,
    EntryBatch,
    EntryEncoder,
    EntryKind,
    concat,
    walk,
    with_blocks,
)
from eventstream.server.storage.entry_index import (
    BlockRun,
    TermRuns,
    decode_index_head,
    encode_index,
    index_file_size,
    positions_from,
    run_from,
)
from eventstream.server.storage.hard_state import HardState, HardStateRefused, decode, encode
from tests.support.entry_logs import CHECKSUMS, Source, records, source_of
from tests.support.oracles.wire import PureWire

# An entry: an opaque one (kind, payload) or an EVENTS one (submissions, each
# {partition: records}).
entry_strategy = st.one_of(
    st.tuples(st.sampled_from([EntryKind.NOOP, EntryKind.GROUPS, EntryKind.RETENTION, 9]),
              st.binary(max_size=64)),
    st.lists(st.dictionaries(st.integers(0, 5), st.integers(0, 6), max_size=4),
             min_size=1, max_size=3))


def sources_for(submissions, next_offsets) -> list[Source]:  # type: ignore[no-untyped-def]
    """Sources for an EVENTS entry, records numbered on from ``next_offsets`` (not advanced)."""
    taken = list(next_offsets)
    sources = []
    for spread in submissions:
        runs = {}
        for partition, count in spread.items():
            if count:
                runs[partition] = (taken[partition], count)
                taken[partition] += count
        sources.append(source_of(6, runs))
    return sources


def encode_all(entries, first_index: int = 1, term: int = 1, codec=CHECKSUMS):  # type: ignore[no-untyped-def]
    encoder = EntryEncoder(codec, first_index)
    next_offsets = array("Q", [0] * 6)
    for number, entry in enumerate(entries):
        if isinstance(entry, tuple):
            encoder.add(term + number // 3, entry[0], entry[1])
        else:
            encoder.add_events(term + number // 3, sources_for(entry, next_offsets),
                               next_offsets, 1000 + number)
    return encoder.finish(), next_offsets


@settings(max_examples=150, deadline=None)
@given(st.lists(entry_strategy, min_size=1, max_size=8), st.integers(1, 1 << 40))
def test_walking_encoded_entries_gives_back_what_the_encoder_said(entries, first_index):
    batch, next_offsets = encode_all(entries, first_index)
    walked = walk(batch.data, CHECKSUMS, first_index=first_index, partitions=6)
    assert walked.problem is None and walked.end == len(batch.data)
    got = walked.batch
    assert (got.first_index, list(got.ends), list(got.terms), got.kinds, list(got.blocks)) == (
        batch.first_index, list(batch.ends), list(batch.terms), batch.kinds, list(batch.blocks))
    # Each block is exactly the run of its partition's records, offsets following on.
    seen = [0] * 6
    rows = batch.blocks
    for row in range(0, len(rows), BLOCK_FIELDS):
        partition, first, count = rows[row + B_PARTITION], rows[row + B_FIRST_OFFSET], \
            rows[row + B_COUNT]
        assert first == seen[partition]
        out = Collected(first)
        start = rows[row + B_POSITION]
        out.take(bytes(batch.data), start, start + rows[row + B_SIZE], first, min_offset=first,
                 limit=1 << 30, checksums=CHECKSUMS)
        result = out.result()
        assert (result.records, result.topics, result.priorities) == records(first, count)
        seen[partition] += count
    assert list(next_offsets) == seen
    for number, entry in enumerate(entries):
        if isinstance(entry, tuple):
            assert batch.entry(number).payload == entry[1]


@settings(max_examples=60, deadline=None)
@given(st.lists(entry_strategy, min_size=1, max_size=5))
def test_the_native_entry_encoder_matches_the_plain_python_one(entries):
    native, native_offsets = encode_all(entries, 3, codec=CHECKSUMS)
    plain, plain_offsets = encode_all(entries, 3, codec=PureWire())
    assert bytes(native.data) == bytes(plain.data)
    assert list(native.blocks) == list(plain.blocks) and native_offsets == plain_offsets


def test_bad_sources_are_refused_by_both_encoders():
    source = source_of(2, {0: (0, 2)})
    for codec in (CHECKSUMS, PureWire()):
        for bad in (dataclasses.replace(source, part_counts=[3, 0]),
                    dataclasses.replace(source, topics=array("I", [0, 200, 0, 3]))):
            with pytest.raises(InvalidArgument):
                EntryEncoder(codec, 1).add_events(1, [bad], array("Q", [0, 0]), 5)


def test_a_block_holds_the_submissions_records_in_order():
    encoder = EntryEncoder(CHECKSUMS, 7)
    next_offsets = array("Q", [0, 10])
    encoder.add_events(3, [source_of(2, {1: (10, 2)}), source_of(2, {0: (0, 3), 1: (12, 1)})],
                       next_offsets, 555)
    batch = encoder.finish()
    assert list(next_offsets) == [3, 13]
    rows = batch.blocks
    assert [rows[r + B_PARTITION] for r in range(0, len(rows), BLOCK_FIELDS)] == [0, 1]
    out = Collected(10)
    start = rows[BLOCK_FIELDS + B_POSITION]
    out.take(bytes(batch.data), start, start + rows[BLOCK_FIELDS + B_SIZE], 10, min_offset=10,
             limit=10)
    result = out.result()
    assert result.records == records(10, 3)[0] and result.topics == records(10, 3)[1]


@settings(max_examples=100, deadline=None)
@given(st.lists(entry_strategy, min_size=2, max_size=5), st.data())
def test_a_damaged_or_cut_entry_stops_the_walk_where_it_starts(entries, data):
    batch, _ = encode_all(entries)
    position = data.draw(st.integers(0, len(batch.data) - 1))
    damaged = bytearray(batch.data)
    damaged[position] ^= 1 << data.draw(st.integers(0, 7))
    walked = walk(damaged, CHECKSUMS, first_index=1)
    bad = next(i for i in range(batch.count) if batch.ends[i] > position)
    assert walked.problem is not None and walked.end == batch.start(bad)
    assert walked.batch.count == bad
    cut = walk(batch.data[:position], CHECKSUMS)
    assert cut.end == batch.start(bad) and (cut.problem == "truncated" or position == cut.end)
    with pytest.raises(CorruptEntry):
        EntryBatch.decode(bytes(damaged), CHECKSUMS)


def reencoded(batch: EntryBatch, damage: tuple[int, int] | None = None) -> EntryBatch:
    """``batch``'s entries encoded again around their payloads, as a follower does.

    ``damage``: (position in the payloads taken together, bit) flipped first.
    """
    encoder = EntryEncoder(CHECKSUMS, batch.first_index)
    at = 0
    for number in range(batch.count):
        payload = bytearray(batch.entry(number).payload)
        if damage is not None and at <= damage[0] < at + len(payload):
            payload[damage[0] - at] ^= 1 << damage[1]
        at += len(payload)
        encoder.add(batch.terms[number], batch.kinds[number], payload)
    return encoder.finish()


@settings(max_examples=100, deadline=None)
@given(st.lists(entry_strategy, min_size=1, max_size=5), st.data())
def test_a_followers_entries_are_checked_as_a_decode_checks_them(entries, data):
    batch, _ = encode_all(entries)
    again = with_blocks(reencoded(batch), CHECKSUMS)
    assert bytes(again.data) == bytes(batch.data) and list(again.blocks) == list(batch.blocks)
    assert (list(again.ends), list(again.terms), again.kinds) == (
        list(batch.ends), list(batch.terms), batch.kinds)
    payloads = sum(batch.ends[i] - batch.start(i) - ENTRY_HEADER_SIZE for i in range(batch.count))
    if not payloads:
        return
    damaged = reencoded(batch, (data.draw(st.integers(0, payloads - 1)), data.draw(st.integers(0, 7))))
    try:
        decoded = EntryBatch.decode(bytes(damaged.data), CHECKSUMS)
    except CorruptEntry:
        with pytest.raises(CorruptEntry):
            with_blocks(damaged, CHECKSUMS)
    else:
        assert list(with_blocks(damaged, CHECKSUMS).blocks) == list(decoded.blocks)


def test_entries_out_of_sequence_are_refused():
    batch, _ = encode_all([(EntryKind.NOOP, b""), (EntryKind.NOOP, b"x")], first_index=5)
    assert walk(batch.data, CHECKSUMS, first_index=6).problem == "holds index 5 where 6 belongs"
    assert walk(batch.data, CHECKSUMS, min_term=2).problem == "term 1 after term 2"
    events, _ = encode_all([[{3: 2}]])
    assert "out of order or out of range" in walk(events.data, CHECKSUMS, partitions=3).problem


def test_slices_and_concatenations_keep_bytes_and_metadata():
    batch, _ = encode_all([[{0: 2}], (EntryKind.GROUPS, b"g"), [{1: 1}, {2: 3}], [{0: 1}]])
    parts = [batch.slice(0, 1), batch.slice(1, 3), batch.slice(3, 4)]
    joined = concat(parts)
    assert (bytes(joined.data), list(joined.ends), list(joined.terms), joined.kinds,
            list(joined.blocks)) == (bytes(batch.data), list(batch.ends), list(batch.terms),
                                     batch.kinds, list(batch.blocks))
    again = EntryBatch.decode(bytes(parts[1].data), CHECKSUMS, first_index=2)
    assert list(again.blocks) == list(parts[1].blocks)


def test_hard_state_round_trip_and_damage_refused():
    data = encode(HardState(7, "eventstream-3", 1234), CHECKSUMS)
    assert decode(data, CHECKSUMS) == HardState(7, "eventstream-3", 1234)
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        with pytest.raises(HardStateRefused):
            decode(bytes(damaged), CHECKSUMS)


def test_index_files_round_trip_and_each_part_is_checked():
    runs = [BlockRun(5), BlockRun(0), BlockRun(9)]
    runs[0].add(5, 3, 100, 60, 1000)
    runs[0].add(8, 1, 300, 20, 1001)
    runs[2].add(9, 4, 200, 80, 1000)
    positions = array("I", [40, 180, 290])
    data = encode_index(11, 13, 2, 400, positions, array("Q", [11, 12]), array("Q", [2, 3]),
                        runs, CHECKSUMS)
    head = decode_index_head(data, CHECKSUMS)
    assert head is not None and len(data) == index_file_size(head)
    assert (head.first_index, head.last_index, head.prev_term, head.size, head.last_position,
            head.partitions) == (11, 13, 2, 400, 290, 3)
    assert list(head.term_starts) == [11, 12] and list(head.terms) == [2, 3]
    blob = data[head.positions_offset:head.positions_offset + 12]
    assert list(positions_from(blob, head, CHECKSUMS)) == [40, 180, 290]
    at = head.positions_offset + 12
    run = run_from(data[at:at + 40], head, 0, CHECKSUMS)
    assert run is not None and (run.base, run.next, list(run.offsets), list(run.times)) == (
        5, 9, [0, 3], [1000, 1001])
    assert run_from(data[at:at + 39] + b"?", head, 0, CHECKSUMS) is None
    assert decode_index_head(data[:20] + b"?" + data[21:], CHECKSUMS) is None


def test_term_runs_answer_every_index_and_follow_cuts_and_drops():
    terms = TermRuns(0, 0)
    for index, term in enumerate([1, 1, 2, 2, 2, 5], start=1):
        terms.note(index, term)
    assert [terms.term(i) for i in range(7)] == [0, 1, 1, 2, 2, 2, 5]
    terms.cut_after(4)
    terms.note(5, 6)
    assert [terms.term(i) for i in range(6)] == [0, 1, 1, 2, 2, 6]
    terms.drop_before(3)
    assert [terms.term(i) for i in range(3, 6)] == [2, 2, 6]


def block(start: int, count: int) -> bytes:
    return b"".join(struct.pack("<IIQqBH", 27 - 4 + 1 + len(r), 0, start + i, 100 + start, 0, 1)
                    + b"t" + r for i, r in enumerate(records(start, count)[0]))


def test_the_block_cache_reads_evicts_and_seeks():
    cache = BlockCache(2, 3 * len(block(0, 4)))
    for start in range(0, 16, 4):
        data = block(start, 4)
        cache.add(0, start, 4, 100 + start, data, 0, len(data))
    assert cache.start(0) == 4   # the oldest block went
    assert cache.read(0, 6, 5).records == records(6, 5)[0]
    assert [cache.offset_for_time(0, t) for t in (104, 105, 108, 109, 113)] == [None, 8, 8, 12, 16]
    cache.cut(0, 12)
    assert cache.end(0) == 12
    data = block(20, 2)
    cache.add(0, 20, 2, 120, data, 0, len(data))   # not following on: starts over
    assert (cache.start(0), cache.end(0)) == (20, 22)
    cache.trim(0, 22)
    assert cache.start(0) is None
