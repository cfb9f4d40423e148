"""One segment file of a partition: the on-disk record format and its sparse indexes.

Pure apart from reading its own file (``os.pread``); the durable log's I/O
thread does every write. A segment is named by the offset of its first record
(``00000000000000000042.log``) and holds consecutive offsets.

Record format, little-endian. Append-only: a change needs a new
:data:`FORMAT_VERSION`::

    u32 length    bytes after this field
    u32 crc32c    of every byte after this field
    u64 offset
    i64 time_ns   ingest time
    u8  priority  frame priority byte (0..4)
    u16 topic_len
    topic         UTF-8
    record        the framed event, exactly as the log was given it

Indexes, written when the segment is sealed (the active segment's live in
memory and are rebuilt by the start-up scan): ``.index`` holds (u32 offset
relative to the base, u32 byte position) and ``.timeindex`` (i64 time_ns, u32
relative offset), one entry every ``index_interval_bytes`` of records, the
first and the last record always included.
"""

from __future__ import annotations

import itertools
import os
import struct
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..native import SegmentProgress

FORMAT_VERSION = 1
"""Version of the data directory layout and record format."""

PREFIX = struct.Struct("<II")        # length, crc32c
FIXED = struct.Struct("<QqBH")       # offset, time_ns, priority, topic_len
HEAD = struct.Struct("<IIQqBH")     # PREFIX and FIXED in one: a record's whole header
HEADER_SIZE = HEAD.size
_LENGTH = struct.Struct("<I")
INDEX_ENTRY = struct.Struct("<II")   # relative offset, position
TIME_ENTRY = struct.Struct("<qI")    # time_ns, relative offset
READ_CHUNK = 256 * 1024

MIN_LENGTH = HEADER_SIZE - 4
"""Smallest valid length field: the CRC and fixed fields with an empty topic and record."""


class Checksums(Protocol):
    """The CRC32C and record encoding of the wire backend (:class:`..native.NativeWire`)."""

    def crc32c(self, data: bytes | bytearray | memoryview, crc: int = 0) -> int:
        """CRC32C of ``data``."""
        ...

    def crc32c_records(self, buf: bytes | bytearray | memoryview, *, min_len: int,
                       fill: bool = False) -> tuple[bool, int]:
        """Check (or fill in) the CRC of every length-prefixed record of ``buf``."""
        ...

    def segment_encode(self, out: bytearray, records: bytes, start: int,
                       ends: memoryview | array[int], topic_data: bytes, topics: memoryview | array[int],
                       priorities: bytes, first: int, *, time_ns: int, base: int,
                       next_offset: int, position: int, last_position: int, sample_at: int,
                       roll_at: int, interval: int) -> SegmentProgress:
        """Append log records to ``out`` in this format, CRCs and index entries included."""
        ...


class CorruptSegment(Exception):
    """A record that fails its checks; names the file and the byte position."""

    def __init__(self, path: Path | str, position: int, reason: str) -> None:
        super().__init__(f"segment {path} is corrupt at byte {position}: {reason}")
        self.path = str(path)
        self.position = position
        self.reason = reason


def segment_name(base: int) -> str:
    """File name stem of the segment starting at ``base``."""
    return f"{base:020d}"


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


