"""Wire helpers: the C code agrees with the plain-Python reference.

Hypothesis generates frame streams, topics, patterns and protobuf bytes; the
native and pure backends must return identical tables and raise the same
exceptions. Known vectors and real protobuf encodings pin the meaning.
"""

from __future__ import annotations

import struct
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstream.server.native import (
    FrameReason,
    InvalidPattern,
    MalformedInput,
    NativeError,
    NativeWire,
    NotUtf8,
)
from eventstream.server.native.wire import EVENT_FIELDS, F_REASON, FRAME_FIELDS
from eventstream.v1 import common_pb2, publish_pb2
from tests.support.oracles.segment import decode
from tests.support.oracles.wire import PureWire

PROPERTY = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def frame(priority: int, topic: bytes, payload: bytes, extra: int = 0) -> bytes:
    body = struct.pack(">BH", priority, len(topic)) + topic + payload
    return struct.pack(">I", len(body) + extra) + body


# -- frames ------------------------------------------------------------------

def test_good_frames(wire: NativeWire | PureWire) -> None:
    data = frame(3, b"sensors/a", b"hello") + frame(0, b"b", b"")
    batch = wire.parse_frames(data, max_frame=1024)
    assert (batch.count, batch.consumed, batch.fatal) == (2, len(data), None)
    first = batch.row(0)
    assert (first.reason, first.priority, first.topic_len, first.payload_len) == (FrameReason.OK, 3, 9, 5)
    assert data[first.payload_off:first.payload_off + first.payload_len] == b"hello"
    assert first.hash == wire.crc32c(b"sensors/a")
    assert list(batch.table[F_REASON::FRAME_FIELDS]) == [0, 0]


@pytest.mark.parametrize(("priority", "topic", "reason"), [
    (5, b"a", FrameReason.BAD_PRIORITY),
    (2, b"", FrameReason.TOPIC_EMPTY),
    (2, b"a\xff", FrameReason.TOPIC_NOT_UTF8),
    (2, b"a/*", FrameReason.TOPIC_WILDCARD),
    (2, b"#", FrameReason.TOPIC_WILDCARD),
    (2, b"a//b", FrameReason.TOPIC_EMPTY_LEVEL),
    (2, b"/a", FrameReason.TOPIC_EMPTY_LEVEL),
])
def test_each_rejection_has_its_reason(wire: NativeWire | PureWire, priority: int, topic: bytes,
                                       reason: FrameReason) -> None:
    data = frame(priority, topic, b"p") + frame(1, b"ok", b"")
    batch = wire.parse_frames(data, max_frame=1024)
    assert [batch.row(0).reason, batch.row(1).reason] == [reason, FrameReason.OK]
    assert not reason.fatal and batch.consumed == len(data)


def test_stream_keeps_the_incomplete_tail(wire: NativeWire | PureWire) -> None:
    data = frame(1, b"t", b"abc") + frame(1, b"t", b"defgh")
    first = len(frame(1, b"t", b"abc"))
    for cut in range(len(data)):
        batch = wire.parse_frames(data[:cut], max_frame=1024)
        assert batch.consumed == (first if cut >= first else 0)
        assert batch.fatal is None


def test_datagram_tail_is_truncated(wire: NativeWire | PureWire) -> None:
    data = frame(1, b"t", b"abc")
    batch = wire.parse_frames(data + data[:6], max_frame=1024, final=True)
    assert batch.fatal is FrameReason.TRUNCATED
    assert batch.consumed == len(data)


def test_too_long_and_bad_length(wire: NativeWire | PureWire) -> None:
    batch = wire.parse_frames(b"\x00\x00\x10\x00", max_frame=100)
    assert batch.fatal is FrameReason.TOO_LONG and batch.consumed == 0
    assert batch.row(0).length == 0x1004
    batch = wire.parse_frames(b"\x00\x00\x00\x02\x01\x00" + frame(1, b"t", b"", extra=0), max_frame=100)
    assert batch.row(0).reason is FrameReason.BAD_LENGTH and batch.row(1).reason is FrameReason.OK
    overrun = struct.pack(">IBH", 4, 1, 9) + b"a"
    assert wire.parse_frames(overrun, max_frame=100).row(0).reason is FrameReason.BAD_LENGTH


_levels = st.sampled_from([b"a", b"b", b"ab", b"", b"*", b"#", b"x*", b"\xff", "é".encode(),
                           b"\xed\xa0\x80", b"\xf0\x9f\x98\x80", b"\xc0\xaf"])
