"""The native de-duplication table against the plain-Python window (the oracle).

Same lookups, same expiry and the same encoding after every step of random
histories; snapshots restore to the same window or are refused alike; a
submission's verdicts are the ones the sequencer's former per-id loop gave;
ids outside their buffer or too long are refused at the C boundary.
"""

from __future__ import annotations

import struct
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstream.server.native import (
    DedupTable,
    EntryScan,
    EventEncoder,
    InvalidArgument,
    Limits,
    MalformedInput,
)
from eventstream.v1 import common_pb2, publish_pb2
from tests.support.oracles.dedup import DedupWindow

PROPERTY = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
ID_ALPHABET = [b"a", b"b", b"c", b"order-1", b"order-2", b"", b"x" * 300,
               b"0123456789abcdef-1", "é".encode()]
IDS = st.sampled_from(ID_ALPHABET)


def scan_of(ids: list[tuple[bytes, int, int]]) -> EntryScan:
    """An entry scan listing ``ids`` as (id, partition, offset), in that order."""
    payload, rows = bytearray(), array("q")
    for event_id, partition, offset in ids:
        rows.extend((partition, offset, len(payload), len(event_id)))
        payload += event_id
    return EntryScan(array("q"), rows, bytes(payload))


# One step of a history: remember an entry's ids at a time, then expire.
STEP = st.tuples(st.lists(st.tuples(IDS, st.integers(0, 3), st.integers(0, 2**40)), max_size=8),
                 st.integers(0, 40))


@PROPERTY
@given(window_ns=st.integers(0, 60), max_ids=st.integers(0, 6), steps=st.lists(STEP, max_size=12))
def test_the_native_window_is_the_oracles_after_every_step(window_ns, max_ids, steps):
    native, oracle = DedupTable(window_ns, max_ids), DedupWindow(window_ns, max_ids)
    now = 1_000
    for ids, advance in steps:
        now += advance
        native.remember(scan_of(ids), now)
        if oracle.enabled:
            for event_id, partition, offset in ids:
                oracle.remember(event_id, partition, offset, now)
        native.expire(now)
        oracle.expire(now)
        assert native.encode() == oracle.encode()
        assert len(native) == len(oracle)
        for event_id in ID_ALPHABET:
            for at in (now, now + window_ns, now + window_ns + 1):
                assert native.lookup(event_id, at) == oracle.lookup(event_id, at)


ITEM = st.tuples(IDS, st.integers(0, 2**32 - 1), st.integers(0, 2**63 - 1),
                 st.integers(-2**63, 2**63 - 1))


@PROPERTY
@given(items=st.lists(ITEM, max_size=10), cut=st.integers(0, 40), extra=st.binary(max_size=3))
def test_snapshots_restore_alike_or_are_refused_alike(items, cut, extra):
    """Ids twice keep their first place and last value; cut or padded bytes are refused."""
    data = struct.pack("<I", len(items)) + b"".join(
        struct.pack("<HIQq", len(i), p, o, t) + i for i, p, o, t in items)
    for candidate in (data, data[:max(0, len(data) - cut)], data + extra):
        native, oracle = DedupTable(10, 10), DedupWindow(10, 10)
        native.remember(scan_of([(b"before", 0, 1)]), 5)
        oracle.remember(b"before", 0, 1, 5)
        try:
            oracle.restore(candidate)
        except (ValueError, struct.error):
            with pytest.raises(MalformedInput, match="de-duplication window"):
                native.restore(candidate)
            assert native.encode() == oracle.encode()  # unchanged
            continue
        native.restore(candidate)
        assert native.encode() == oracle.encode()
        for event_id in ID_ALPHABET:
            assert native.lookup(event_id, 0) == oracle.lookup(event_id, 0)


ENCODER = EventEncoder(Limits(255, 1024, 1024, 255, 8), b"t-")


def accepted(ids: list[bytes]):
    request = publish_pb2.PublishBatchRequest(events=[
        common_pb2.Event(topic="t", payload=b"p", id=i.decode("utf-8", "replace")) for i in ids])
    return ENCODER.accept(request.SerializeToString(), 1).good_events()


