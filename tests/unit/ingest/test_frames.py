"""Frame decoding and the TCP protocol's messages, with the native encoder and its reference."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstream.client.frames import FrameError, TcpFrameSender, encode_frame
from eventstream.server.broker.topics import topic_problem
from eventstream.server.config.model import LimitsConfig
from eventstream.server.ingest import messages
from eventstream.server.ingest.frames import FrameDecoder
from eventstream.server.native import EventEncoder
from eventstream.server.native.events import R_INDEX, ROW_BYTES, ROW_FIELDS
from eventstream.server.rpc.convert import EventValidator
from eventstream.v1 import common_pb2
from tests.support.oracles.events import PureEncoder

LIMITS = LimitsConfig(max_topic_bytes=16, max_message_bytes=64)
BACKENDS = [pytest.param(False, id="pure"), pytest.param(True, id="native")]


def make_decoder(native: bool, limits: LimitsConfig = LIMITS) -> FrameDecoder:
    encoder = (EventEncoder if native else PureEncoder)(EventValidator(limits).encoder_limits(), b"t-")
    return FrameDecoder(encoder, limits, max_frame=256)


@pytest.fixture(params=BACKENDS)
def decoder(request) -> FrameDecoder:
    return make_decoder(request.param)


def events_of(accepted, first: int, count: int) -> list[common_pb2.Event]:
    rows = memoryview(accepted.rows).cast("I")
    out = []
    for row in range(first, first + count):
        off, length = rows[row * ROW_FIELDS + 2], rows[row * ROW_FIELDS + 3]
        out.append(common_pb2.Event.FromString(accepted.bodies[off:off + length]))
    return out


def test_good_frames_become_encoded_events_by_lane(decoder):
    data = (encode_frame("a/b", b"one", 0) + encode_frame("c", b"", 4)
            + encode_frame("a/b", b"three", 2) + encode_frame("d/e", b"four", 3))
    decoded = decoder.decode(data, final=True)
    accepted = decoded.accepted
    assert decoded.rejection is None
    assert (decoded.count, decoded.consumed) == (4, len(data))
    assert (accepted.realtime, accepted.batch) == (2, 2)
    # Realtime rows first, then batch rows; each row remembers its frame's position.
    assert memoryview(accepted.rows).cast("I")[R_INDEX::ROW_FIELDS].tolist() == [1, 3, 0, 2]
    realtime, batch = events_of(accepted, 0, 2), events_of(accepted, 2, 2)
    assert [(e.topic, e.payload, e.priority) for e in batch] == [
        ("a/b", b"one", common_pb2.PRIORITY_BATCH), ("a/b", b"three", common_pb2.PRIORITY_MEDIUM)]
    assert [(e.topic, e.payload, e.priority) for e in realtime] == [
        ("c", b"", common_pb2.PRIORITY_CRITICAL), ("d/e", b"four", common_pb2.PRIORITY_HIGH)]
    assert len(accepted.rows) == 4 * ROW_BYTES


def test_a_stream_keeps_an_incomplete_tail_for_the_next_read(decoder):
    first, second = encode_frame("a", b"1"), encode_frame("b", b"2")
    decoded = decoder.decode(first + second[:5], final=False)
    assert (decoded.count, decoded.consumed, decoded.rejection) == (1, len(first), None)
    decoded = decoder.decode(first + second[:5], final=True)
    assert decoded.count == 1 and decoded.rejection.reason == "FRAME_TRUNCATED"


@pytest.mark.parametrize(("reason", "bad"), [
    ("FRAME_TOO_LONG", struct.pack(">I", 257) + b"\x02\x00\x01a" + b"x" * 253),
    ("FRAME_BAD_LENGTH", struct.pack(">IBH", 3, 2, 1)),
    ("PRIORITY_UNKNOWN", encode_frame("a", b"")[:4] + b"\x05" + encode_frame("a", b"")[5:]),
    ("TOPIC_EMPTY", encode_frame("", b"x")),
    ("TOPIC_NOT_UTF8", encode_frame(b"\xc3\x28", b"x")),
    ("TOPIC_WILDCARD", encode_frame("a/*", b"x")),
    ("TOPIC_EMPTY_LEVEL", encode_frame("a//b", b"x")),
    ("TOPIC_TOO_LONG", encode_frame("t" * 17, b"x")),
    ("PAYLOAD_TOO_LARGE", encode_frame("a", b"x" * 65)),
])
def test_the_first_bad_frame_is_reported_and_ends_decoding(decoder, reason, bad):
    good = encode_frame("ok", b"1")
    decoded = decoder.decode(good + bad + good, final=True)
    assert decoded.rejection is not None
    assert (decoded.rejection.reason, decoded.rejection.index) == (reason, 1)
    assert (decoded.count, decoded.consumed) == (1, len(good))


@given(st.text(alphabet="ab/*#é", max_size=8))
def test_frame_topic_rules_agree_with_the_broker(topic):
    decoded = make_decoder(False, LimitsConfig()).decode(encode_frame(topic, b"x"), final=True)
    problem = topic_problem(topic, 255)
    assert (decoded.rejection.reason if decoded.rejection else None) == (
        problem[0] if problem else None)


def test_server_messages_are_what_the_sdk_reads():
    ack = messages.encode_ack(5, [1, 10, 2, 2**33])
    assert ack[4] == messages.KIND_ACK
    assert struct.unpack_from(">QII", ack, 5) == (5, 2, 1) and len(ack) == 4 + 1 + 12 + 24
    error = messages.encode_error(3, "TOPIC_EMPTY", "batch 3 frame 0: topic must not be empty")
    with pytest.raises(FrameError) as caught:
        TcpFrameSender._raise_if_error(error[4:])
    assert (caught.value.reason, caught.value.position) == ("TOPIC_EMPTY", 3)
    assert caught.value.message == "batch 3 frame 0: topic must not be empty"
    # The handshake can never be read as an allowed frame length.
    assert struct.unpack(">I", messages.HANDSHAKE_ACKED)[0] > 2**30
