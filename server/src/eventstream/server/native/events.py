"""Accepting publish requests and placing their events, a batch per call.

The publish hot path in two steps, each one call into libshardq for a whole
request or submission:

- *accept*: :meth:`EventEncoder.accept` walks an encoded publish request (or
  :meth:`~EventEncoder.accept_frames` raw frames), validates every Event and
  copies the accepted ones (without the fields the server sets) into one
  buffer, described by a table of rows (:class:`Accepted`);
- *place*: :meth:`EventEncoder.place` gives accepted events their partition
  and offset and encodes them as log records (server fields appended as wire
  bytes, grouped by partition) and encoded PublishResults, in one buffer
  each (:class:`PlacedRecords`).

The row layout (``struct shardq_accepted``) stays in this module: callers
read results through their methods.
"""

from __future__ import annotations

import ctypes
import enum
import operator
import os
import threading
from array import array
from bisect import bisect_left
from ctypes import byref, c_size_t, c_uint32, c_uint64
from dataclasses import dataclass
from typing import NamedTuple

from . import _lib
from .errors import ENOBUFS, raise_for
from .wire import FrameReason

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
"""A frame refused by :meth:`EventEncoder.accept_frames` for ``FrameReason`` r
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


class Refused(NamedTuple):
    """One refused event (or frame, or datagram) of an :class:`Accepted` (slow path)."""

    position: int
    """Its index: in the request, the buffer of frames, or the batch of datagrams."""
    code: int
    """A :class:`Refusal`, or ``FRAME_REFUSAL_BASE + FrameReason`` for a frame."""
    start: int
    """Where it starts in what was accepted (the request, frames or datagram)."""
    length: int
    """Its length there."""
    good_before: int
    """Datagrams only: the good frames of the datagram before its first bad one."""

    @property
    def frame_reason(self) -> FrameReason | None:
        """The frame parser's reason when a frame's framing or topic was refused."""
        if self.code >= FRAME_REFUSAL_BASE:
            return FrameReason(self.code - FRAME_REFUSAL_BASE)
        return None

    @property
    def reason_name(self) -> str:
        """The name of the reason: a :class:`FrameReason` or :class:`Refusal` member."""
        frame = self.frame_reason
        return frame.name if frame is not None else Refusal(self.code).name


@dataclass(frozen=True, slots=True)
class AcceptedEvents:
    """Accepted events that travel together (one submission), as buffers.

    ``bodies`` holds each event's cleaned copy (shared by every part of one
    :class:`Accepted`); ``rows`` holds ``ROW_FIELDS`` u32 per event locating
    it there. Nothing here is an object per event.
    """

    bodies: bytes
    rows: bytes

    def __len__(self) -> int:
        """The number of events."""
        return len(self.rows) // ROW_BYTES

    @property
    def held_bytes(self) -> int:
        """Bytes these events keep alive (their share of the bodies counted whole)."""
        return len(self.bodies) + len(self.rows)

    def indexes(self) -> list[int]:
        """The position of each event in its request (or buffer of frames)."""
        return memoryview(self.rows).cast("I")[R_INDEX::ROW_FIELDS].tolist()

    def chunks(self, size: int) -> list[AcceptedEvents]:
        """These events in order, in parts of at most ``size`` events."""
        rows, step = self.rows, size * ROW_BYTES
        return [AcceptedEvents(self.bodies, rows[at:at + step]) for at in range(0, len(rows), step)]


ACCEPTED_EVENT_BYTES = ROW_BYTES
"""Bytes of bookkeeping :class:`Accepted` holds per event, besides its copy."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A request's Events after :meth:`EventEncoder.accept`.

    ``rows`` holds ``ROW_FIELDS`` u32 per Event: first the accepted realtime
    ones (HIGH, CRITICAL), then the other accepted ones, then the refused
    ones, each group in request order. Accepted rows locate the Event's
    cleaned copy in ``bodies``; refused rows locate it in the request. Read
    them through the methods, never by the row layout.
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

    @property
    def good(self) -> int:
        """Events accepted (realtime and batch)."""
        return self.realtime + self.batch

    @property
    def held_bytes(self) -> int:
        """Bytes the accepted events keep alive."""
        return len(self.bodies) + len(self.rows)

    def row(self, i: int) -> tuple[int, ...]:
        """Row ``i`` as a tuple (slow path and tests)."""
        return tuple(memoryview(self.rows)[i * ROW_BYTES:(i + 1) * ROW_BYTES].cast("I"))

    def realtime_events(self) -> AcceptedEvents:
        """The accepted realtime events (HIGH, CRITICAL), in request order."""
        return AcceptedEvents(self.bodies, self.rows[:self.realtime * ROW_BYTES])

    def batch_events(self) -> AcceptedEvents:
        """The other accepted events, in request order."""
        return AcceptedEvents(self.bodies, self.rows[self.realtime * ROW_BYTES:self.good * ROW_BYTES])

    def good_events(self) -> AcceptedEvents:
        """Every accepted event: the realtime ones, then the batch ones."""
        return AcceptedEvents(self.bodies, self.rows[:self.good * ROW_BYTES])

    def refusals(self) -> list[Refused]:
        """The refused events, in request order (the slow path: an object each)."""
        table = memoryview(self.rows).cast("I")
        return [_refused(table, row) for row in range(self.good, self.count)]

    def first_refusal(self) -> Refused | None:
        """The first refused event, if any."""
        if not self.refused:
            return None
        return _refused(memoryview(self.rows).cast("I"), self.good)

    def topic_spans(self) -> array[int]:
        """Where each accepted event's topic is in ``bodies``: u32 (offset, length) pairs.

        In the order of :meth:`good_events`; built by C loops, for
        :meth:`.wire.NativeWire.topic_match_batch`.
        """
        good = self.good
        table = memoryview(self.rows).cast("I")[:good * ROW_FIELDS]
        spans = array("I", bytes(8 * good))
        spans[0::2] = array("I", map(operator.add, table[R_BODY_OFF::ROW_FIELDS],
                                     table[R_TOPIC_OFF::ROW_FIELDS]))
        spans[1::2] = array("I", table[R_TOPIC_LEN::ROW_FIELDS].tobytes())
        return spans

    def good_topic(self, row: int) -> bytes:
        """The topic of accepted event ``row`` (in :meth:`good_events` order; slow path)."""
        table = memoryview(self.rows).cast("I")
        base = row * ROW_FIELDS
        start = table[base + R_BODY_OFF] + table[base + R_TOPIC_OFF]
        return self.bodies[start:start + table[base + R_TOPIC_LEN]]

    def good_position(self, row: int) -> int:
        """The position in its request of accepted event ``row`` (slow path)."""
        return int(memoryview(self.rows).cast("I")[row * ROW_FIELDS + R_INDEX])

    def select(self, keep: bytes) -> Accepted:
        """The accepted events whose byte in ``keep`` is 1 (one per event, :meth:`good_events` order).

        Nothing refused is kept (slow path: used when some events are taken out).
        """
        rows = self.rows
        realtime = [rows[i * ROW_BYTES:(i + 1) * ROW_BYTES]
                    for i in range(self.realtime) if keep[i]]
        batch = [rows[i * ROW_BYTES:(i + 1) * ROW_BYTES]
                 for i in range(self.realtime, self.good) if keep[i]]
        return Accepted(self.bodies, b"".join(realtime + batch), len(realtime), len(batch), 0,
                        self.varint)

    def before(self, index: int) -> Accepted:
        """The accepted events whose position is below ``index``, nothing refused."""
        table = memoryview(self.rows).cast("I")
        realtime, good = self.realtime, self.good
        keep_realtime = bisect_left(table[R_INDEX:realtime * ROW_FIELDS:ROW_FIELDS], index)
        keep_batch = bisect_left(
            table[realtime * ROW_FIELDS + R_INDEX:good * ROW_FIELDS:ROW_FIELDS], index)
        rows = (self.rows[:keep_realtime * ROW_BYTES]
                + self.rows[realtime * ROW_BYTES:(realtime + keep_batch) * ROW_BYTES])
        return Accepted(self.bodies, rows, keep_realtime, keep_batch, 0, 0)


