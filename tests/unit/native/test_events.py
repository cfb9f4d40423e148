"""Accepting and placing publish requests: the C code agrees with the Python reference.

Hypothesis generates publish requests (valid events, events breaking each
limit, malformed and non-UTF-8 ones); both backends must accept, refuse and
place them identically, byte for byte. Real protobuf decoding pins the meaning.
"""

from __future__ import annotations

import struct
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstream.server.native import InvalidArgument, MalformedInput, NativeWire
from eventstream.server.native.events import (
    R_ID_LEN,
    R_ID_OFF,
    R_INDEX,
    R_REASON,
    ROW_BYTES,
    ROW_FIELDS,
    EventEncoder,
    Limits,
    RecordArena,
    Refusal,
)
from eventstream.v1 import common_pb2, publish_pb2, subscribe_pb2
from tests.support.oracles.events import PureEncoder

PROPERTY = settings(max_examples=250, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
LIMITS = Limits(max_topic=12, max_payload=16, max_id=8, max_key=8, max_headers=2, max_event=60)
PREFIX = b"0123456789abcdef-"


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _uint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


text = st.text(alphabet="ab/*#é", max_size=14)
# Header keys and values: UTF-8 or not; entries with odd fields, or a key twice.
header_text = st.sampled_from([b"h1", b"h2", b"", b"\xc3\xa9", b"\xff", b"\xc3"])
headers = st.lists(st.one_of(
    st.builds(lambda k, v: _field(1, k) + _field(2, v), header_text, header_text),
    st.sampled_from([_field(1, b"k"), _field(2, b"v") + _field(1, b"k"), _uint(1, 3),
                     _field(1, b"k") + _uint(3, 9), _field(1, b"k") + b"\x12\x05ab"]),
), max_size=3)
# Timestamps around the protobuf range, nanos as int32 (negative ones sign-extended).
seconds = st.sampled_from([0, 1_700_000_000, -62_135_596_800, -62_135_596_801, 253_402_300_799,
                           253_402_300_800, 1 << 62, -1, (1 << 64) - 1])
nanos = st.sampled_from([0, 999_999_999, 1_000_000_000, -1, 1 << 31, (1 << 32) + 5])
timestamp = st.builds(
    lambda s, n, wrong: (b"\x09" + bytes(8) if wrong else b"")
    + (b"" if s is None else _uint(1, s)) + (b"" if n is None else _uint(2, n)),
    st.one_of(st.none(), seconds), st.one_of(st.none(), nanos), st.booleans())
events = st.one_of(
    st.builds(
        lambda id_, topic, key, payload, priority, headers, stale, times: b"".join([
            _field(1, id_.encode()) if id_ else b"",
            _field(2, topic.encode()),
            _field(3, key.encode()) if key else b"",
            _field(4, payload),
            b"" if priority is None else b"\x28" + _varint(priority),
            *[_field(6, h) for h in headers],
            b"\x48\x05\x50\x09" if stale else b"",
            *[_field(number, t) for number, t in times],
        ]),
        st.one_of(st.just(""), st.sampled_from(["a", "b", "c"]), text),
        st.one_of(st.sampled_from(["a", "a/b", "c/d/e"]), text),
        st.one_of(st.just(""), text),
        st.binary(max_size=20),
        st.one_of(st.none(), st.integers(-2, 7)),
        st.one_of(st.lists(st.sampled_from([_field(1, b"h1") + _field(2, b"v"),
                                            _field(1, b"h2") + _field(2, b"v")]), max_size=3),
                  headers),
        st.booleans(),
        st.lists(st.tuples(st.sampled_from([7, 7, 8]), timestamp), max_size=2),
    ),
    st.binary(max_size=12),                             # malformed, mostly
    st.just(_field(2, b"\xff\xfe")),                    # topic not UTF-8
    st.just(_field(1, b"\xc3") + _field(2, b"a")),      # id not UTF-8
)
requests = st.lists(events, max_size=12).map(lambda evs: b"".join(_field(1, e) for e in evs))


def verdicts(accepted, count: int) -> bytes | None:
    """Within-call duplicate verdicts: a repeated id points at its first row."""
    rows = memoryview(accepted.rows).cast("I")
    first: dict[bytes, int] = {}
    out = array("q", [-1, 0, 0] * count)
    repeated = False
    for row in range(count):
        length = rows[row * ROW_FIELDS + R_ID_LEN]
        if not length:
            continue
        body, at = rows[row * ROW_FIELDS + 2], rows[row * ROW_FIELDS + 4]
        event_id = accepted.bodies[body + at:body + at + length]
        if event_id in first:
            out[3 * row] = -2 - first[event_id]
            repeated = True
        else:
            first[event_id] = row
    return out.tobytes() if repeated else None


def run(encoder, request: bytes, partitions: int):
    try:
        accepted = encoder.accept(request, 1)
    except MalformedInput:
        return "malformed"
    count = accepted.realtime + accepted.batch
    offsets = array("Q", range(100, 100 + partitions))
    placed = encoder.place(accepted.good_events(),
                          verdicts(accepted, count), offsets, time_ns=1_700_000_000_000_000_001,
                          durability=3, result_tag=0x12)
    return (accepted, placed.records, placed.ends.tolist(), placed.topics.tolist(),
            placed.priorities, list(placed.part_counts), placed.positions.tolist(), placed.results,
            offsets.tolist(), encoder.id_counter)


@PROPERTY
@given(requests, st.sampled_from([1, 3, 8]))
def test_native_and_pure_agree(request: bytes, partitions: int) -> None:
    assert run(EventEncoder(LIMITS, PREFIX), request, partitions) == \
        run(PureEncoder(LIMITS, PREFIX), request, partitions)


@PROPERTY
@given(requests)
def test_accepted_events_decode_as_sent_minus_server_fields(request: bytes) -> None:
    encoder = PureEncoder(LIMITS, PREFIX)
    try:
        accepted = encoder.accept(request, 1)
    except MalformedInput:
        return
    sent = publish_pb2.PublishBatchRequest.FromString(request) if not accepted.refused else None
    for row in range(accepted.realtime + accepted.batch):
        fields = struct.unpack_from("=10I", accepted.rows, row * ROW_BYTES)
        event = common_pb2.Event.FromString(accepted.bodies[fields[2]:fields[2] + fields[3]])
        # Whatever is accepted decodes, publish_time included, as a client decodes it.
        if event.HasField("publish_time"):
            event.publish_time.ToDatetime()
        assert event.priority == fields[9] + 1
        assert not event.offset and not event.partition
        if sent is not None:
            original = sent.events[fields[0]]
            assert (event.id, event.topic, event.payload) == (original.id, original.topic,
                                                              original.payload)


def test_refusals_name_each_limit(encoder_backend) -> None:
    cases = {
        Refusal.TOPIC_EMPTY: common_pb2.Event(topic="", payload=b"x"),
        Refusal.TOPIC_WILDCARD: common_pb2.Event(topic="a/#"),
        Refusal.TOPIC_EMPTY_LEVEL: common_pb2.Event(topic="a//b"),
        Refusal.TOPIC_TOO_LONG: common_pb2.Event(topic="t" * 13),
        Refusal.PAYLOAD_TOO_LARGE: common_pb2.Event(topic="t", payload=b"p" * 17),
        Refusal.ID_TOO_LONG: common_pb2.Event(topic="t", id="i" * 9),
        Refusal.KEY_TOO_LONG: common_pb2.Event(topic="t", key="k" * 9),
        Refusal.TOO_MANY_HEADERS: common_pb2.Event(topic="t", headers={"a": "", "b": "", "c": ""}),
        Refusal.TOO_LARGE: common_pb2.Event(topic="t", payload=b"p" * 16, headers={"a": "h" * 40}),
        Refusal.PUBLISH_TIME_OUT_OF_RANGE: common_pb2.Event(topic="t"),
    }
    cases[Refusal.PUBLISH_TIME_OUT_OF_RANGE].publish_time.seconds = 1 << 62
    request = publish_pb2.PublishBatchRequest(events=list(cases.values())).SerializeToString()
    request += _field(1, _field(2, b"t") + b"\x28\x07")          # unknown priority
    request += _field(1, _field(2, b"t") + _field(6, _field(1, b"k") + _field(2, b"\xff")))
    accepted = encoder_backend.accept(request, 1)
    reasons = memoryview(accepted.rows).cast("I")[R_REASON::ROW_FIELDS].tolist()
    assert reasons == [*cases, Refusal.PRIORITY_UNKNOWN, Refusal.HEADER_NOT_UTF8]
    assert accepted.refused == len(cases) + 2


def test_placed_records_decode_with_server_fields(encoder_backend) -> None:
    events = [common_pb2.Event(topic="a/b", payload=b"one", key="k", priority=common_pb2.PRIORITY_HIGH),
              common_pb2.Event(topic="a/c", payload=b"two", id="given")]
    request = publish_pb2.PublishBatchRequest(events=events).SerializeToString()
    accepted = encoder_backend.accept(request, 1)
    offsets = array("Q", [40, 50])
    placed = encoder_backend.place(accepted.good_events(), None, offsets,
                                  time_ns=5_000_000_007, durability=3, result_tag=0x0a)
    delivered = subscribe_pb2.SubscribeResponse.FromString(placed.records).events
    for partition in (0, 1):  # each partition's offsets continue from its next offset
        got = [e.offset for e in delivered if e.partition == partition]
        assert got == list(range(40 + 10 * partition, 40 + 10 * partition + len(got)))
    assert offsets.tolist() == [40 + placed.part_counts[0], 50 + placed.part_counts[1]]
    assert all(e.ingest_time.ToNanoseconds() == 5_000_000_007 for e in delivered)
    by_topic = {e.topic: e for e in delivered}
    assert by_topic["a/c"].id == "given" and by_topic["a/b"].id == PREFIX.decode() + "1"
    results = publish_pb2.PublishBatchResponse.FromString(placed.results).results
    # Rows: the HIGH event first (realtime), then the MEDIUM one.
    assert [r.ack.id for r in results] == [by_topic["a/b"].id, "given"]
    assert all(r.ack.durability == common_pb2.DURABILITY_FSYNCED for r in results)


@pytest.fixture(params=["native", "pure"])
def encoder_backend(request):
    if request.param == "native":
        return EventEncoder(LIMITS, PREFIX)
    return PureEncoder(LIMITS, PREFIX)


# -- raw TCP/UDP frames -------------------------------------------------------

def _frame(priority: int, topic: bytes, payload: bytes, extra: int = 0) -> bytes:
    body = struct.pack(">BH", priority, len(topic)) + topic + payload
    return struct.pack(">I", len(body) + extra) + body


frame_streams = st.lists(st.one_of(
    st.builds(_frame, st.integers(0, 6), st.sampled_from([b"a/b", b"", b"a/#", b"a//b", b"\xff",
                                                          b"t" * 13, b"s/1"]),
              st.binary(max_size=20)),
    st.builds(_frame, st.integers(0, 4), st.just(b"a"), st.just(b""), st.integers(-3, 3)),
    st.binary(max_size=6),
), max_size=10).map(b"".join)


def run_frames(encoder, data: bytes, final: bool):
    accepted, consumed, fatal = encoder.accept_frames(data, max_frame=40, final=final)
    offsets = array("Q", [0, 0, 0])
    placed = encoder.place(accepted.good_events(), None, offsets,
                          time_ns=1, durability=2, result_tag=0)
    return accepted, consumed, fatal, placed.records, placed.results, offsets.tolist()


@PROPERTY
@given(frame_streams, st.booleans())
def test_frames_native_and_pure_agree(data: bytes, final: bool) -> None:
    assert run_frames(EventEncoder(LIMITS, PREFIX), data, final) == \
        run_frames(PureEncoder(LIMITS, PREFIX), data, final)


def test_frames_become_events(encoder_backend) -> None:
    data = (_frame(3, b"sensors/a", b"hot") + _frame(0, b"", b"x") + _frame(1, b"s/b", b"")
            + _frame(2, b"s/c", b"p" * 17) + _frame(0, b"s/d", b"cut")[:-1])
    accepted, consumed, fatal = encoder_backend.accept_frames(data, max_frame=1024)
    assert (accepted.realtime, accepted.batch, accepted.refused) == (1, 1, 2)
    assert consumed == len(data) - len(_frame(0, b"s/d", b"cut")[:-1]) and fatal == 0
    reasons = memoryview(accepted.rows).cast("I")[R_REASON::ROW_FIELDS].tolist()
    assert reasons == [0, 0, 64 + 5, Refusal.PAYLOAD_TOO_LARGE]  # 5: FrameReason.TOPIC_EMPTY
    offsets = array("Q", [0])
    placed = encoder_backend.place(accepted.good_events(), None, offsets,
                                  time_ns=1, durability=2, result_tag=0x0a)
    delivered = subscribe_pb2.SubscribeResponse.FromString(placed.records).events
    assert [(e.topic, e.payload, e.priority, e.offset) for e in delivered] == [
        ("sensors/a", b"hot", common_pb2.PRIORITY_HIGH, 0), ("s/b", b"", common_pb2.PRIORITY_LOW, 1)]
    _, _, fatal = encoder_backend.accept_frames(data, max_frame=1024, final=True)
    assert fatal == 1  # FrameReason.TRUNCATED


# -- batches of datagrams (the UDP receive queue) ------------------------------

datagram_batches = st.lists(frame_streams, max_size=6).map(
    lambda datagrams: b"".join(struct.pack(">I", len(d)) + d for d in datagrams))


@PROPERTY
@given(datagram_batches)
def test_datagrams_native_and_pure_agree(batch: bytes) -> None:
    assert EventEncoder(LIMITS, PREFIX).accept_datagrams(batch, max_frame=40) == \
        PureEncoder(LIMITS, PREFIX).accept_datagrams(batch, max_frame=40)


def test_datagrams_are_accepted_whole_or_not_at_all(encoder_backend) -> None:
    good = _frame(3, b"s/a", b"1") + _frame(0, b"s/b", b"2")
    bad = _frame(0, b"s/c", b"3") + _frame(0, b"s/\xff", b"4") + _frame(0, b"s/d", b"5")
    cut = _frame(0, b"s/e", b"6")[:-1]
    datagrams = [good, bad, cut, b"", _frame(1, b"s/f", b"7")]
    batch = b"".join(struct.pack(">I", len(d)) + d for d in datagrams)
    accepted = encoder_backend.accept_datagrams(batch, max_frame=1024)
    assert (accepted.realtime, accepted.batch, accepted.refused) == (1, 2, 2)
    rows = memoryview(accepted.rows).cast("I")
    indexes = rows[R_INDEX::ROW_FIELDS].tolist()
    reasons = rows[R_REASON::ROW_FIELDS].tolist()
    assert indexes == [0, 0, 4, 1, 2]
    assert reasons == [0, 0, 0, 64 + 6, 64 + 1]  # TOPIC_NOT_UTF8, TRUNCATED
    assert rows[3 * ROW_FIELDS + R_ID_OFF] == 1  # s/c went with its datagram
    offsets = array("Q", [0])
    placed = encoder_backend.place(accepted.good_events(), None, offsets,
                                  time_ns=1, durability=2, result_tag=0)
    delivered = subscribe_pb2.SubscribeResponse.FromString(placed.records).events
    assert [(e.topic, e.payload) for e in delivered] == [("s/a", b"1"), ("s/b", b"2"), ("s/f", b"7")]
    with pytest.raises(MalformedInput):
        encoder_backend.accept_datagrams(batch[:-1], max_frame=1024)


# -- sealed records: placed as the entry stores them ---------------------------

def entry_of(requests_: list[bytes], partitions: int, arena: RecordArena | None) -> bytes | None:
    """The EVENTS entry of one round of ``requests_``, placed plain or sealed into ``arena``."""
    encoder, wire = EventEncoder(LIMITS, PREFIX), NativeWire()
    offsets = array("Q", range(7, 7 + partitions))
    first = array("Q", offsets)
    if arena is not None:
        arena.reset()
    placed = []
    for request in requests_:
        try:
            accepted = encoder.accept(request, 1)
        except MalformedInput:
            continue
        placed.append(encoder.place(accepted.good_events(), verdicts(accepted, accepted.good),
                                    offsets, time_ns=1_700_000_000_000_000_001, durability=3,
                                    result_tag=0x0a, into=arena))
    if not placed:
        return None
    entry, _ = wire.entry_encode(placed, partitions=partitions, index=9, term=2,
                                 time_ns=1_700_000_000_000_000_001, next_offsets=first)
    assert first == offsets  # the entry's offsets are the ones placed
    return entry


@PROPERTY
@given(st.lists(requests, min_size=1, max_size=4), st.sampled_from([1, 3, 8]))
def test_sealed_records_make_the_entry_the_plain_records_make(requests_: list[bytes],
                                                              partitions: int) -> None:
    # A tiny arena: submissions spill into further blocks, and it is reused.
    arena = RecordArena(chunk_bytes=64, keep_bytes=128)
    sealed = entry_of(requests_, partitions, arena)
    assert sealed == entry_of(requests_, partitions, None)
    assert entry_of(requests_, partitions, arena) == sealed


def test_sealed_records_with_other_offsets_are_refused() -> None:
    encoder, wire = EventEncoder(LIMITS, PREFIX), NativeWire()
    request = publish_pb2.PublishBatchRequest(events=[
        common_pb2.Event(topic="a/b", payload=b"x")]).SerializeToString()
    offsets = array("Q", [5])
    placed = encoder.place(encoder.accept(request, 1).good_events(), None, offsets, time_ns=3,
                           durability=3, result_tag=0x0a, into=RecordArena())
    with pytest.raises(InvalidArgument):
        wire.entry_encode([placed], partitions=1, index=1, term=1, time_ns=3,
                          next_offsets=array("Q", [6]))
    with pytest.raises(InvalidArgument):
        wire.entry_encode([placed], partitions=1, index=1, term=1, time_ns=4,
                          next_offsets=array("Q", [5]))
