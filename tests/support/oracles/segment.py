"""A plain-Python encoder and decoder of the entry log's record format (:mod:`...storage.segment`).

Pure: no I/O (CRC32C comes from the checksums passed in). Tests only: the
server encodes records natively (``NativeWire.entry_encode``); this is the
independent reference the property tests compare it with.
"""

from __future__ import annotations

import struct

from eventstream.server.storage.segment import HEAD, HEADER_SIZE, MIN_LENGTH, Checksums

FIXED = struct.Struct("<QqBH")       # offset, time_ns, priority, topic_len
_LENGTH = struct.Struct("<I")


def append_record(buf: bytearray, offset: int, time_ns: int, priority: int, topic: bytes,
                  record: bytes) -> None:
    """Append one record with a zero CRC field.

    Fill the CRCs of a batch with ``crc32c_records(..., fill=True)`` (one native call).
    """
    buf += HEAD.pack(HEADER_SIZE - 4 + len(topic) + len(record), 0, offset, time_ns, priority,
                     len(topic))
    buf += topic
    buf += record


def encode_record(checksums: Checksums, offset: int, time_ns: int, priority: int, topic: bytes,
                  record: bytes) -> bytes:
    """One record in the segment format, CRC included."""
    buf = bytearray()
    append_record(buf, offset, time_ns, priority, topic, record)
    checksums.crc32c_records(buf, min_len=MIN_LENGTH, fill=True)
    return bytes(buf)


class Decoded:
    """Records decoded from a byte range of a segment (parallel lists)."""

    __slots__ = ("end", "offsets", "positions", "priorities", "records", "times", "topics")

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.times: list[int] = []
        self.priorities = bytearray()
        self.topics: list[str] = []
        self.records: list[bytes] = []
        self.positions: list[int] = []
        self.end = 0
        """Position just past the last decoded record."""


def decode(buf: bytes, base_pos: int, checksums: Checksums, *, limit: int = 1 << 62,
           min_offset: int = 0, min_time: int | None = None,
           keep: bool = True) -> tuple[Decoded, str | None]:
    """Decode whole records from ``buf`` (which starts at file position ``base_pos``).

    Records with an offset below ``min_offset`` (or a time below ``min_time``)
    are checked but skipped. Stops after ``limit`` kept records, at the end of
    ``buf``, or at the first bad record.

    Returns:
        (what was decoded, None) or, at a bad record at position
        ``out.end``, the reason ("truncated" when the record runs past the end
        of ``buf``: the caller decides whether more bytes exist).
    """
    out = Decoded()
    # One native call checks every CRC; the loop below only splits the fields.
    crc_ok, good_end = checksums.crc32c_records(buf, min_len=MIN_LENGTH)
    pos = 0
    unpack_length, unpack_fixed = _LENGTH.unpack_from, FIXED.unpack_from
    problem = None
    while pos < good_end and len(out.records) < limit:
        end = pos + 4 + unpack_length(buf, pos)[0]
        offset, time_ns, priority, topic_len = unpack_fixed(buf, pos + 8)
        topic_end = pos + HEADER_SIZE + topic_len
        if topic_end > end:
            problem = f"topic length {topic_len} runs past the record"
            break
        if offset >= min_offset and (min_time is None or time_ns >= min_time):
            out.offsets.append(offset)
            out.times.append(time_ns)
            out.priorities.append(priority)
            out.positions.append(base_pos + pos)
            if keep:
                out.topics.append(buf[pos + HEADER_SIZE:topic_end].decode())
                out.records.append(buf[topic_end:end])
        pos = end
    if problem is None and pos == good_end and pos < len(buf):
        if crc_ok:
            problem = "truncated"
        else:
            length = unpack_length(buf, pos)[0]
            problem = (f"record length {length} is too small" if length < MIN_LENGTH
                       else "CRC32C mismatch")
    out.end = base_pos + pos
    return out, problem


__all__ = ["Decoded", "append_record", "decode", "encode_record"]