def _refused(table: memoryview, row: int) -> Refused:
    base = row * ROW_FIELDS
    return Refused(table[base + R_INDEX], table[base + R_REASON], table[base + R_BODY_OFF],
                   table[base + R_BODY_LEN], table[base + R_ID_OFF])


class RecordArena:
    """Reusable memory a round's records are placed in, sealed (see :meth:`EventEncoder.place`).

    Each placement takes the room after the previous one; :meth:`reset`
    starts over for the next round, so what was placed is valid only until
    then (the round's entry copies it before). Memory is kept between rounds
    (no fresh pages per round), up to ``keep_bytes`` of it.

    Args:
        chunk_bytes: the size of each block of memory (a larger placement gets its own).
        keep_bytes: the memory kept across :meth:`reset`.
    """

    def __init__(self, chunk_bytes: int = 1 << 20, keep_bytes: int = 16 << 20) -> None:
        self._chunk_bytes = chunk_bytes
        self._keep_bytes = keep_bytes
        self._chunks: list[ctypes.Array[ctypes.c_char]] = []
        self._current = 0
        self._used = 0

    def reset(self) -> None:
        """Start over: everything placed before is given up."""
        kept, total = [], 0
        for chunk in self._chunks:
            total += ctypes.sizeof(chunk)
            if total > self._keep_bytes:
                break
            kept.append(chunk)
        self._chunks = kept
        self._current = self._used = 0

    def room(self, size: int) -> tuple[ctypes.Array[ctypes.c_char], int]:
        """A block with at least ``size`` free bytes and where they start (not yet taken)."""
        while self._current < len(self._chunks):
            chunk = self._chunks[self._current]
            if ctypes.sizeof(chunk) - self._used >= size:
                return chunk, self._used
            self._current += 1
            self._used = 0
        chunk = ctypes.create_string_buffer(max(size, self._chunk_bytes))
        self._chunks.append(chunk)
        return chunk, 0

    def take(self, size: int) -> None:
        """Mark ``size`` bytes after the last :meth:`room` answer as used."""
        self._used += size