class Segment:
    """A segment file and its in-memory sparse index.

    ``size``/``next_offset``/``last_time`` describe committed records (what
    readers may see); the ``pending_*`` fields include records appended but not
    yet committed. Only the event loop thread changes these fields.

    Args:
        directory: the partition's directory.
        base: offset of the segment's first record.
    """

    def __init__(self, directory: Path, base: int) -> None:
        self.base = base
        self.path = directory / f"{segment_name(base)}.log"
        self.size = 0
        self.next_offset = base
        self.first_time: int | None = None
        self.last_time = 0
        self.pending_size = 0
        self.pending_next = base
        self.pending_last_time = 0
        self.last_position = 0       # of the newest pending record
        self.rel_offsets = array("I")
        self.positions = array("I")
        self.times = array("q")
        self.write_fd: int | None = None   # owned by the I/O thread
        self._read_fd: int | None = None
        self.sealed = False

    @property
    def index_path(self) -> Path:
        """The offset index file."""
        return self.path.with_suffix(".index")

    @property
    def time_index_path(self) -> Path:
        """The time index file."""
        return self.path.with_suffix(".timeindex")

    @property
    def empty(self) -> bool:
        """True when nothing was appended or committed in the segment."""
        return self.pending_next == self.base

    def note(self, offset: int, position: int, time_ns: int, interval: int) -> None:
        """Account for a pending record; sample it into the index every ``interval`` bytes."""
        if self.first_time is None:
            self.first_time = time_ns
        if not self.positions or position - self.positions[-1] >= interval:
            self.rel_offsets.append(offset - self.base)
            self.positions.append(position)
            self.times.append(time_ns)
        self.last_position = position
        self.pending_last_time = time_ns

    def publish(self) -> None:
        """Make the pending records committed."""
        self.size = self.pending_size
        self.next_offset = self.pending_next
        self.last_time = self.pending_last_time

    def discard(self) -> None:
        """Forget the pending records (their write failed)."""
        self.pending_size = self.size
        self.pending_next = self.next_offset
        self.pending_last_time = self.last_time
        keep = bisect_left(self.rel_offsets, self.next_offset - self.base)
        del self.rel_offsets[keep:], self.positions[keep:], self.times[keep:]
        if self.next_offset == self.base:
            self.first_time = None

    def index_bytes(self) -> tuple[bytes, bytes]:
        """Contents of the index files, the last record included."""
        last_rel = self.pending_next - 1 - self.base
        if self.rel_offsets and self.rel_offsets[-1] != last_rel:
            self.rel_offsets.append(last_rel)
            self.positions.append(self.last_position)
            self.times.append(self.pending_last_time)
        # Interleave the columns and pack each file in one call (no Python per entry).
        count = len(self.rel_offsets)
        flat: list[int] = [0] * (2 * count)
        flat[0::2], flat[1::2] = self.rel_offsets, self.positions
        index = struct.pack(f"<{2 * count}I", *flat)
        flat[0::2], flat[1::2] = self.times, self.rel_offsets
        # A Struct of its own, not struct.pack: the module caches each format it compiles
        # (up to 100), and a format this long and new at every seal held ~1 MiB each.
        return index, struct.Struct("<" + "qI" * count).pack(*flat)

    def load_index(self, file_size: int, checksums: Checksums) -> bool:
        """Load the index files of a sealed segment; False when missing or not usable."""
        try:
            index = self.index_path.read_bytes()
            times = self.time_index_path.read_bytes()
        except FileNotFoundError:
            return False
        count = len(index) // INDEX_ENTRY.size
        if not count or len(index) % INDEX_ENTRY.size or len(times) != count * TIME_ENTRY.size:
            return False
        rel = array("I", (r for r, _ in INDEX_ENTRY.iter_unpack(index)))
        pos = array("I", (p for _, p in INDEX_ENTRY.iter_unpack(index)))
        tms = array("q", (t for t, _ in TIME_ENTRY.iter_unpack(times)))
        if list(rel) != [r for _, r in TIME_ENTRY.iter_unpack(times)] or rel[0] != 0 or pos[0]:
            return False
        if any(b <= a for a, b in itertools.pairwise(pos)) or pos[-1] >= file_size:
            return False
        # The last entry must be the last record, ending exactly at the end of the file.
        head = self._pread(min(READ_CHUNK, file_size - pos[-1]), pos[-1])
        length = PREFIX.unpack_from(head)[0] if len(head) >= 4 else 0
        tail = head if 4 + length <= len(head) else self._pread(4 + length, pos[-1])
        decoded, problem = decode(tail, pos[-1], checksums, keep=False)
        if problem or decoded.end != file_size or decoded.offsets != [self.base + rel[-1]]:
            return False
        self.rel_offsets, self.positions, self.times = rel, pos, tms
        self.size = self.pending_size = file_size
        self.next_offset = self.pending_next = self.base + rel[-1] + 1
        self.first_time, self.last_time = tms[0], tms[-1]
        self.pending_last_time = self.last_time
        self.last_position = pos[-1]
        return True

    def position_of(self, offset: int) -> int:
        """Position of the indexed record at or before ``offset``."""
        slot = bisect_right(self.rel_offsets, offset - self.base) - 1
        return self.positions[slot] if slot >= 0 else 0

    def position_of_time(self, time_ns: int) -> int:
        """Position of an indexed record before any record at or after ``time_ns``."""
        slot = bisect_left(self.times, time_ns) - 1
        return self.positions[slot] if slot >= 0 else 0

    def read(self, checksums: Checksums, position: int, *, limit: int, min_offset: int = 0,
             min_time: int | None = None, keep: bool = True) -> Decoded:
        """Decode committed records from ``position`` on (at least one if any remain).

        Raises:
            CorruptSegment: a record fails its checks.
        """
        chunk = READ_CHUNK
        while True:
            want = min(chunk, self.size - position)
            if want <= 0:
                out = Decoded()
                out.end = position
                return out
            buf = self._pread(want, position)
            decoded, problem = decode(buf, position, checksums, limit=limit, min_offset=min_offset,
                                      min_time=min_time, keep=keep)
            # "truncated" only means the chunk ended mid-record, unless it
            # reached the end of the committed bytes.
            if problem is not None and (problem != "truncated" or position + len(buf) >= self.size):
                raise CorruptSegment(self.path, decoded.end, problem)
            if problem == "truncated" and decoded.end == position:
                length = PREFIX.unpack_from(buf)[0] if len(buf) >= 4 else 0
                chunk = max(4 + length, chunk * 2)  # one record larger than the chunk
                continue
            if decoded.offsets or decoded.end >= self.size:
                return decoded
            position = decoded.end  # everything in this chunk was skipped
            chunk = READ_CHUNK

    def _pread(self, size: int, position: int) -> bytes:
        if self._read_fd is None:
            self._read_fd = os.open(self.path, os.O_RDONLY)
        return os.pread(self._read_fd, size, position)

    def close_reader(self) -> None:
        """Close the read descriptor, if open."""
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None


__all__ = [
    "FORMAT_VERSION",
    "HEAD",
    "HEADER_SIZE",
    "MIN_LENGTH",
    "Checksums",
    "CorruptSegment",
    "Decoded",
    "Segment",
    "append_record",
    "decode",
    "encode_record",
    "segment_name",
]
