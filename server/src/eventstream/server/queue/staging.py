"""Accepting publish requests and staging log records, a batch per call.

The publish hot path in two steps, each one call for a whole request or
submission:

- :meth:`NativeStager.accept` walks an encoded publish request, validates
  every Event and copies the accepted ones (without the fields the server
  sets) into one buffer, described by a table of rows;
- :meth:`NativeStager.stage` turns accepted rows into log records (server
  fields appended as wire bytes, grouped by partition) and encoded
  PublishResults, in one buffer each.

:class:`._pure_staging.PureStager` is the pure-Python reference with
identical results. Pick one with :func:`stager`.
"""

from __future__ import annotations

import ctypes
import enum
import os
import threading
from array import array
from ctypes import byref, c_size_t, c_uint32, c_uint64
from dataclasses import dataclass

from . import _lib
from .errors import raise_for

Buffer = bytes | bytearray | memoryview

ROW_FIELDS = 10
"""u32 values per accepted row (``struct shardq_accepted``)."""
(R_INDEX, R_REASON, R_BODY_OFF, R_BODY_LEN, R_ID_OFF, R_ID_LEN, R_TOPIC_OFF, R_TOPIC_LEN,
 R_HASH, R_PRIORITY) = range(ROW_FIELDS)
ROW_BYTES = ROW_FIELDS * 4
ID_PREFIX_MAX = _lib.ID_PREFIX_MAX
RECORD_MAX_OVERHEAD = 64
ACK_MAX_OVERHEAD = 96


class Refusal(enum.IntEnum):
    """Why an Event was refused (``SHARDQ_EVENT_*``); values are append-only."""

    OK = 0
    MALFORMED = 1
    ID_NOT_UTF8 = 2
    TOPIC_NOT_UTF8 = 3
    KEY_NOT_UTF8 = 4
    TOPIC_EMPTY = 5
    TOPIC_WILDCARD = 6
    TOPIC_EMPTY_LEVEL = 7
    TOPIC_TOO_LONG = 8
    PAYLOAD_TOO_LARGE = 9
    PRIORITY_UNKNOWN = 10
    ID_TOO_LONG = 11
    KEY_TOO_LONG = 12
    TOO_MANY_HEADERS = 13
    TOO_LARGE = 14
    HEADER_NOT_UTF8 = 15
    PUBLISH_TIME_OUT_OF_RANGE = 16


FRAME_REFUSAL_BASE = 64
"""A frame refused by :meth:`NativeStager.accept_frames` for ``FrameReason`` r
has reason ``FRAME_REFUSAL_BASE + r``."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one Event may hold (bytes, except ``max_headers``)."""

    max_topic: int
    max_payload: int
    max_id: int
    max_key: int
    max_headers: int
    max_event: int = 0
    """The whole Event as sent, every field counted; 0: no limit."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A request's Events after :meth:`NativeStager.accept`.

    ``rows`` holds ``ROW_FIELDS`` u32 per Event: first the accepted realtime
    ones (HIGH, CRITICAL), then the other accepted ones, then the refused
    ones, each group in request order. Accepted rows locate the Event's
    cleaned copy in ``bodies``; refused rows locate it in the request.
    """

    bodies: bytes
    rows: bytes
    realtime: int
    batch: int
    refused: int
    varint: int
    """The value of the requested varint field (a stream request's sequence)."""

    @property
    def count(self) -> int:
        """Events in the request."""
        return self.realtime + self.batch + self.refused

    def row(self, i: int) -> tuple[int, ...]:
        """Row ``i`` as a tuple (slow path and tests)."""
        return tuple(memoryview(self.rows)[i * ROW_BYTES:(i + 1) * ROW_BYTES].cast("I"))


@dataclass(frozen=True, slots=True)
class StagedRecords:
    """What :meth:`NativeStager.stage` produced for one submission.

    Records are grouped by partition: ``part_counts[p]`` records of
    partition ``p``, partitions in ascending order, each in row order.
    ``ends`` (u32 per record) and ``topics`` (u32 offset, length per record)
    index ``records``; ``positions`` holds (partition, offset) as u64 per
    row; ``results`` holds one encoded PublishResult per row, in row order.
    """

    records: bytes
    ends: memoryview
    topics: memoryview
    priorities: bytes
    part_counts: list[int]
    positions: memoryview
    results: bytes


