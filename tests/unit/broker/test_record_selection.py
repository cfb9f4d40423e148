"""A subscriber's records chosen in libshardq, one call per block, against TopicFilter.

The subscription's filter runs on whole blocks of segment records
(:class:`eventstream.server.native.select.RecordSelector` through
:class:`eventstream.server.storage.block_records.Selection`); what it takes
must be exactly what :class:`TopicFilter` and the priority floor take, in
order, as the stored bytes back to back, within the delivery's byte budget.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstream.server.broker.topics import TopicFilter
from eventstream.server.native import InvalidPattern
from eventstream.server.native.select import RecordSelector
from eventstream.server.storage.block_records import BlockDamaged, Collected, Selection
from eventstream.server.storage.segment import HEAD, HEADER_SIZE

LEVELS = st.sampled_from(["a", "b", "rt", "flood", "x1"])
TOPICS = st.lists(LEVELS, min_size=1, max_size=4).map("/".join)
PATTERNS = st.lists(st.sampled_from(["a", "b", "rt", "flood", "*"]), min_size=1, max_size=4).flatmap(
    lambda levels: st.sampled_from(["/".join(levels), "/".join([*levels, "#"])]))
RECORDS = st.lists(st.tuples(TOPICS, st.integers(0, 4), st.binary(min_size=1, max_size=40)),
                   max_size=60)


def block(records: list[tuple[str, int, bytes]], first_offset: int = 0) -> bytes:
    """Segment records (CRC 0: only read from memory here)."""
    out = bytearray()
    for index, (topic, priority, event) in enumerate(records):
        name = topic.encode()
        out += HEAD.pack(HEADER_SIZE - 4 + len(name) + len(event), 0, first_offset + index, 0,
                         priority, len(name)) + name + event
    return bytes(out)


def selected(records, patterns, min_priority, skip=0, limit=1000, budget=1 << 30, held=0):
    selector = RecordSelector(patterns, min_priority)
    out = Selection(0, selector, budget, held)
    out.take(block(records), 0, len(block(records)), 0, min_offset=skip, limit=limit)
    return out


@settings(max_examples=200, deadline=None)
@given(records=RECORDS, patterns=st.lists(PATTERNS, min_size=1, max_size=5), min_priority=st.integers(0, 4),
       skip=st.integers(0, 10), limit=st.integers(1, 70))
def test_the_selection_is_what_the_topic_filter_takes(records, patterns, min_priority, skip, limit):
    topic_filter = TopicFilter(patterns)
    out = selected(records, None if topic_filter.match_all else topic_filter.patterns, min_priority,
                   skip, limit)
    examined = records[skip:skip + limit]
    wanted = [event for topic, priority, event in examined
              if priority >= min_priority and topic_filter.matches(topic)]
    assert (out.examined, out.matched, out.full) == (len(examined), len(wanted), False)
    assert bytes(out.events) == b"".join(wanted)


@given(records=RECORDS, budget=st.integers(0, 200), held=st.integers(0, 100))
def test_the_budget_ends_the_delivery_before_a_match_past_it(records, budget, held):
    out = selected(records, ["#"], 0, budget=budget, held=held)
    taken, size = 0, held
    for _, _, event in records:   # every record matches: the Python loop a subscriber had
        if (taken or held) and size + len(event) > budget:
            break
        taken, size = taken + 1, size + len(event)
    assert (out.matched, out.examined, out.written) == (taken, taken, size - held)
    assert out.full == (taken < len(records))
    assert bytes(out.events) == b"".join(event for _, _, event in records[:taken])


def test_it_takes_what_collected_takes_from_several_blocks():
    first = [("rt/a", 3, b"A1"), ("flood/1", 0, b"F1")]
    second = [("flood/2", 0, b"F2"), ("rt/b", 4, b"B1")]
    out = Selection(5, RecordSelector(["rt/*"], 3), 1 << 20, 0)
    collected = Collected(5)
    for gather in (out, collected):
        gather.take(block(first, 5), 0, len(block(first, 5)), 5, min_offset=5, limit=10)
        data = b"pad" + block(second, 7)
        gather.take(data, 3, len(data), 7, min_offset=5, limit=10)
    assert bytes(out.events) == b"A1B1" == b"".join(
        r for r, t in zip(collected.records, collected.topics_function()()) if t.startswith("rt/"))
    assert len(out) == len(collected) == 4


def test_a_damaged_block_and_a_bad_pattern_are_refused():
    data = block([("rt/a", 3, b"A1"), ("rt/b", 3, b"B1")])
    with pytest.raises(BlockDamaged) as damaged:
        Selection(0, RecordSelector(["#"], 0), 100, 0).take(data, 0, len(data) - 1, 0, min_offset=0,
                                                            limit=10)
    assert damaged.value.position == len(block([("rt/a", 3, b"A1")]))
    with pytest.raises(InvalidPattern):
        RecordSelector(["a//b"], 0)


def test_the_buffer_grows_only_for_matches():
    skipped = selected([("flood/1", 0, b"f" * 1000)] * 50, ["rt/#"], 0)
    assert (skipped.examined, skipped.matched, len(skipped._data)) == (50, 0, 0)
    # Matches past the first growth, and one event larger than it.
    records = [("rt/a", 3, bytes([i]) * 3000) for i in range(40)] + [("rt/b", 3, b"L" * 200_000)]
    out = selected(records, ["rt/#"], 0)
    assert (out.examined, out.matched) == (41, 41)
    assert bytes(out.events) == b"".join(event for _, _, event in records)