def model_verdicts(ids, in_flight, window, now):
    """The sequencer's former per-id loop: (kind, value) per event."""
    first_row, out = {}, []
    for row, event_id in enumerate(ids):
        if not event_id:
            out.append(None)
            continue
        held = in_flight.get(event_id)
        hit = held if held is not None else window.lookup(event_id, now)
        if hit is not None:
            out.append(("stored", *hit))
        elif event_id in first_row:
            out.append(("event", first_row[event_id]))
        else:
            first_row[event_id] = row
            out.append(None)
    return out


def native_verdicts(check, n):
    raw = check.encoded()
    if raw is None:
        return [None] * n
    values = array("q", bytes(raw)[:24 * n])
    out = []
    for row in range(n):
        partition, offset, time_ns = values[3 * row:3 * row + 3]
        if partition == -1:
            out.append(None)
        elif partition < -1:
            out.append(("event", -2 - partition))
        else:
            out.append(("stored", partition, offset, time_ns))
    return out


SUBMISSION = st.lists(st.sampled_from(["a", "b", "c", "d", ""]), min_size=1, max_size=12)


@PROPERTY
@given(rounds=st.lists(st.lists(SUBMISSION, min_size=1, max_size=3), min_size=1, max_size=6),
       apply_lag=st.integers(0, 2), window_ns=st.integers(0, 30))
def test_verdicts_are_the_former_per_id_loops(rounds, apply_lag, window_ns):
    """check + hold per submission, promote and release per applied round, as the model does."""
    table, window = DedupTable(window_ns, 100), DedupWindow(window_ns, 100)
    in_flight: dict[bytes, tuple[int, int, int, int]] = {}
    offsets = iter(range(10**6))
    for index, submissions in enumerate(rounds, start=1):
        now = 100 + 10 * index
        for names in submissions:
            ids = [name.encode() for name in names]
            events = accepted(ids)
            expected = model_verdicts(ids, {k: v[:3] for k, v in in_flight.items()}, window, now)
            check = table.check(events, now)
            assert native_verdicts(check, len(ids)) == expected
            assert check.count == sum(v is not None for v in expected)
            positions = array("Q")
            for event_id, verdict in zip(ids, expected):
                position = (0, next(offsets))
                positions.extend(position)
                if event_id and verdict is None:
                    in_flight[event_id] = (*position, now, index)
            table.hold(events, check, _Placed(memoryview(positions)), now, index)
        assert table.in_flight == len(in_flight)
        applied = index - apply_lag
        if applied >= 1:
            table.promote(applied, 100 + 10 * applied)
            held = sorted((v[0], v[1], k) for k, v in in_flight.items() if v[3] == applied)
            for partition, offset, event_id in held:
                window.remember(event_id, partition, offset, 100 + 10 * applied)
                del in_flight[event_id]
            table.release(through=applied)
            table.expire(100 + 10 * applied)
            window.expire(100 + 10 * applied)
        assert table.encode() == window.encode()


class _Placed:
    """The one field of ``PlacedRecords`` that ``hold`` reads."""

    def __init__(self, positions: memoryview) -> None:
        self.positions = positions


def test_a_round_that_fails_leaves_nothing_in_flight():
    table = DedupTable(10, 10)
    events = accepted([b"a", b"b"])
    check = table.check(events, 0)
    table.hold(events, check, _Placed(memoryview(array("Q", [0, 1, 0, 2]))), 0, 1)
    assert table.in_flight == 2 and table.check(events, 0).count == 2
    table.release(since=1)
    assert table.in_flight == 0
    assert table.check(events, 0).count == 0


def test_ids_outside_their_buffer_or_too_long_are_refused():
    table = DedupTable(10, 10)
    outside = EntryScan(array("q"), array("q", [0, 1, 3, 4]), b"abcd")
    with pytest.raises(InvalidArgument):
        table.remember(outside, 0)
    too_long = EntryScan(array("q"), array("q", [0, 1, 0, 65536]), b"a" * 65536)
    with pytest.raises(InvalidArgument):
        table.remember(too_long, 0)
    negative = EntryScan(array("q"), array("q", [-1, 1, 0, 1]), b"a")
    with pytest.raises(InvalidArgument):
        table.remember(negative, 0)
    with pytest.raises(InvalidArgument):
        table.lookup(b"a" * 65536, 0)
    assert len(table) == 0
