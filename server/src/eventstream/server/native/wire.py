"""Wire helpers of the native core: frames, topics, CRC32C, protobuf walking.

Results come back as flat tables of u32 (one row per frame or event) in a
memoryview, never as one Python object per item; the ``row``/``event``
accessors are for tests and slow paths. :class:`NativeWire` calls libshardq.

Pure functions (no state); the native calls release the GIL.
"""

from __future__ import annotations

import ctypes
import enum
import os
import threading
from array import array
from collections.abc import Sequence
from ctypes import byref, c_size_t
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from . import _lib
from .errors import EBADMSG, ENOBUFS, InvalidPattern, raise_for

Buffer = bytes | bytearray | memoryview

FRAME_FIELDS = 10
"""u32 values per frame row: offset, length, reason, priority, topic_off,
topic_len, payload_off, payload_len, hash, reserved."""
(F_OFFSET, F_LENGTH, F_REASON, F_PRIORITY, F_TOPIC_OFF, F_TOPIC_LEN,
 F_PAYLOAD_OFF, F_PAYLOAD_LEN, F_HASH) = range(9)

EVENT_FIELDS = 16
"""u32 values per event row: id/topic/key/payload/event (offset, length)
pairs, hash, reserved, then priority (int64) and seen (uint64) as two u32 each."""
(E_ID_OFF, E_ID_LEN, E_TOPIC_OFF, E_TOPIC_LEN, E_KEY_OFF, E_KEY_LEN, E_PAYLOAD_OFF,
 E_PAYLOAD_LEN, E_EVENT_OFF, E_EVENT_LEN, E_HASH) = range(11)


class FrameReason(enum.IntEnum):
    """Why a frame was rejected (``SHARDQ_FRAME_*``). Append-only: never renumber."""

    OK = 0
    TRUNCATED = 1
    TOO_LONG = 2
    BAD_LENGTH = 3
    BAD_PRIORITY = 4
    TOPIC_EMPTY = 5
    TOPIC_NOT_UTF8 = 6
    TOPIC_WILDCARD = 7
    TOPIC_EMPTY_LEVEL = 8

    @property
    def fatal(self) -> bool:
        """True when framing is lost: close the TCP connection / drop the datagram's rest."""
        return self in (FrameReason.TRUNCATED, FrameReason.TOO_LONG)


class Frame(NamedTuple):
    """One frame row, as an object (slow path)."""

    offset: int
    length: int
    reason: FrameReason
    priority: int
    topic_off: int
    topic_len: int
    payload_off: int
    payload_len: int
    hash: int


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """Frames found in a buffer.

    Attributes:
        count: rows in ``table``.
        consumed: bytes covered by the non-fatal rows; a stream reader keeps
            ``data[consumed:]`` for the next read.
        table: ``count * FRAME_FIELDS`` u32 values (``F_*`` column indexes);
            a column is ``table[F_REASON::FRAME_FIELDS]``.
    """

    count: int
    consumed: int
    table: memoryview

    def row(self, i: int) -> Frame:
        """Row ``i`` as a :class:`Frame`."""
        r = self.table[i * FRAME_FIELDS:(i + 1) * FRAME_FIELDS].tolist()
        return Frame(r[0], r[1], FrameReason(r[2]), *r[3:9])

    @property
    def fatal(self) -> FrameReason | None:
        """The fatal reason that ended the walk, if any (always the last row)."""
        if self.count:
            reason = FrameReason(self.table[(self.count - 1) * FRAME_FIELDS + F_REASON])
            if reason.fatal:
                return reason
        return None


class SegmentProgress(NamedTuple):
    """How far :meth:`NativeWire.segment_encode` got (the segment's new counters)."""

    next_record: int
    """The first record not encoded (the count when all were)."""
    next_offset: int
    position: int
    """The segment's size in bytes after the encoded records."""
    last_position: int
    """Position of the newest record."""
    index_entries: array[int]
    """Sparse index entries of the encoded records: (offset - base, position) pairs, u32."""