_topics = st.one_of(st.lists(_levels, max_size=4).map(b"/".join), st.binary(max_size=12))
_frames = st.lists(
    st.tuples(st.integers(0, 7) | st.just(255), _topics, st.binary(max_size=20), st.integers(-4, 3)),
    max_size=6,
)


@PROPERTY
@given(parts=_frames, tail=st.binary(max_size=12), max_frame=st.integers(0, 64), final=st.booleans(),
       max_frames=st.none() | st.integers(1, 4))
def test_frame_parser_agrees_with_reference(native_wire: NativeWire, pure_wire: PureWire,
                                            parts: list[tuple], tail: bytes, max_frame: int,
                                            final: bool, max_frames: int | None) -> None:
    data = b"".join(frame(p, t, pl, max(extra, -len(t) - len(pl) - 3)) for p, t, pl, extra in parts) + tail
    native = native_wire.parse_frames(data, max_frame=max_frame, final=final, max_frames=max_frames)
    pure = pure_wire.parse_frames(data, max_frame=max_frame, final=final, max_frames=max_frames)
    assert (native.count, native.consumed) == (pure.count, pure.consumed)
    assert native.table.tolist() == pure.table.tolist()


@PROPERTY
@given(data=st.binary(max_size=80), final=st.booleans())
def test_frame_parser_agrees_on_random_bytes(native_wire: NativeWire, pure_wire: PureWire,
                                             data: bytes, final: bool) -> None:
    native = native_wire.parse_frames(data, max_frame=1 << 20, final=final)
    pure = pure_wire.parse_frames(data, max_frame=1 << 20, final=final)
    assert (native.count, native.consumed, native.table.tolist()) == \
        (pure.count, pure.consumed, pure.table.tolist())


# -- topics and patterns -------------------------------------------------------

@pytest.mark.parametrize(("pattern", "topic", "expected"), [
    ("sensors/*", "sensors/a", True),
    ("sensors/*", "sensors/b/c", False),
    ("sensors/#", "sensors/a", True),
    ("sensors/#", "sensors/b/c", True),
    ("orders/#", "orders", True),
    ("orders/#", "ordersX", False),
    ("#", "anything/at/all", True),
    ("a/*/c", "a/b/c", True),
    ("a/b", "a/b/c", False),
])
def test_pattern_examples(wire: NativeWire | PureWire, pattern: str, topic: str, expected: bool) -> None:
    assert wire.topic_match(pattern, topic) is expected


@pytest.mark.parametrize("pattern", ["", "a//b", "a/", "#/a", "a#", "a*/b"])
def test_invalid_patterns(wire: NativeWire | PureWire, pattern: str) -> None:
    with pytest.raises(InvalidPattern):
        wire.topic_match(pattern, "a")


_pattern_levels = st.sampled_from([b"a", b"b", b"*", b"#", b"", b"a#", b"*b", b"\xff"])


@PROPERTY
@given(pattern=st.lists(_pattern_levels, min_size=0, max_size=4).map(b"/".join), topic=_topics)
def test_pattern_matcher_agrees_with_reference(native_wire: NativeWire, pure_wire: PureWire,
                                               pattern: bytes, topic: bytes) -> None:
    def outcome(wire: NativeWire | PureWire) -> object:
        try:
            return wire.topic_match(pattern, topic)
        except InvalidPattern:
            return "invalid"

    assert outcome(native_wire) == outcome(pure_wire)


@PROPERTY
@given(topic=st.binary(max_size=16) | st.text(max_size=8).map(str.encode) | _topics)
def test_topic_check_agrees_with_reference(native_wire: NativeWire, pure_wire: PureWire,
                                           topic: bytes) -> None:
    assert native_wire.topic_check(topic) == pure_wire.topic_check(topic)


def test_match_batch(wire: NativeWire | PureWire) -> None:
    data = b"sensors/asensors/b/cother"
    spans = struct.pack("=6I", 0, 9, 9, 11, 20, 5)
    assert wire.topic_match_batch("sensors/*", data, spans) == b"\x01\x00\x00"
    assert wire.topic_match_batch("#", data, spans) == b"\x01\x01\x01"
    with pytest.raises(InvalidPattern):
        wire.topic_match_batch("a//", data, spans)


# -- CRC32C and hashing --------------------------------------------------------

@pytest.mark.parametrize(("data", "crc"), [
    (b"123456789", 0xE3069283),
    (b"", 0),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
])
def test_crc32c_vectors(wire: NativeWire | PureWire, data: bytes, crc: int) -> None:
    assert wire.crc32c(data) == crc
    assert wire.crc32c(data[5:], wire.crc32c(data[:5])) == crc


