"""PureWire: the plain-Python reference of :class:`eventstream.server.native.NativeWire`.

Pure: no I/O. Written independently of the C code (by splitting, decoding and
slicing rather than by cursors) so the property tests comparing the two mean
something. Tests only: it is much slower.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence

from eventstream.server.native.errors import EBADMSG, EILSEQ, EINVAL, InvalidPattern, raise_for
from eventstream.server.native.wire import (
    EVENT_FIELDS,
    FRAME_FIELDS,
    Buffer,
    EntrySourceLike,
    EventBatch,
    EventSpans,
    FrameBatch,
    FrameReason,
    SegmentProgress,
)

_CRC_TABLE: list[int] = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)

_EVENT_ROW = struct.Struct("=12IqQ")
_SEGMENT_HEAD = struct.Struct("<IIQqBH")  # length, crc32c, offset, time_ns, priority, topic_len
_ENTRY_HEAD = struct.Struct("<IIQQB")     # length, crc32c, index, term, kind
_GROUP_HEAD = struct.Struct("<III")       # partition, count, bytes
ENTRY_EVENTS = 1
_LEN_FIELDS = {1, 2, 3, 4, 6, 7, 8}
_VARINT_FIELDS = {5, 9, 10}


class _Bad(Exception):
    """Malformed protobuf data; turned into the public exception once, by the caller."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _bytes(value: str | Buffer) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def crc32c(data: Buffer, crc: int = 0) -> int:
    """CRC32C, bit-reflected polynomial 0x82F63B78, continuing from ``crc``."""
    c = crc ^ 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in bytes(data):
        c = (c >> 8) ^ table[(c ^ byte) & 0xFF]
    return c ^ 0xFFFFFFFF


def topic_check(topic: bytes) -> FrameReason:
    """OK, or the first failing TOPIC_* check in the order EMPTY, NOT_UTF8, WILDCARD, EMPTY_LEVEL."""
    if not topic:
        return FrameReason.TOPIC_EMPTY
    try:
        topic.decode("utf-8")
    except UnicodeDecodeError:
        return FrameReason.TOPIC_NOT_UTF8
    if b"*" in topic or b"#" in topic:
        return FrameReason.TOPIC_WILDCARD
    if b"" in topic.split(b"/"):
        return FrameReason.TOPIC_EMPTY_LEVEL
    return FrameReason.OK


def pattern_valid(pattern: bytes) -> bool:
    """True when ``pattern`` is a valid subscription pattern."""
    if not pattern:
        return False
    levels = pattern.split(b"/")
    for index, level in enumerate(levels):
        if not level:
            return False
        if b"#" in level and (level != b"#" or index != len(levels) - 1):
            return False
        if b"*" in level and level != b"*":
            return False
    return True


def topic_match(pattern: bytes, topic: bytes) -> bool:
    """Match a topic against a valid pattern."""
    plevels, tlevels = pattern.split(b"/"), topic.split(b"/")
    for index, level in enumerate(plevels):
        if level == b"#":
            return True
        if index >= len(tlevels):
            return False
        if level == b"*":
            if not tlevels[index]:
                return False
        elif level != tlevels[index]:
            return False
    return len(plevels) == len(tlevels)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(10):
        if pos >= len(data):
            raise _Bad(EBADMSG)
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
    raise _Bad(EBADMSG)


def _fields(data: bytes, start: int = 0, end: int | None = None):
    """Yield (field, wire_type, value_start, value_end, varint) for each field."""
    end = len(data) if end is None else end
    view = data[:end]
    pos = start
    while pos < end:
        tag, pos = _varint(view, pos)
        field, wire_type = tag >> 3, tag & 7
        if tag > 0xFFFFFFFF or field == 0:
            raise _Bad(EBADMSG)
        if wire_type == 0:
            value, after = _varint(view, pos)
            yield field, wire_type, pos, after, value
            pos = after
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            if end - pos < size:
                raise _Bad(EBADMSG)
            yield field, wire_type, pos, pos + size, 0
            pos += size
        elif wire_type == 2:
            size, pos = _varint(view, pos)
            if size > end - pos:
                raise _Bad(EBADMSG)
            yield field, wire_type, pos, pos + size, 0
            pos += size
        else:
            raise _Bad(EBADMSG)