@dataclass(frozen=True, slots=True)
class PlacedRecords:
    """What :meth:`EventEncoder.place` produced for one submission.

    Records are grouped by partition: ``part_counts[p]`` records of
    partition ``p``, partitions in ascending order, each in row order.
    ``ends`` (u32 per record) and ``topics`` (u32 offset, length per record)
    index ``records``; ``positions`` holds (partition, offset) as u64 per
    event; ``results`` holds one encoded PublishResult per event, in order.
    ``native`` is the same, as the row ``NativeWire.entry_encode`` hands to
    libshardq (made once by :meth:`EventEncoder.place`, so the round's
    encoding marshals nothing per submission); it points into the buffers
    above, which must stay alive with it. When ``sealed``, each record is
    already a segment record (header, topic, framed event: what the entry
    stores), ``records`` is a view into a :class:`RecordArena`, valid until
    its next reset.
    """

    records: bytes | memoryview
    ends: memoryview
    topics: memoryview
    priorities: bytes
    part_counts: array[int]
    positions: memoryview
    results: bytes
    native: _lib.EntrySource | None = None
    sealed: bool = False

    def flat_positions(self) -> list[int]:
        """Partition and offset of every event, flat: ``[p0, o0, p1, o1, ...]``."""
        return self.positions.tolist()

    def position(self, event: int) -> tuple[int, int]:
        """The (partition, offset) event ``event`` of the submission got."""
        return self.positions[2 * event], self.positions[2 * event + 1]

    def runs(self) -> list[tuple[int, int, memoryview, memoryview, bytes]]:
        """The records by partition, one run per partition that has any.

        Returns:
            (partition, start, ends, topics, priorities) per run: its records
            are ``records[start:ends[0]]``, ``records[ends[0]:ends[1]]``, ...
            with the topic spans and priority bytes of each.
        """
        ends, spans, priorities = self.ends, self.topics, self.priorities
        out: list[tuple[int, int, memoryview, memoryview, bytes]] = []
        first = 0
        for partition, count in enumerate(self.part_counts):
            if not count:
                continue
            last = first + count
            out.append((partition, ends[first - 1] if first else 0, ends[first:last],
                        spans[2 * first:2 * last], priorities[first:last]))
            first = last
        return out


