"""The record format inside EVENTS entries: what is encoded decodes back, damage is named."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventstream.server.native import NativeWire
from eventstream.server.storage.segment import HEADER_SIZE
from tests.support.oracles.segment import decode, encode_record

CRC = NativeWire()


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


def test_a_damaged_record_followed_by_good_ones_is_not_a_torn_tail():
    items = [("t", 1, b"payload-%d" % i) for i in range(5)]
    data = bytearray(encode_all(items))
    second = len(encode_all(items[:1]))
    data[second + HEADER_SIZE + 2] ^= 0xFF
    decoded, problem = decode(bytes(data), 0, CRC)
    assert (problem, decoded.end) == ("CRC32C mismatch", second)