class EventSpans(NamedTuple):
    """Where one Event's fields are, as an object (slow path).

    Offsets index the buffer that was walked; an absent field has offset 0
    and length 0.
    """

    id_off: int
    id_len: int
    topic_off: int
    topic_len: int
    key_off: int
    key_len: int
    payload_off: int
    payload_len: int
    event_off: int
    event_len: int
    hash: int
    priority: int
    seen: int


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events found in a repeated field.

    Attributes:
        count: rows in ``table``.
        table: ``count * EVENT_FIELDS`` u32 values (``E_*`` column indexes).
    """

    count: int
    table: memoryview

    def event(self, i: int) -> EventSpans:
        """Row ``i`` as :class:`EventSpans`."""
        row = self.table[i * EVENT_FIELDS:(i + 1) * EVENT_FIELDS]
        r = row.tolist()
        wide = row.cast("B").cast("q")
        return EventSpans(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                          wide[6], int(row.cast("B").cast("Q")[7]))

    def priority(self, i: int) -> int:
        """Field 5 of event ``i`` as protobuf reads an enum (int32), 0 when absent."""
        return self.table[i * EVENT_FIELDS:(i + 1) * EVENT_FIELDS].cast("B").cast("q")[6]


def _text(value: str | Buffer) -> Buffer:
    return value.encode() if isinstance(value, str) else value


def _pointer(value: Buffer | array[int], held: list[_lib.Borrowed]) -> int | None:
    """Address of any buffer's contents; a borrowed one is added to ``held`` (to release)."""
    if type(value) is bytes:
        return _lib.address_of(value)
    borrowed = _lib.Borrowed(value)
    held.append(borrowed)
    return borrowed.address


@dataclass(frozen=True, slots=True)
class EntryScan:
    """What :meth:`NativeWire.entry_scan` found in an EVENTS payload."""

    blocks: array[int]
    """Block rows, ``ENTRY_BLOCK_FIELDS`` int64 each: partition, first offset,
    count, position of the first record in the payload, bytes of the records,
    time of the first record (as ``entry_encode`` gives them)."""
    _ids: array[int]
    _payload: Buffer

    def runs(self) -> list[tuple[int, int, int, int]]:
        """(partition, first offset, count, time) of each block, in payload order."""
        rows, fields = self.blocks, _lib.ENTRY_BLOCK_FIELDS
        return [(rows[i], rows[i + 1], rows[i + 2], rows[i + 5])
                for i in range(0, len(rows), fields)]

    @property
    def id_count(self) -> int:
        """Events whose id their producer chose."""
        return len(self._ids) // _lib.ENTRY_ID_FIELDS

    def id_rows(self) -> tuple[Buffer, array[int]]:
        """The payload and the id rows into it, as :class:`.dedup.DedupTable` takes them."""
        return self._payload, self._ids

    def ids(self) -> list[tuple[bytes, int, int]]:
        """(id, partition, offset) of each event whose producer chose its id, in payload order."""
        rows, payload = self._ids, self._payload
        return [(bytes(payload[rows[i + 2]:rows[i + 2] + rows[i + 3]]), rows[i], rows[i + 1])
                for i in range(0, len(rows), _lib.ENTRY_ID_FIELDS)]


class EntrySourceLike(Protocol):
    """One submission's placed records (:class:`.events.PlacedRecords` has these).

    Plain records, unless it also has a ``native`` row (that row then says
    whether they are sealed).
    """

    @property
    def records(self) -> bytes | memoryview:
        """See the class docstring."""
        ...

    @property
    def ends(self) -> Buffer | array[int]:
        """See the class docstring."""
        ...

    @property
    def topics(self) -> Buffer | array[int]:
        """See the class docstring."""
        ...

    @property
    def priorities(self) -> bytes:
        """See the class docstring."""
        ...

    @property
    def part_counts(self) -> Sequence[int]:
        """See the class docstring."""
        ...