def _event(data: bytes, start: int, end: int) -> bytes:
    spans = {1: (0, 0), 2: (0, 0), 3: (0, 0), 4: (0, 0)}
    priority, seen = 0, 0
    for field, wire_type, lo, hi, value in _fields(data, start, end):
        if field in _LEN_FIELDS and wire_type != 2:
            raise _Bad(EBADMSG)
        if field in _VARINT_FIELDS and wire_type != 0:
            raise _Bad(EBADMSG)
        if field <= 10:
            seen |= 1 << field
        if field in (1, 2, 3):
            try:
                data[lo:hi].decode("utf-8")
            except UnicodeDecodeError:
                raise _Bad(EILSEQ) from None
        if field in spans:
            spans[field] = (lo, hi - lo)
        elif field == 5:
            low = value & 0xFFFFFFFF
            priority = low - (1 << 32) if low & 0x80000000 else low
        elif field in (6, 7, 8):
            for _ in _fields(data[:hi], lo, hi):
                pass
    key, topic = spans[3], spans[2]
    chosen = key if key[1] else topic
    digest = crc32c(data[chosen[0]:chosen[0] + chosen[1]])
    return _EVENT_ROW.pack(*spans[1], *spans[2], *spans[3], *spans[4], start, end - start,
                           digest, 0, priority, seen)