class NativeStager:
    """Accept and stage through libshardq.

    Args:
        limits: what an Event may hold.
        id_prefix: prefix of the ids the server assigns (ASCII, at most 32 bytes).
        library: explicit libshardq path (default: see :func:`._lib.library_path`).
    """

    native = True

    def __init__(self, limits: Limits, id_prefix: bytes,
                 library: str | os.PathLike[str] | None = None) -> None:
        if len(id_prefix) > ID_PREFIX_MAX:
            raise ValueError(f"id_prefix is longer than {ID_PREFIX_MAX} bytes")
        self._lib = _lib.load(library)
        self._accept = _lib.unchecked(self._lib, "shardq_pb_accept")
        self._stage = _lib.unchecked(self._lib, "shardq_stage")
        self._accept_frames = _lib.unchecked(self._lib, "shardq_frames_accept")
        self._accept_datagrams = _lib.unchecked(self._lib, "shardq_datagrams_accept")
        self._limits = _lib.AcceptLimits(ctypes.sizeof(_lib.AcceptLimits), limits.max_topic,
                                         limits.max_payload, limits.max_id, limits.max_key,
                                         limits.max_headers, limits.max_event)
        self._args = _lib.StageArgs()
        self._args.size = ctypes.sizeof(_lib.StageArgs)
        self._args.id_prefix_len = len(id_prefix)
        ctypes.memmove(self._args.id_prefix, id_prefix, len(id_prefix))
        self._local = threading.local()

    @property
    def id_counter(self) -> int:
        """The number of the last id the server assigned."""
        return int(self._args.id_counter)

    def accept(self, msg: bytes, field: int, varint_field: int = 0) -> Accepted:
        """Validate and copy the Events of an encoded publish request.

        Args:
            msg: the request as received.
            field: the repeated (or single) Event field.
            varint_field: a varint field to read too (0: none).

        Raises:
            MalformedInput: the request is not well-formed protobuf.
        """
        length = len(msg)
        rows_cap = length // 2 + 1  # an Event takes at least 2 bytes
        rows = self._buffer("rows", rows_cap * ROW_BYTES)
        bodies = self._buffer("bodies", 2 * length + 16)
        n, used, varint = c_size_t(), c_size_t(), c_uint64()
        counts = (c_uint32 * 3)()
        rc = self._accept(msg, c_size_t(length), field, varint_field, byref(self._limits),
                          rows, c_size_t(rows_cap), byref(n), bodies,
                          c_size_t(ctypes.sizeof(bodies)), byref(used), counts, byref(varint))
        if rc:
            raise_for(rc, "accept")
        return Accepted(ctypes.string_at(bodies, used.value),
                        ctypes.string_at(rows, n.value * ROW_BYTES),
                        counts[0], counts[1], counts[2], varint.value)

    def accept_frames(self, data: Buffer, *, max_frame: int, final: bool = False
                      ) -> tuple[Accepted, int, int]:
        """Validate raw TCP/UDP frames and encode each as an Event, like :meth:`accept`.

        Args:
            data: received bytes.
            max_frame: largest allowed declared frame length.
            final: ``data`` is a whole datagram (an incomplete tail is TRUNCATED).

        Returns:
            The rows (refused frames keep their place in ``data``, with reason
            ``FRAME_REFUSAL_BASE + FrameReason`` or TOPIC_TOO_LONG /
            PAYLOAD_TOO_LARGE), the bytes consumed, and the fatal
            :class:`.wire.FrameReason` that stopped the walk (0 when none).
        """
        src = _lib.Borrowed(data)
        try:
            length = src.length
            rows_cap = length // 7 + 1
            rows = self._buffer("rows", rows_cap * ROW_BYTES)
            bodies = self._buffer("bodies", 2 * length + 16)
            n, used, consumed, fatal = c_size_t(), c_size_t(), c_size_t(), c_uint32()
            counts = (c_uint32 * 3)()
            rc = self._accept_frames(src.ptr, c_size_t(length), max_frame, 1 if final else 0,
                                     byref(self._limits), rows, c_size_t(rows_cap), byref(n), bodies,
                                     c_size_t(ctypes.sizeof(bodies)), byref(used), counts,
                                     byref(consumed), byref(fatal))
        finally:
            src.release()
        if rc:
            raise_for(rc, "accept_frames")
        accepted = Accepted(ctypes.string_at(bodies, used.value),
                            ctypes.string_at(rows, n.value * ROW_BYTES),
                            counts[0], counts[1], counts[2], 0)
        return accepted, consumed.value, fatal.value

    def accept_datagrams(self, batch: Buffer, *, max_frame: int) -> Accepted:
        """Validate a batch of datagrams of raw frames, each whole or not at all.

        Args:
            batch: records (``u32 BE length + datagram`` each), as the UDP
                receive queue pops them.
            max_frame: largest allowed declared frame length.

        Returns:
            One row per frame of each good datagram (``R_INDEX`` is the
            datagram's position), realtime rows first, then batch rows; then
            one refused row per bad datagram: its position, its first bad
            frame's reason (as :meth:`accept_frames` gives it) and, in
            ``R_ID_OFF``, the good frames before that one.

        Raises:
            MalformedInput: ``batch`` is not a run of records.
        """
        src = _lib.Borrowed(batch)
        try:
            length = src.length
            rows_cap = length // 4 + 1
            rows = self._buffer("rows", rows_cap * ROW_BYTES)
            bodies = self._buffer("bodies", 2 * length + 16)
            n, used = c_size_t(), c_size_t()
            counts = (c_uint32 * 3)()
            rc = self._accept_datagrams(src.ptr, c_size_t(length), max_frame, byref(self._limits),
                                        rows, c_size_t(rows_cap), byref(n), bodies,
                                        c_size_t(ctypes.sizeof(bodies)), byref(used), counts)
        finally:
            src.release()
        if rc:
            raise_for(rc, "accept_datagrams")
        return Accepted(ctypes.string_at(bodies, used.value),
                        ctypes.string_at(rows, n.value * ROW_BYTES),
                        counts[0], counts[1], counts[2], 0)

    def stage(self, bodies: bytes, rows: bytes, dups: bytes | None, next_offsets: array,
              *, time_ns: int, durability: int, result_tag: int) -> StagedRecords:
        """Place, encode and acknowledge accepted rows.

        Args:
            bodies: :attr:`Accepted.bodies`.
            rows: accepted rows (a slice of :attr:`Accepted.rows`).
            dups: None, or three int64 per row (see ``struct shardq_dup``).
            next_offsets: ``array('Q')``, one per partition; advanced in place.
            time_ns: the round's ingest time.
            durability: the ``eventstream.v1.Durability`` written in each ack.
            result_tag: 0, or the tag byte wrapping each PublishResult.
        """
        n = len(rows) // ROW_BYTES
        partitions = len(next_offsets)
        args = self._args
        args.partitions = partitions
        args.time_ns = time_ns
        args.durability = durability
        args.result_tag = result_tag
        records_cap = len(bodies) + n * (ID_PREFIX_MAX + 16 + RECORD_MAX_OVERHEAD)
        results_cap = len(bodies) + n * (ID_PREFIX_MAX + 16 + ACK_MAX_OVERHEAD)
        records = self._buffer("records", records_cap)
        results = self._buffer("results", results_cap)
        size = max(n, 1)  # never an empty array: its address would be NULL
        ends = array("I", bytes(4 * size))
        topics = array("I", bytes(8 * size))
        priorities = (ctypes.c_uint8 * size)()
        part_counts = array("I", bytes(4 * partitions))
        positions = array("Q", bytes(16 * size))
        out = _lib.Staged()
        out.size = ctypes.sizeof(_lib.Staged)
        out.records = ctypes.addressof(records)
        out.records_cap = records_cap
        out.results = ctypes.addressof(results)
        out.results_cap = results_cap
        offsets, _ = next_offsets.buffer_info()
        out.record_ends, _ = ends.buffer_info()
        out.record_topics, _ = topics.buffer_info()
        out.part_counts, _ = part_counts.buffer_info()
        out.row_positions, _ = positions.buffer_info()
        out.record_priorities = ctypes.addressof(priorities)
        rc = self._stage(byref(args), bodies, c_size_t(len(bodies)), rows, c_size_t(n),
                         dups, ctypes.c_void_p(offsets), byref(out))
        if rc:
            raise_for(rc, "stage")
        count = out.record_count
        return StagedRecords(
            ctypes.string_at(records, out.records_len), memoryview(ends)[:count],
            memoryview(topics)[:2 * count], bytes(priorities)[:count], part_counts.tolist(),
            memoryview(positions)[:2 * n], ctypes.string_at(results, out.results_len))

    def _buffer(self, name: str, size: int) -> ctypes.Array:
        """This thread's reusable output buffer ``name`` of at least ``size`` bytes."""
        buf = getattr(self._local, name, None)
        if buf is None or ctypes.sizeof(buf) < size:
            buf = ctypes.create_string_buffer(max(size, 64 * 1024))
            setattr(self._local, name, buf)
        return buf


def stager(limits: Limits, id_prefix: bytes, native: bool | None = None
           ) -> NativeStager:
    """The stager of the chosen backend (``native`` as in :func:`.open_queue`)."""
    if _lib.use_native(native):
        return NativeStager(limits, id_prefix)
    from ._pure_staging import PureStager
    return PureStager(limits, id_prefix)  # type: ignore[return-value]


__all__ = ["FRAME_REFUSAL_BASE", "ROW_FIELDS", "Accepted", "Limits", "NativeStager", "Refusal", "StagedRecords",
           "stager"]