@PROPERTY
@given(data=st.binary(max_size=300), key=st.binary(max_size=8), topic=st.binary(max_size=8))
def test_crc32c_and_hash_agree(native_wire: NativeWire, pure_wire: PureWire, data: bytes, key: bytes,
                               topic: bytes) -> None:
    assert native_wire.crc32c(data) == pure_wire.crc32c(data)
    assert native_wire.hash(key, topic) == pure_wire.hash(key, topic) == \
        pure_wire.crc32c(key if key else topic)


def _records(bodies: list[bytes]) -> bytearray:
    """Length-prefixed records with zero CRC fields (the durable log's layout)."""
    return bytearray(b"".join(struct.pack("<II", len(b) + 4, 0) + b for b in bodies))


@PROPERTY
@given(bodies=st.lists(st.binary(max_size=60), max_size=12), cut=st.integers(0, 900),
       flip=st.integers(0, 900))
def test_crc32c_records_fill_check_and_stop_like_the_reference(
        native_wire: NativeWire, pure_wire: PureWire, bodies: list[bytes], cut: int,
        flip: int) -> None:
    native, pure = _records(bodies), _records(bodies)
    assert native_wire.crc32c_records(native, min_len=4, fill=True) == \
        pure_wire.crc32c_records(pure, min_len=4, fill=True) == (True, len(native))
    assert native == pure
    position = 0
    for body in bodies:  # each CRC field holds the CRC32C of its body
        assert struct.unpack_from("<I", native, position + 4)[0] == pure_wire.crc32c(body)
        position += 8 + len(body)
    damaged = bytearray(native[:cut])
    if damaged:
        damaged[flip % len(damaged)] ^= 0x10
    for data in (bytes(native[:cut]), bytes(damaged)):
        assert native_wire.crc32c_records(data, min_len=4) == \
            pure_wire.crc32c_records(data, min_len=4)
        assert native_wire.crc32c_records(data, min_len=8) == \
            pure_wire.crc32c_records(data, min_len=8)


def test_crc32c_records_refuses_a_bad_min_len(wire: NativeWire | PureWire) -> None:
    with pytest.raises(NativeError):
        wire.crc32c_records(b"", min_len=3)


# -- protobuf walking -----------------------------------------------------------

def _event(i: int, key: str = "") -> common_pb2.Event:
    ev = common_pb2.Event(id=f"id-{i}", topic=f"sensors/{i}", key=key, payload=b"p" * i,
                          priority=i % 6, partition=i, offset=10**12 + i)
    ev.headers["h"] = "v"
    ev.publish_time.seconds = 1_700_000_000
    return ev


def test_event_spans_match_protobuf(wire: NativeWire | PureWire) -> None:
    request = publish_pb2.PublishBatchRequest(events=[_event(i, key="k" if i % 2 else "") for i in range(5)])
    data = request.SerializeToString()
    batch = wire.pb_events(data)
    assert batch.count == 5 and len(batch.table) == 5 * EVENT_FIELDS
    for i, ev in enumerate(request.events):
        spans = batch.event(i)
        assert data[spans.id_off:spans.id_off + spans.id_len].decode() == ev.id
        assert data[spans.topic_off:spans.topic_off + spans.topic_len].decode() == ev.topic
        assert data[spans.key_off:spans.key_off + spans.key_len].decode() == ev.key
        assert data[spans.payload_off:spans.payload_off + spans.payload_len] == ev.payload
        assert spans.priority == batch.priority(i) == ev.priority
        assert spans.hash == wire.hash(ev.key, ev.topic)
        one = common_pb2.Event.FromString(data[spans.event_off:spans.event_off + spans.event_len])
        assert one == ev
    pairs = wire.pb_fields(data, 1).tolist()
    assert pairs[0::2] == [batch.event(i).event_off for i in range(5)]
    single = wire.pb_event(_event(3).SerializeToString())
    assert single.priority == 3 and single.event_off == 0
    negative = common_pb2.Event(topic="t")
    negative_bytes = negative.SerializeToString() + b"\x28" + b"\xff" * 9 + b"\x01"  # priority = -1
    assert wire.pb_event(negative_bytes).priority == -1


