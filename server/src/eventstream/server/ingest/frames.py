"""Decoding of raw TCP/UDP frames into accepted events, a buffer per call.

Pure: no I/O. One call into the native core per buffer
(:meth:`..queue.staging.NativeStager.accept_frames`) checks lengths, the
priority byte, the topic rules of :mod:`..broker.topics` and the topic and
payload limits, and encodes every good frame as an ``eventstream.v1.Event`` in
one buffer, rows split by lane, ready for the write path. This module keeps
the frames before the first bad one and describes that one, if any.

Frame (big-endian): ``u32 length`` (of what follows) · ``u8 priority`` (0
BATCH .. 4 CRITICAL) · ``u16 topic_len`` · topic · payload.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from ..config.model import LimitsConfig
from ..queue import FrameReason
from ..queue.staging import (
    FRAME_REFUSAL_BASE,
    R_BODY_LEN,
    R_BODY_OFF,
    R_ID_OFF,
    R_INDEX,
    R_REASON,
    ROW_BYTES,
    ROW_FIELDS,
    Accepted,
    NativeStager,
    Refusal,
)

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
        stager: the stager (:func:`..queue.staging.stager`), whose limits apply.
        limits: topic and payload limits (for messages).
        max_frame: largest declared frame length.
    """

    def __init__(self, stager: NativeStager, limits: LimitsConfig, max_frame: int) -> None:
        self._stager = stager
        self._max_topic = limits.max_topic_bytes
        self._max_payload = limits.max_message_bytes
        self.max_frame = max_frame

    def decode(self, data: bytes, *, final: bool) -> DecodedFrames:
        """Decode the frames in ``data``.

        Args:
            data: received bytes.
            final: ``data`` is complete (a datagram, a delimited batch, or a
                stream that ended): an incomplete tail is ``FRAME_TRUNCATED``;
                otherwise it is left out of ``consumed`` for the next read.
        """
        accepted, consumed, fatal = self._stager.accept_frames(
            data, max_frame=self.max_frame, final=final)
        good = accepted.realtime + accepted.batch
        if not accepted.refused:
            rejection = None
            if fatal:
                length = _declared(data, consumed)
                rejection = self._reject(FrameReason(fatal), good, length + 4)
            return DecodedFrames(accepted if good else None, good, consumed, rejection)
        # A bad frame: keep only the frames before it (the connection closes).
        rows = memoryview(accepted.rows).cast("I")
        first = good * ROW_FIELDS
        index, reason = rows[first + R_INDEX], rows[first + R_REASON]
        offset, length = rows[first + R_BODY_OFF], rows[first + R_BODY_LEN]
        if reason >= FRAME_REFUSAL_BASE:
            rejection = self._reject(FrameReason(reason - FRAME_REFUSAL_BASE), index, length)
        elif reason == Refusal.TOPIC_TOO_LONG:
            rejection = Rejection("TOPIC_TOO_LONG", f"topic is longer than {self._max_topic} bytes",
                                  index)
        else:
            size = length - 7 - int.from_bytes(data[offset + 5:offset + 7], "big")
            rejection = Rejection("PAYLOAD_TOO_LARGE", f"payload of {size} bytes is over the "
                                  f"limit of {self._max_payload} bytes", index)
        keep_realtime = bisect_left(rows[R_INDEX:accepted.realtime * ROW_FIELDS:ROW_FIELDS], index)
        batch_indexes = rows[accepted.realtime * ROW_FIELDS + R_INDEX:first:ROW_FIELDS]
        keep_batch = bisect_left(batch_indexes, index)
        if not keep_realtime + keep_batch:
            return DecodedFrames(None, 0, offset, rejection)
        realtime_rows = accepted.rows[:keep_realtime * ROW_BYTES]
        batch_rows = accepted.rows[accepted.realtime * ROW_BYTES:
                                   (accepted.realtime + keep_batch) * ROW_BYTES]
        kept = Accepted(accepted.bodies, realtime_rows + batch_rows, keep_realtime, keep_batch, 0, 0)
        return DecodedFrames(kept, keep_realtime + keep_batch, offset, rejection)

    def decode_datagrams(self, batch: memoryview) -> DecodedDatagrams:
        """Decode a batch of datagrams (``u32 BE length + datagram`` records) in one
        native call; each datagram is accepted whole or dropped whole."""
        accepted = self._stager.accept_datagrams(batch, max_frame=self.max_frame)
        good = accepted.realtime + accepted.batch
        dropped: dict[str, int] = {}
        rejected: dict[str, int] = {}
        frames = good
        if accepted.refused:
            rows = memoryview(accepted.rows).cast("I")
            for at in range(good * ROW_FIELDS, len(rows), ROW_FIELDS):
                reason = _reason_name(rows[at + R_REASON])
                lost = rows[at + R_ID_OFF] + 1
                dropped[reason] = dropped.get(reason, 0) + 1
                rejected[reason] = rejected.get(reason, 0) + lost
                frames += lost
        return DecodedDatagrams(accepted, frames, dropped, rejected)

    def _reject(self, reason: FrameReason, index: int, length: int) -> Rejection:
        problem = _PROBLEMS[reason].format(length=max(length - 4, 0), limit=self.max_frame)
        return Rejection(REASONS[reason], problem, index)


def _reason_name(code: int) -> str:
    """The stable reason of a frame refusal code of the stager."""
    if code >= FRAME_REFUSAL_BASE:
        return REASONS[FrameReason(code - FRAME_REFUSAL_BASE)]
    return Refusal(code).name


def _declared(data: bytes, offset: int) -> int:
    """The declared length of the frame at ``offset`` (0 when fewer than 4 bytes remain)."""
    head = data[offset:offset + 4]
    return int.from_bytes(head, "big") if len(head) == 4 else 0


__all__ = ["REASONS", "DecodedDatagrams", "DecodedFrames", "FrameDecoder", "Rejection"]
