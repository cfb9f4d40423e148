"""Decoding of raw TCP/UDP frames into accepted events, a buffer per call.

Pure: no I/O. One call into the native core per buffer
(:meth:`..native.EventEncoder.accept_frames`) checks lengths, the
priority byte, the topic rules of :mod:`..broker.topics` and the topic and
payload limits, and encodes every good frame as an ``eventstream.v1.Event`` in
one buffer, rows split by lane, ready for the write path. This module keeps
the frames before the first bad one and describes that one, if any.

Frame (big-endian): ``u32 length`` (of what follows) · ``u8 priority`` (0
BATCH .. 4 CRITICAL) · ``u16 topic_len`` · topic · payload.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import LimitsConfig
from ..native import Accepted, EventEncoder, FrameReason, Refusal, Refused

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
    """Good frames of a buffer, up to the first bad one."""

    accepted: Accepted | None = None
    """The good frames as accepted events (realtime rows, then batch rows);
    each row's index is its frame's position in the buffer."""
    count: int = 0
    """Good frames decoded."""
    consumed: int = 0
    """Bytes of the buffer covered by the good frames (a stream keeps the rest)."""
    rejection: Rejection | None = None
    """The first bad frame; frames after it are not kept."""


@dataclass(slots=True)
class DecodedDatagrams:
    """A batch of datagrams after :meth:`FrameDecoder.decode_datagrams`."""

    accepted: Accepted
    """The frames of the good datagrams (rows of refused ones at the end)."""
    frames: int
    """Frames read: every frame of a good datagram, and of a bad one those up
    to and including its first bad frame."""
    dropped: dict[str, int]
    """Bad datagrams by the stable reason of their first bad frame."""
    rejected: dict[str, int]
    """Frames dropped with them, by the same reason."""


class FrameDecoder:
    """Decodes buffers of frames with one native call per buffer.

    Args:
        encoder: the event encoder, whose limits apply.
        limits: topic and payload limits (for messages).
        max_frame: largest declared frame length.
    """

    def __init__(self, encoder: EventEncoder, limits: LimitsConfig, max_frame: int) -> None:
        self._encoder = encoder
        self._max_topic = limits.max_topic_bytes
        self._max_payload = limits.max_message_bytes
        self.max_frame = max_frame

    def decode(self, data: bytes | memoryview, *, final: bool) -> DecodedFrames:
        """Decode the frames in ``data``.

        Args:
            data: received bytes.
            final: ``data`` is complete (a datagram, a delimited batch, or a
                stream that ended): an incomplete tail is ``FRAME_TRUNCATED``;
                otherwise it is left out of ``consumed`` for the next read.
        """
        accepted, consumed, fatal = self._encoder.accept_frames(
            data, max_frame=self.max_frame, final=final)
        good = accepted.good
        if not accepted.refused:
            rejection = None
            if fatal:
                length = _declared(data, consumed)
                rejection = self._reject(FrameReason(fatal), good, length + 4)
            return DecodedFrames(accepted if good else None, good, consumed, rejection)
        # A bad frame: keep only the frames before it (the connection closes).
        first = accepted.first_refusal()
        assert first is not None  # accepted.refused
        index, code, offset, length = first.position, first.code, first.start, first.length
        frame_reason = first.frame_reason
        if frame_reason is not None:
            rejection = self._reject(frame_reason, index, length)
        elif code == Refusal.TOPIC_TOO_LONG:
            rejection = Rejection("TOPIC_TOO_LONG", f"topic is longer than {self._max_topic} bytes",
                                  index)
        else:
            size = length - 7 - int.from_bytes(data[offset + 5:offset + 7], "big")
            rejection = Rejection("PAYLOAD_TOO_LARGE", f"payload of {size} bytes is over the "
                                  f"limit of {self._max_payload} bytes", index)
        kept = accepted.before(index)
        if not kept.good:
            return DecodedFrames(None, 0, offset, rejection)
        return DecodedFrames(kept, kept.good, offset, rejection)

    def decode_datagrams(self, batch: memoryview) -> DecodedDatagrams:
        """Decode a batch of datagrams (``u32 BE length + datagram`` records) in one native call.

        Each datagram is accepted whole or dropped whole.
        """
        accepted = self._encoder.accept_datagrams(batch, max_frame=self.max_frame)
        dropped: dict[str, int] = {}
        rejected: dict[str, int] = {}
        frames = accepted.good
        for refused in accepted.refusals():
            reason = _reason_name(refused)
            lost = refused.good_before + 1
            dropped[reason] = dropped.get(reason, 0) + 1
            rejected[reason] = rejected.get(reason, 0) + lost
            frames += lost
        return DecodedDatagrams(accepted, frames, dropped, rejected)

    def _reject(self, reason: FrameReason, index: int, length: int) -> Rejection:
        problem = _PROBLEMS[reason].format(length=max(length - 4, 0), limit=self.max_frame)
        return Rejection(REASONS[reason], problem, index)


def _reason_name(refused: Refused) -> str:
    """The stable reason of a refused frame."""
    frame_reason = refused.frame_reason
    return REASONS[frame_reason] if frame_reason is not None else Refusal(refused.code).name


def _declared(data: bytes | memoryview, offset: int) -> int:
    """The declared length of the frame at ``offset`` (0 when fewer than 4 bytes remain)."""
    head = data[offset:offset + 4]
    return int.from_bytes(head, "big") if len(head) == 4 else 0


__all__ = ["REASONS", "DecodedDatagrams", "DecodedFrames", "FrameDecoder", "Rejection"]