def test_malformed_protobuf(wire: NativeWire | PureWire) -> None:
    good = _event(1).SerializeToString()
    with pytest.raises(MalformedInput):
        wire.pb_fields(good[:-1], 1)
    with pytest.raises(MalformedInput):
        wire.pb_event(b"\x10\x01")  # topic as a varint
    with pytest.raises(NotUtf8) as not_utf8:
        wire.pb_events(b"\x0a" + bytes([len(good)]) + good + b"\x0a\x03\x12\x01\xff")
    assert not_utf8.value.index == 1
    with pytest.raises(MalformedInput):
        wire.pb_fields(b"\x0b", 1)  # group wire type


@PROPERTY
@given(data=st.binary(max_size=60) | st.lists(st.integers(0, 4), max_size=4).map(
    lambda idx: publish_pb2.PublishBatchRequest(events=[_event(i) for i in idx]).SerializeToString()),
    flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3))
def test_protobuf_walker_agrees_with_reference(native_wire: NativeWire, pure_wire: PureWire,
                                               data: bytes, flips: list[tuple[int, int]]) -> None:
    mutated = bytearray(data)
    for pos, value in flips:
        if mutated:
            mutated[pos % len(mutated)] = value
    raw = bytes(mutated)

    def outcome(call) -> object:
        try:
            result = call(raw)
        except NativeError as exc:
            return type(exc).__name__, getattr(exc, "index", None)
        if hasattr(result, "table"):
            return result.count, result.table.tolist()
        return result.tolist() if hasattr(result, "tolist") else result

    assert outcome(native_wire.pb_events) == outcome(pure_wire.pb_events)
    assert outcome(lambda b: native_wire.pb_fields(b, 1)) == outcome(lambda b: pure_wire.pb_fields(b, 1))
    assert outcome(native_wire.pb_event) == outcome(pure_wire.pb_event)


# -- segment records -----------------------------------------------------------

@PROPERTY
@given(items=st.lists(st.tuples(st.text(max_size=6).map(str.encode), st.binary(max_size=40),
                                st.integers(0, 4)),
                      min_size=1, max_size=30),
       lead=st.binary(max_size=5), first=st.integers(0, 40), position=st.integers(0, 600),
       roll_at=st.integers(0, 1200), interval=st.integers(0, 300), sample_at=st.integers(0, 700))
def test_segment_encoder_agrees_with_reference(native_wire: NativeWire, pure_wire: PureWire,
                                               items, lead, first, position, roll_at, interval,
                                               sample_at) -> None:
    """Records whose topics lie inside them (as placed), after some leading bytes."""
    data, ends, topics = bytearray(lead), array("I"), array("I")
    for topic, body, _ in items:
        topics.extend((len(data) + 1, len(topic)))
        data += b"#" + topic + body
        ends.append(len(data))
    data = bytes(data)
    priorities = bytes(p for _, _, p in items)
    base = 1000
    first = first % len(items)

    def run(wire: NativeWire | PureWire) -> tuple[bytes, tuple]:
        out = bytearray(b"old")
        progress = wire.segment_encode(
            out, data, len(lead), ends, data, topics, priorities, first, time_ns=-7, base=base,
            next_offset=base + 3, position=position, last_position=0, sample_at=sample_at,
            roll_at=roll_at, interval=interval)
        return bytes(out), (*progress[:4], progress.index_entries.tolist())

    native, pure = run(native_wire), run(pure_wire)
    assert native == pure
    out, (done, next_offset, end, _, index) = native
    assert next_offset - base - 3 == done - first and end - position == len(out) - 3
    decoded, problem = decode(out[3:], position, pure_wire)
    assert problem is None
    assert decoded.offsets == list(range(base + 3, next_offset))
    assert decoded.records == [data[ends[i - 1] if i else len(lead):ends[i]]
                               for i in range(first, done)]
    assert decoded.topics == [items[i][0].decode() for i in range(first, done)]
    assert bytes(decoded.priorities) == priorities[first:done]
    assert done == len(items) or end >= roll_at
    expected, at = [], sample_at  # a record starting `interval` bytes past the last entry
    for offset, at_position in zip(decoded.offsets, decoded.positions):
        if at_position >= at:
            expected += [offset - base, at_position]
            at = at_position + interval
    assert index == expected


def test_segment_encoder_refuses_spans_out_of_bounds(wire: NativeWire | PureWire) -> None:
    with pytest.raises(NativeError):
        wire.segment_encode(bytearray(), b"abc", 0, array("I", [3]), b"t", array("I", [0, 2]),
                            b"\x00", 0, time_ns=0, base=0, next_offset=0, position=0,
                            last_position=0, sample_at=0, roll_at=100, interval=10)
