"""Decoding of raw TCP/UDP frames into the broker's event tuples.

Pure: no I/O. The native parser walks a whole buffer of frames in one call
and checks lengths, the priority byte and the topic rules of
:mod:`..broker.topics` (empty, UTF-8, wildcards, empty levels); this module
adds the configured limits (topic and payload length), turns each good frame
into the tuple the broker takes (id, topic, key, priority byte, encoded
``eventstream.v1.Event``) and reports the first bad frame, if any.

Frame (big-endian): ``u32 length`` (of what follows) · ``u8 priority`` (0
BATCH .. 4 CRITICAL) · ``u16 topic_len`` · topic · payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..broker import priority as priorities
from ..broker.priority import Lane
from ..broker.wire import varint
from ..config.model import LimitsConfig
from ..queue import FRAME_FIELDS, FrameReason, NativeWire, PureWire

EventTuple = tuple[str, str, str, int, bytes]

# The stable reason (errors.py, metric label, error message) of each parser code.
REASONS: dict[FrameReason, str] = {
    FrameReason.TRUNCATED: "FRAME_TRUNCATED",
    FrameReason.TOO_LONG: "FRAME_TOO_LONG",
    FrameReason.BAD_LENGTH: "FRAME_BAD_LENGTH",
    FrameReason.BAD_PRIORITY: "PRIORITY_UNKNOWN",
    FrameReason.TOPIC_EMPTY: "TOPIC_EMPTY",
    FrameReason.TOPIC_NOT_UTF8: "TOPIC_NOT_UTF8",
    FrameReason.TOPIC_WILDCARD: "TOPIC_WILDCARD",
    FrameReason.TOPIC_EMPTY_LEVEL: "TOPIC_EMPTY_LEVEL",
}

_PROBLEMS: dict[FrameReason, str] = {
    FrameReason.TRUNCATED: "the data ends inside a frame",
    FrameReason.TOO_LONG: "declared length {length} is over the limit of {limit} bytes",
    FrameReason.BAD_LENGTH: "declared length {length} cannot hold the priority, "
                            "topic length and topic",
    FrameReason.BAD_PRIORITY: "unknown priority byte; use 0 (BATCH) .. 4 (CRITICAL)",
    FrameReason.TOPIC_EMPTY: "topic must not be empty",
    FrameReason.TOPIC_NOT_UTF8: "topic is not valid UTF-8",
    FrameReason.TOPIC_WILDCARD: "wildcards ('*', '#') are for subscriptions only",
    FrameReason.TOPIC_EMPTY_LEVEL: "topic levels must not be empty",
}

# Field tags of eventstream.v1.Event (common.proto) written for each frame.
_TOPIC_TAG = b"\x12"     # 2 topic
_PAYLOAD_TAG = b"\x22"   # 4 payload
_PRIORITY_TAG = b"\x28"  # 5 priority
# The encoded priority field of each frame byte (the enum is the byte + 1).
_PRIORITY_FIELDS = [_PRIORITY_TAG + varint(priorities.proto_value(b)) for b in priorities.FRAME_VALUES]
_TOPIC_CACHE_LIMIT = 4096
# Payload tag and length of the common payload sizes, encoded once.
_SMALL_LIMIT = 16384
_SMALL_LENGTHS = [_PAYLOAD_TAG + varint(n) for n in range(_SMALL_LIMIT)]


@dataclass(frozen=True, slots=True)
class Rejection:
    """The first bad frame of a buffer."""

    reason: str
    """Stable reason, e.g. ``TOPIC_NOT_UTF8``."""
    message: str
    """What is wrong, e.g. ``topic is not valid UTF-8``."""
    index: int
    """Position of the frame in the buffer (0-based)."""


@dataclass(slots=True)
class DecodedFrames:
    """Good frames of a buffer, by lane in arrival order, up to the first bad one."""

    events: dict[Lane, list[EventTuple]] = field(default_factory=dict)
    lane_order: bytearray = field(default_factory=bytearray)
    """The lane (:class:`Lane` value) of each good frame, in arrival order."""
    count: int = 0
    """Good frames decoded."""
    consumed: int = 0
    """Bytes of the buffer covered by the good frames (a stream keeps the rest)."""
    rejection: Rejection | None = None
    """The first bad frame; frames after it are not decoded."""


class FrameDecoder:
    """Decodes buffers of frames with one native parse per buffer.

    Args:
        wire: the wire backend (:func:`..queue.wire_backend`).
        limits: topic and payload limits.
        max_frame: largest declared frame length.
    """

    def __init__(self, wire: NativeWire | PureWire, limits: LimitsConfig, max_frame: int) -> None:
        self._wire = wire
        self._max_topic = limits.max_topic_bytes
        self._max_payload = limits.max_message_bytes
        self.max_frame = max_frame
        # Raw topic bytes -> (topic, encoded topic field): most producers
        # write few topics, so each is decoded once.
        self._topics: dict[bytes, tuple[str, bytes]] = {}

    def decode(self, data: bytes, *, final: bool) -> DecodedFrames:
        """Decode the frames in ``data``.

        Args:
            data: received bytes.
            final: ``data`` is complete (a datagram, a delimited batch, or a
                stream that ended): an incomplete tail is ``FRAME_TRUNCATED``;
                otherwise it is left out of ``consumed`` for the next read.
        """
        batch = self._wire.parse_frames(data, max_frame=self.max_frame, final=final)
        rows = batch.table.tolist()
        columns = [rows[column::FRAME_FIELDS] for column in range(8)]
        out = DecodedFrames()
        realtime: list[EventTuple] = []
        batch_lane: list[EventTuple] = []
        order = out.lane_order
        topics = self._topics
        max_topic, max_payload = self._max_topic, self._max_payload
        small = _SMALL_LENGTHS
        good = 0
        for (offset, length, reason, prio, topic_off, topic_len, payload_off,
             payload_len) in zip(*columns):
            if reason:
                out.rejection = self._reject(FrameReason(reason), good, length)
                break
            if topic_len > max_topic:
                out.rejection = Rejection("TOPIC_TOO_LONG",
                                          f"topic is longer than {max_topic} bytes", good)
                break
            if payload_len > max_payload:
                out.rejection = Rejection("PAYLOAD_TOO_LARGE", f"payload of {payload_len} bytes "
                                          f"is over the limit of {max_payload} bytes", good)
                break
            raw_topic = data[topic_off:topic_off + topic_len]
            known = topics.get(raw_topic)
            if known is None:
                if len(topics) >= _TOPIC_CACHE_LIMIT:
                    topics.clear()
                known = topics[raw_topic] = (raw_topic.decode(),
                                             _TOPIC_TAG + varint(topic_len) + raw_topic)
            body = b"".join((known[1], small[payload_len] if payload_len < _SMALL_LIMIT
                             else _PAYLOAD_TAG + varint(payload_len),
                             data[payload_off:payload_off + payload_len], _PRIORITY_FIELDS[prio]))
            if prio >= 3:
                realtime.append(("", known[0], "", prio, body))
                order.append(0)
            else:
                batch_lane.append(("", known[0], "", prio, body))
                order.append(1)
            good += 1
        if good:
            last = (good - 1) * FRAME_FIELDS
            out.consumed = rows[last] + rows[last + 1]  # offset + length of the last good frame
        if realtime:
            out.events[Lane.REALTIME] = realtime
        if batch_lane:
            out.events[Lane.BATCH] = batch_lane
        out.count = good
        return out

    def _reject(self, reason: FrameReason, index: int, length: int) -> Rejection:
        problem = _PROBLEMS[reason].format(length=max(length - 4, 0), limit=self.max_frame)
        return Rejection(REASONS[reason], problem, index)


__all__ = ["REASONS", "DecodedFrames", "EventTuple", "FrameDecoder", "Rejection"]