class EventEncoder:
    """Accepts and places events through libshardq (one call per request or submission).

    Args:
        limits: what an Event may hold.
        id_prefix: prefix of the ids the server assigns (ASCII, at most 32 bytes).
        library: explicit libshardq path (default: see :func:`._lib.library_path`).
    """

    def __init__(self, limits: Limits, id_prefix: bytes,
                 library: str | os.PathLike[str] | None = None) -> None:
        if len(id_prefix) > ID_PREFIX_MAX:
            raise ValueError(f"id_prefix is longer than {ID_PREFIX_MAX} bytes")
        self._lib = _lib.load(library)
        self._accept = _lib.unchecked(self._lib, "shardq_pb_accept")
        self._place = _lib.unchecked(self._lib, "shardq_stage")
        self._accept_frames = _lib.unchecked(self._lib, "shardq_frames_accept")
        self._accept_datagrams = _lib.unchecked(self._lib, "shardq_datagrams_accept")
        self._limits = _lib.AcceptLimits(ctypes.sizeof(_lib.AcceptLimits), limits.max_topic,
                                         limits.max_payload, limits.max_id, limits.max_key,
                                         limits.max_headers, limits.max_event)
        self._args = _lib.StageArgs()
        self._args.size = ctypes.sizeof(_lib.StageArgs)
        self._args_ref = byref(self._args)
        self._staged = _lib.Staged()
        self._staged.size = ctypes.sizeof(_lib.Staged)
        self._staged_ref = byref(self._staged)
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

    def place(self, events: AcceptedEvents, dups: Buffer | ctypes.Array[ctypes.c_char] | None,
              next_offsets: array[int],
              *, time_ns: int, durability: int, result_tag: int,
              into: RecordArena | None = None) -> PlacedRecords:
        """Give accepted events their partition and offset; encode records and acknowledgements.

        Args:
            events: accepted events (a part of an :class:`Accepted`).
            dups: None, or :meth:`.dedup.DedupCheck.encoded` (a verdict per event).
            next_offsets: ``array('Q')``, one per partition; advanced in place.
            time_ns: the round's ingest time.
            durability: the ``eventstream.v1.Durability`` written in each ack.
            result_tag: 0, or the tag byte wrapping each PublishResult.
            into: seal the records (each a segment record with its offset,
                ``time_ns`` and CRC32C, as the round's entry stores it) into
                this arena, so the entry encoder copies whole runs of them
                instead of encoding each record again; None: plain records
                in a new ``bytes``.
        """
        bodies, rows = events.bodies, events.rows
        n = len(rows) // ROW_BYTES
        partitions = len(next_offsets)
        args = self._args
        args.partitions = partitions
        args.time_ns = time_ns
        args.durability = durability
        args.result_tag = result_tag
        args.flags = _lib.RECORDS_STORED if into is not None else 0
        results_cap = len(bodies) + n * (ID_PREFIX_MAX + 16 + ACK_MAX_OVERHEAD)
        results = self._buffer("results", results_cap)
        if into is not None:
            # The arena's free room first; C says how much it needs when that is too little.
            records, start = into.room(64 * 1024)
            records_at = ctypes.addressof(records) + start
            records_cap = ctypes.sizeof(records) - start
        else:
            records = self._buffer(
                "records", len(bodies) + n * (ID_PREFIX_MAX + 16 + RECORD_MAX_OVERHEAD))
            records_at, records_cap = ctypes.addressof(records), ctypes.sizeof(records)
        size = max(n, 1)  # never an empty array: its address would be NULL
        # New arrays per call: the PlacedRecords returned keeps views of them.
        ends = array("I", bytes(4 * size))
        topics = array("I", bytes(8 * size))
        priorities = array("B", bytes(size))
        part_counts = array("I", bytes(4 * partitions))
        positions = array("Q", bytes(16 * size))
        # One output struct, reused (this method runs on one thread, as _args shows):
        # each call sets every field C reads.
        out = self._staged
        out.records = records_at
        out.records_cap = records_cap
        out.results = ctypes.addressof(results)
        out.results_cap = results_cap
        out.record_ends = ends.buffer_info()[0]
        out.record_topics = topics.buffer_info()[0]
        out.part_counts = part_counts.buffer_info()[0]
        out.row_positions = positions.buffer_info()[0]
        priorities_at = out.record_priorities = priorities.buffer_info()[0]
        offsets = next_offsets.buffer_info()[0]
        rc = self._place(self._args_ref, bodies, c_size_t(len(bodies)), rows, c_size_t(n),
                         dups, ctypes.c_void_p(offsets), self._staged_ref)
        if rc == ENOBUFS and into is not None:  # a block with the room it needs, once
            records, start = into.room(out.records_len)
            out.records = ctypes.addressof(records) + start
            out.records_cap = ctypes.sizeof(records) - start
            rc = self._place(self._args_ref, bodies, c_size_t(len(bodies)), rows, c_size_t(n),
                             dups, ctypes.c_void_p(offsets), self._staged_ref)
        if rc:
            raise_for(rc, "place")
        count = out.record_count
        kinds = ctypes.string_at(priorities_at, count)
        placed: bytes | memoryview
        if into is not None:
            into.take(out.records_len)
            placed = memoryview(records).cast("B")[start:start + out.records_len]
            native = _lib.EntrySource(out.records, out.records_len, out.record_ends,
                                      out.record_topics, _lib.address_of(kinds), out.part_counts,
                                      count, _lib.RECORDS_STORED)
        else:
            placed = ctypes.string_at(records, out.records_len)
            native = _lib.EntrySource(_lib.address_of(placed), len(placed), out.record_ends,
                                      out.record_topics, _lib.address_of(kinds), out.part_counts,
                                      count, 0)
        return PlacedRecords(
            placed, memoryview(ends)[:count], memoryview(topics)[:2 * count], kinds, part_counts,
            memoryview(positions)[:2 * n], ctypes.string_at(results, out.results_len), native,
            into is not None)

    def _buffer(self, name: str, size: int) -> ctypes.Array[ctypes.c_char]:
        """This thread's reusable output buffer ``name`` of at least ``size`` bytes."""
        buf = getattr(self._local, name, None)
        if buf is None or ctypes.sizeof(buf) < size:
            buf = ctypes.create_string_buffer(max(size, 64 * 1024))
            setattr(self._local, name, buf)
        return buf


__all__ = ["ACCEPTED_EVENT_BYTES", "FRAME_REFUSAL_BASE", "Accepted", "AcceptedEvents", "EventEncoder",
           "Limits", "PlacedRecords", "RecordArena", "Refusal", "Refused"]