class NativeWire:
    """The wire helpers backed by libshardq.

    Args:
        library: explicit libshardq path (default: see :func:`._lib.library_path`).
    """

    def __init__(self, library: str | os.PathLike[str] | None = None) -> None:
        self._lib = _lib.load(library)
        self._local = threading.local()

    @property
    def crc32c_hardware(self) -> bool:
        """True when CRC32C uses the SSE4.2 instruction."""
        return bool(self._lib.shardq_features() & _lib.FEATURE_CRC32C_HW)

    def parse_frames(self, data: Buffer, *, max_frame: int, final: bool = False,
                     max_frames: int | None = None) -> FrameBatch:
        """Walk the frames in ``data``.

        Args:
            data: received bytes.
            max_frame: largest allowed declared length (over it: TOO_LONG, fatal).
            final: the buffer is a whole datagram: an incomplete tail is
                TRUNCATED (fatal) instead of being left for the next read.
            max_frames: most rows to return (default: as many as can fit).

        Returns:
            The frame table; see :class:`FrameBatch`.
        """
        src = _lib.Borrowed(data)
        try:
            limit = src.length // 7 + 1
            if max_frames is not None:
                limit = max(1, min(limit, max_frames))
            dst = self._scratch(limit * FRAME_FIELDS * 4)
            n, used = c_size_t(), c_size_t()
            rc = self._lib.shardq_frame_parse(
                src.ptr, src.length, max_frame, _lib.FRAME_FINAL if final else 0,
                dst, limit, byref(n), byref(used))
        finally:
            src.release()
        if rc:
            raise_for(rc, "parse_frames")
        table = ctypes.string_at(dst, n.value * FRAME_FIELDS * 4)
        return FrameBatch(n.value, used.value, memoryview(table).cast("I"))

    def _scratch(self, size: int) -> ctypes.Array[ctypes.c_char]:
        """This thread's reusable output buffer of at least ``size`` bytes.

        Rows are written here and copied out (count * row size bytes), so a
        call never zero-fills a buffer sized for the worst case.
        """
        buf = getattr(self._local, "buf", None)
        if buf is None or ctypes.sizeof(buf) < size:
            buf = self._local.buf = ctypes.create_string_buffer(max(size, 64 * 1024))
        return buf

    def topic_check(self, topic: str | Buffer) -> FrameReason:
        """Validate a topic for publishing: OK or a TOPIC_* reason."""
        src = _lib.Borrowed(_text(topic))
        try:
            return FrameReason(self._lib.shardq_topic_check(src.ptr, src.length))
        finally:
            src.release()

    def topic_match(self, pattern: str | Buffer, topic: str | Buffer) -> bool:
        """True when ``topic`` matches ``pattern`` (``*`` one level, ``#`` the rest).

        Raises:
            InvalidPattern: the pattern is not valid.
        """
        p, t = _lib.Borrowed(_text(pattern)), _lib.Borrowed(_text(topic))
        try:
            rc = self._lib.shardq_topic_match(p.ptr, p.length, t.ptr, t.length)
        finally:
            p.release()
            t.release()
        if rc < 0:
            raise_for(rc, "topic_match", invalid=InvalidPattern)
        return bool(rc == 1)

    def topic_match_batch(self, pattern: str | Buffer, data: Buffer, spans: Buffer) -> bytes:
        """Match many topics held in ``data`` against one pattern.

        Args:
            pattern: the subscription pattern.
            data: buffer holding the topics.
            spans: u32 (offset, length) pairs into ``data`` (e.g. built from a
                frame table's topic columns); trusted to lie inside ``data``.

        Returns:
            One byte per topic: 1 match, 0 no match.

        Raises:
            InvalidPattern: the pattern is not valid.
        """
        pairs = memoryview(spans).cast("B").cast("I")
        n = len(pairs) // 2
        p = _lib.Borrowed(_text(pattern))
        b = _lib.Borrowed(data)
        s = _lib.Borrowed(pairs)
        out = ctypes.create_string_buffer(max(n, 1))
        try:
            rc = self._lib.shardq_topic_match_batch(
                p.ptr, p.length, b.ptr, s.ptr, n, ctypes.cast(out, ctypes.POINTER(ctypes.c_uint8)))
        finally:
            p.release()
            b.release()
            s.release()
        if rc:
            raise_for(rc, "topic_match_batch", invalid=InvalidPattern)
        return out.raw[:n]

    def crc32c(self, data: Buffer, crc: int = 0) -> int:
        """CRC32C of ``data``, continuing from ``crc``."""
        src = _lib.Borrowed(data)
        try:
            value: int = self._lib.shardq_crc32c(crc, src.ptr, src.length)
            return value
        finally:
            src.release()

    def crc32c_records(self, buf: Buffer, *, min_len: int, fill: bool = False) -> tuple[bool, int]:
        """Check (or, with ``fill``, compute and store) the CRC of every length-prefixed record.

        Records are ``u32 length, u32 crc, length - 4 covered bytes``, little-endian
        (the durable log's segment format); one call covers a whole buffer.

        Args:
            buf: the records; writable (a bytearray) with ``fill``.
            min_len: smallest valid length field (at least 4).
            fill: write each record's CRC instead of checking it.

        Returns:
            (True, end) when every whole record passed, ``end`` just past the last
            one (a record running past the buffer is left for the caller); or
            (False, position) of a record whose CRC differs or whose length is
            below ``min_len``.
        """
        src = _lib.Borrowed(buf, writable=fill)
        end = c_size_t()
        try:
            rc = self._lib.shardq_crc32c_records(src.ptr, src.length, min_len,
                                                 _lib.CRC_FILL if fill else 0, byref(end))
        finally:
            src.release()
        if rc == EBADMSG:
            return False, end.value
        if rc:
            raise_for(rc, "crc32c_records")
        return True, end.value

    def segment_encode(self, out: bytearray, records: bytes, start: int, ends: Buffer | array[int],
                       topic_data: bytes, topics: Buffer | array[int], priorities: bytes, first: int, *,
                       time_ns: int, base: int, next_offset: int, position: int,
                       last_position: int, sample_at: int, roll_at: int, interval: int
                       ) -> SegmentProgress:
        """Append log records to ``out`` as segment records (the durable log's format).

        Record ``i`` is ``records[ends[i - 1]:ends[i]]`` (record 0 starts at
        ``start``), its topic ``topic_data[topics[2i]:topics[2i] + topics[2i + 1]]``;
        ``ends`` and ``topics`` hold u32. Records from ``first`` on get
        consecutive offsets from ``next_offset``, the time ``time_ns`` and
        their CRC32C; the first one starting at or past ``sample_at``, and
        then one every ``interval`` bytes, gets an index entry. Stops early,
        before a record, once the segment (of base offset ``base``,
        ``position`` bytes) holds a record and reached ``roll_at`` bytes: the
        caller rolls to a new segment and calls again.

        Raises:
            InvalidArgument: a record or topic span is out of bounds.
        """
        count = len(ends)
        held = [_lib.Borrowed(memoryview(records)), _lib.Borrowed(ends),
                _lib.Borrowed(memoryview(topic_data)), _lib.Borrowed(topics)]
        try:
            a = _lib.SegmentArgs()
            a.size = ctypes.sizeof(a)
            a.index_interval = interval
            a.records, a.records_len, a.records_start = held[0].address, len(records), start
            a.record_ends = held[1].address
            a.topic_data, a.topic_data_len = held[2].address, len(topic_data)
            a.record_topics = held[3].address
            a.record_priorities = ctypes.cast(ctypes.c_char_p(priorities), ctypes.c_void_p).value
            a.record_count, a.next_record, a.time_ns = count, first, time_ns
            a.base, a.next_offset, a.position = base, next_offset, position
            a.last_position, a.sample_at, a.roll_at = last_position, sample_at, roll_at
            index = array("I")
            extra = 0
            while True:
                begun = ends[a.next_record - 1] if a.next_record else start
                # Enough when topics lie inside their records (as placed); else grown below.
                cap = 2 * (ends[count - 1] - begun) + (count - a.next_record) * \
                    (_lib.SEGMENT_HEADER + 16) + 64 + extra
                scratch = self._scratch(cap)
                entries = array("I", bytes(8 * (cap // max(interval, 1) + 2)))
                a.out, a.out_cap, a.out_len = ctypes.addressof(scratch), ctypes.sizeof(scratch), 0
                a.index, a.index_cap, a.index_len = entries.buffer_info()[0], len(entries) // 2, 0
                rc = self._lib.shardq_segment_encode(byref(a))
                out += memoryview(scratch)[:a.out_len]
                index += entries[:2 * a.index_len]
                if rc != ENOBUFS:
                    break
                if not a.out_len:
                    extra = 2 * extra + 65536  # one record with a topic larger than the guess
        finally:
            for borrowed in held:
                borrowed.release()
        if rc:
            raise_for(rc, "segment_encode")
        return SegmentProgress(a.next_record, a.next_offset, a.position, a.last_position, index)

    def entry_encode(self, sources: Sequence[EntrySourceLike], *, partitions: int, index: int,
                     term: int, time_ns: int, next_offsets: array[int]) -> tuple[bytes, array[int]]:
        """Encode a commit round as one EVENTS entry of the entry log (one call).

        Args:
            sources: the round's submissions as :meth:`.events.EventEncoder.place` made them: each has
                ``records`` (bytes), ``ends`` and ``topics`` (u32), ``priorities``
                and ``part_counts`` (records per partition, partition 0's first).
            partitions: the number of partitions.
            index: the entry's index.
            term: the entry's term.
            time_ns: ingest time of every record.
            next_offsets: u64 per partition (an ``array("Q")``), advanced.

        Returns:
            The entry (one new ``bytes``: the only copy made of the records
            besides the native scratch buffer), and its block rows,
            ``ENTRY_BLOCK_FIELDS`` int64 per partition with records:
            partition, first offset, count, position of the first record in
            the entry, bytes of the records, time.

        Raises:
            InvalidArgument: counts that do not add up, spans out of bounds,
                an entry over 4 GiB.
        """
        count = len(sources)
        table = (_lib.EntrySource * max(count, 1))()
        held: list[_lib.Borrowed] = []
        keep: list[object] = []
        try:
            for number, source in enumerate(sources):
                native = getattr(source, "native", None)
                if native is not None:  # placed by EventEncoder: its row is ready
                    table[number] = native
                    continue
                row = table[number]
                row.record_ends = _pointer(source.ends, held)
                row.record_topics = _pointer(source.topics, held)
                counts = array("I", source.part_counts)
                keep.append(counts)
                row.records = _pointer(source.records, held)
                row.records_len = len(source.records)
                row.record_priorities = _lib.address_of(source.priorities)
                row.part_counts = counts.buffer_info()[0]
                row.record_count = len(memoryview(source.ends).cast("B")) // 4
            blocks = array("q", bytes(8 * _lib.ENTRY_BLOCK_FIELDS * partitions))
            a = _lib.EntryArgs()
            a.size = ctypes.sizeof(a)
            a.partitions, a.index, a.term, a.time_ns = partitions, index, term, time_ns
            a.sources, a.source_count = ctypes.addressof(table), count
            a.next_offsets = next_offsets.buffer_info()[0]
            a.blocks, a.blocks_cap = blocks.buffer_info()[0], partitions
            scratch = self._scratch(64 * 1024)
            a.out, a.out_cap = ctypes.addressof(scratch), ctypes.sizeof(scratch)
            rc = self._lib.shardq_entry_encode(byref(a))
            if rc == ENOBUFS:  # the scratch buffer grows to what the entry needs, once
                scratch = self._scratch(a.out_len)
                a.out, a.out_cap = ctypes.addressof(scratch), ctypes.sizeof(scratch)
                rc = self._lib.shardq_entry_encode(byref(a))
        finally:
            for borrowed in held:
                borrowed.release()
        if rc:
            raise_for(rc, "entry_encode")
        del blocks[_lib.ENTRY_BLOCK_FIELDS * a.block_count:]
        return ctypes.string_at(scratch, a.out_len), blocks

    def entry_scan(self, payload: Buffer, partitions: int = 0, *, check: bool = False
                   ) -> EntryScan:
        """Blocks and producer-chosen ids of an EVENTS entry's payload (one call).

        Ids the server made (16 lowercase hex digits, ``-``, hex digits) and
        empty ones are left out. Records' CRCs are checked only with
        ``check`` (a payload from a peer; the log checked its own).

        Raises:
            MalformedInput: the payload is not groups of records of framed
                events, or (``check``) a record's CRC does not match.
        """
        scan = self._lib.shardq_entry_check if check else self._lib.shardq_entry_scan
        block_cap = max(partitions, 1)
        # Enough for most rounds; a larger one is scanned again with the totals found.
        id_cap = min(len(payload) // (_lib.SEGMENT_HEADER + 2) + 1, 4096)
        while True:
            blocks = array("q", [0]) * (_lib.ENTRY_BLOCK_FIELDS * block_cap)
            ids = self._id_rows(_lib.ENTRY_ID_FIELDS * id_cap)
            n_blocks, n_ids = c_size_t(0), c_size_t(0)
            held = _lib.Borrowed(payload)
            try:
                rc = scan(
                    held.ptr, len(payload), partitions, blocks.buffer_info()[0], block_cap,
                    byref(n_blocks), ids.buffer_info()[0], id_cap, byref(n_ids))
            finally:
                held.release()
            if rc != ENOBUFS:
                break
            block_cap, id_cap = n_blocks.value, n_ids.value
        if rc:
            raise_for(rc, "entry_scan")
        del blocks[_lib.ENTRY_BLOCK_FIELDS * n_blocks.value:]
        return EntryScan(blocks, ids[:_lib.ENTRY_ID_FIELDS * n_ids.value], payload)

    def _id_rows(self, values: int) -> array[int]:
        """This thread's reusable id rows of :meth:`entry_scan`: at least ``values`` int64.

        The rows found are copied out, so a scan neither allocates nor zero-fills
        room for the worst case (128 kB) each time.
        """
        rows: array[int] | None = getattr(self._local, "id_rows", None)
        if rows is None or len(rows) < values:
            rows = self._local.id_rows = array("q", bytes(8 * max(values, 4 * 4096)))
        return rows

    def hash(self, key: str | Buffer, topic: str | Buffer) -> int:
        """Partition hash: CRC32C of the key, or of the topic when the key is empty."""
        k, t = _lib.Borrowed(_text(key)), _lib.Borrowed(_text(topic))
        try:
            value: int = self._lib.shardq_hash(k.ptr, k.length, t.ptr, t.length)
            return value
        finally:
            k.release()
            t.release()

    def pb_fields(self, msg: Buffer, field: int) -> memoryview:
        """(offset, length) u32 pairs of every occurrence of length-delimited ``field``.

        Raises:
            MalformedInput: malformed wire data, or ``field`` with another wire type.
        """
        src = _lib.Borrowed(msg)
        try:
            capacity = 16
            while True:
                out = bytearray(capacity * 8)
                dst = _lib.Borrowed(out, writable=True)
                n = c_size_t()
                try:
                    rc = self._lib.shardq_pb_fields(src.ptr, src.length, field, dst.ptr, capacity, byref(n))
                finally:
                    dst.release()
                if rc != ENOBUFS:
                    break
                capacity = n.value
        finally:
            src.release()
        if rc:
            raise_for(rc, "pb_fields")
        return memoryview(out).cast("I")[:2 * n.value]

    def pb_events(self, msg: Buffer, field: int = 1) -> EventBatch:
        """Describe each Event of repeated field ``field`` (1 in PublishBatchRequest).

        Raises:
            MalformedInput: malformed wire data (``index`` names the event).
            NotUtf8: an id/topic/key is not UTF-8 (``index`` names the event).
        """
        src = _lib.Borrowed(msg)
        try:
            capacity = src.length // 2 + 1  # an Event takes at least 2 bytes
            dst = self._scratch(capacity * EVENT_FIELDS * 4)
            n = c_size_t()
            rc = self._lib.shardq_pb_events(src.ptr, src.length, field, dst, capacity, byref(n))
        finally:
            src.release()
        if rc:
            raise_for(rc, "pb_events", index=n.value)
        table = ctypes.string_at(dst, n.value * EVENT_FIELDS * 4)
        return EventBatch(n.value, memoryview(table).cast("I"))

    def pb_event(self, msg: Buffer) -> EventSpans:
        """Describe one encoded Event.

        Raises:
            MalformedInput: malformed wire data.
            NotUtf8: an id/topic/key is not UTF-8.
        """
        src = _lib.Borrowed(msg)
        spans = _lib.EventSpans()
        try:
            rc = self._lib.shardq_pb_event(src.ptr, src.length, byref(spans))
        finally:
            src.release()
        if rc:
            raise_for(rc, "pb_event", index=0)
        table = memoryview(bytearray(spans)).cast("I")
        return EventBatch(1, table).event(0)


__all__ = [
    "EVENT_FIELDS", "FRAME_FIELDS", "EventBatch", "EventSpans", "Frame",
    "FrameBatch", "FrameReason", "NativeWire", "SegmentProgress",
]