class PureWire:
    """The wire helpers in plain Python, with the results of :class:`.wire.NativeWire`."""

    crc32c_hardware = False

    def parse_frames(self, data: Buffer, *, max_frame: int, final: bool = False,
                     max_frames: int | None = None) -> FrameBatch:
        """See :meth:`.wire.NativeWire.parse_frames`."""
        buf = bytes(data)
        limit = len(buf) // 7 + 1 if max_frames is None else max(1, min(len(buf) // 7 + 1, max_frames))
        rows = array("I")
        pos = count = 0
        while pos < len(buf) and count < limit:
            avail = len(buf) - pos
            row = [pos, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            if avail < 4:
                if final:
                    row[1], row[2] = avail, FrameReason.TRUNCATED
                    rows.extend(row)
                    count += 1
                break
            (declared,) = struct.unpack_from(">I", buf, pos)
            if declared > max_frame:
                row[1], row[2] = min(declared + 4, 0xFFFFFFFF), FrameReason.TOO_LONG
                rows.extend(row)
                count += 1
                break
            if declared > avail - 4:
                if final:
                    row[1], row[2] = avail, FrameReason.TRUNCATED
                    rows.extend(row)
                    count += 1
                break
            row[1] = declared + 4
            body = buf[pos + 4:pos + 4 + declared]
            if declared < 3:
                row[2] = FrameReason.BAD_LENGTH
            else:
                priority, topic_len = body[0], int.from_bytes(body[1:3], "big")
                row[3] = priority
                if priority > 4:
                    row[2] = FrameReason.BAD_PRIORITY
                elif topic_len > declared - 3:
                    row[2] = FrameReason.BAD_LENGTH
                else:
                    topic = body[3:3 + topic_len]
                    row[4:8] = [pos + 7, topic_len, pos + 7 + topic_len, declared - 3 - topic_len]
                    row[2] = topic_check(topic)
                    if row[2] == FrameReason.OK:
                        row[8] = crc32c(topic)
            rows.extend(row)
            count += 1
            pos += 4 + declared
        table = memoryview(rows) if rows else memoryview(array("I"))
        return FrameBatch(count, pos, table[:count * FRAME_FIELDS])

    def topic_check(self, topic: str | Buffer) -> FrameReason:
        """See :meth:`.wire.NativeWire.topic_check`."""
        return topic_check(_bytes(topic))

    def topic_match(self, pattern: str | Buffer, topic: str | Buffer) -> bool:
        """See :meth:`.wire.NativeWire.topic_match`."""
        p = _bytes(pattern)
        if not pattern_valid(p):
            raise_for(EINVAL, "topic_match", invalid=InvalidPattern)
        return topic_match(p, _bytes(topic))

    def topic_match_batch(self, pattern: str | Buffer, data: Buffer, spans: Buffer) -> bytes:
        """See :meth:`.wire.NativeWire.topic_match_batch`."""
        p = _bytes(pattern)
        if not pattern_valid(p):
            raise_for(EINVAL, "topic_match_batch", invalid=InvalidPattern)
        buf = bytes(data)
        pairs = memoryview(spans).cast("B").cast("I").tolist()
        return bytes(topic_match(p, buf[pairs[i]:pairs[i] + pairs[i + 1]])
                     for i in range(0, len(pairs) - 1, 2))

    def crc32c(self, data: Buffer, crc: int = 0) -> int:
        """See :meth:`.wire.NativeWire.crc32c`."""
        return crc32c(data, crc)

    def crc32c_records(self, buf: Buffer, *, min_len: int, fill: bool = False) -> tuple[bool, int]:
        """See :meth:`.wire.NativeWire.crc32c_records`."""
        if min_len < 4:
            raise_for(EINVAL, "crc32c_records")
        view = memoryview(buf).cast("B")
        pos, size = 0, len(view)
        while size - pos >= 8:
            length = int.from_bytes(view[pos:pos + 4], "little")
            if length < min_len:
                return False, pos
            if length > size - pos - 4:
                break
            crc = crc32c(view[pos + 8:pos + 4 + length])
            if fill:
                view[pos + 4:pos + 8] = crc.to_bytes(4, "little")
            elif crc != int.from_bytes(view[pos + 4:pos + 8], "little"):
                return False, pos
            pos += 4 + length
        return True, pos

    def segment_encode(self, out: bytearray, records: bytes, start: int, ends: Buffer,
                       topic_data: bytes, topics: Buffer, priorities: bytes, first: int, *,
                       time_ns: int, base: int, next_offset: int, position: int,
                       last_position: int, sample_at: int, roll_at: int, interval: int
                       ) -> SegmentProgress:
        """See :meth:`.wire.NativeWire.segment_encode`."""
        ends = list(memoryview(ends).cast("B").cast("I"))
        spans = list(memoryview(topics).cast("B").cast("I"))
        index = array("I")
        i = first
        while i < len(ends):
            if position >= roll_at and next_offset > base:
                break
            begin = ends[i - 1] if i else start
            topic = topic_data[spans[2 * i]:spans[2 * i] + spans[2 * i + 1]]
            if not begin <= ends[i] <= len(records) or len(topic) != spans[2 * i + 1] \
                    or len(topic) > 0xFFFF:
                raise_for(EINVAL, "segment_encode")
            body = topic + records[begin:ends[i]]
            covered = _SEGMENT_HEAD.pack(0, 0, next_offset, time_ns, priorities[i],
                                         len(topic))[8:] + body
            out += _SEGMENT_HEAD.pack(4 + len(covered), crc32c(covered), 0, 0, 0, 0)[:8]
            out += covered
            if position >= sample_at:
                index.extend((next_offset - base, position))
                sample_at = position + interval
            last_position = position
            position += 8 + len(covered)
            next_offset += 1
            i += 1
        return SegmentProgress(i, next_offset, position, last_position, index)

    def entry_encode(self, sources: Sequence[EntrySourceLike], *, partitions: int, index: int,
                     term: int, time_ns: int, next_offsets: array) -> tuple[bytes, array]:
        """See :meth:`.wire.NativeWire.entry_encode`."""
        if partitions < 1:
            raise_for(EINVAL, "entry_encode")
        views = []
        for source in sources:
            ends = list(memoryview(source.ends).cast("B").cast("I"))
            spans = list(memoryview(source.topics).cast("B").cast("I"))
            counts = list(source.part_counts)
            if len(counts) < partitions or sum(counts[:partitions]) != len(ends):
                raise_for(EINVAL, "entry_encode")
            views.append((source, ends, spans, counts))
        entry = bytearray(_ENTRY_HEAD.size)
        rows = array("q")
        cursors = [0] * len(views)
        for partition in range(partitions):
            head = len(entry)
            entry += bytes(_GROUP_HEAD.size)
            first = offset = next_offsets[partition]
            for number, (source, ends, spans, counts) in enumerate(views):
                records = source.records
                for i in range(cursors[number], cursors[number] + counts[partition]):
                    begin = ends[i - 1] if i else 0
                    at, length = spans[2 * i], spans[2 * i + 1]
                    if not begin <= ends[i] <= len(records) or at + length > len(records) \
                            or length > 0xFFFF:
                        raise_for(EINVAL, "entry_encode")
                    covered = _SEGMENT_HEAD.pack(0, 0, offset, time_ns, source.priorities[i],
                                                 length)[8:] + records[at:at + length] + \
                        records[begin:ends[i]]
                    entry += _SEGMENT_HEAD.pack(4 + len(covered), crc32c(covered), 0, 0, 0,
                                                0)[:8] + covered
                    offset += 1
                cursors[number] += counts[partition]
            if offset == first:
                del entry[head:]
                continue
            size = len(entry) - head - _GROUP_HEAD.size
            _GROUP_HEAD.pack_into(entry, head, partition, offset - first, size)
            rows.extend((partition, first, offset - first, head + _GROUP_HEAD.size,
                         size, time_ns))
            next_offsets[partition] = offset
        if len(entry) - 4 > 0xFFFFFFFF:
            raise_for(EINVAL, "entry_encode")
        _ENTRY_HEAD.pack_into(entry, 0, len(entry) - 4, 0, index, term, ENTRY_EVENTS)
        struct.pack_into("<I", entry, 4, crc32c(memoryview(entry)[8:]))
        return bytes(entry), rows

    def hash(self, key: str | Buffer, topic: str | Buffer) -> int:
        """See :meth:`.wire.NativeWire.hash`."""
        k = _bytes(key)
        return crc32c(k) if k else crc32c(_bytes(topic))

    def pb_fields(self, msg: Buffer, field: int) -> memoryview:
        """See :meth:`.wire.NativeWire.pb_fields`."""
        if not 0 < field <= 0x1FFFFFFF:
            raise_for(EINVAL, "pb_fields")
        data = bytes(msg)
        out = array("I")
        try:
            for f, wire_type, lo, hi, _ in _fields(data):
                if f == field:
                    if wire_type != 2:
                        raise _Bad(EBADMSG)
                    out.extend((lo, hi - lo))
        except _Bad as bad:
            raise_for(bad.code, "pb_fields")
        return memoryview(out)

    def pb_events(self, msg: Buffer, field: int = 1) -> EventBatch:
        """See :meth:`.wire.NativeWire.pb_events`."""
        if not 0 < field <= 0x1FFFFFFF:
            raise_for(EINVAL, "pb_events")
        data = bytes(msg)
        rows = bytearray()
        count = 0
        try:
            for f, wire_type, lo, hi, _ in _fields(data):
                if f != field:
                    continue
                if wire_type != 2:
                    raise _Bad(EBADMSG)
                rows += _event(data, lo, hi)
                count += 1
        except _Bad as bad:
            raise_for(bad.code, "pb_events", index=count)
        table = memoryview(bytes(rows)).cast("I") if rows else memoryview(array("I"))
        return EventBatch(count, table[:count * EVENT_FIELDS])

    def pb_event(self, msg: Buffer) -> EventSpans:
        """See :meth:`.wire.NativeWire.pb_event`."""
        data = bytes(msg)
        try:
            row = _event(data, 0, len(data))
        except _Bad as bad:
            raise_for(bad.code, "pb_event", index=0)
        return EventBatch(1, memoryview(row).cast("I")).event(0)


__all__ = ["PureWire", "crc32c", "pattern_valid", "topic_check", "topic_match"]
