"""The entry log's indexes: per-partition block runs, terms, and sealed index files.

Pure apart from nothing: callers read and write the files. A *block* is the
records of one partition in one EVENTS entry (see :mod:`.entries`); a
*block run* lists the blocks of one partition in one segment, so a reader of
that partition finds its records by offset or time and reads them with one
``pread`` per block, never touching other partitions' bytes.

Memory: a block costs 20 bytes (relative offset, position and size as u32,
time as i64) and an entry 4 bytes (its position) while its segment is the
active one. A sealed segment keeps only a summary in memory (48 bytes per
partition plus 16 per term change); its block runs and entry positions live
in its ``.index`` file, written at seal, and are read on demand into a
bounded cache (:class:`IndexCache`).

Index file of a sealed segment, little-endian::

    head     4s magic "ESIX", u32 version, u64 first_index, u64 last_index,
             u64 prev_term, u64 segment size, u64 position of the last entry,
             u32 partitions, u32 term runs, u32 crc32c of the positions, u32 0
    runs     term runs x (u64 first index, u64 term)
    table    partitions x (u64 base offset, u64 next offset, u64 bytes,
             i64 first time, i64 last time, u32 blocks, u32 crc32c of the columns)
    u32      crc32c of everything above
    u32 x entries               entry positions
    per partition, its columns: u32 relative offsets, u32 positions,
                                u32 sizes, i64 times (one per block)

A file that is missing, fails a check or does not match its segment (size,
indexes, the last entry) is rebuilt by a scan of the segment.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .segment import Checksums

INDEX_MAGIC = b"ESIX"
INDEX_VERSION = 1
INDEX_HEAD = struct.Struct("<4sIQQQQQIIII")
TERM_RUN = struct.Struct("<QQ")
PARTITION_ROW = struct.Struct("<QQQqqII")
_U32 = struct.Struct("<I")
BLOCK_BYTES = 20
"""Bytes of index per block: relative offset, position and size (u32), time (i64)."""
_LITTLE = sys.byteorder == "little"


def _le(values: array[int]) -> bytes:
    """The array's bytes, little-endian."""
    if not _LITTLE:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _from_le(typecode: str, data: bytes | memoryview) -> array[int]:
    values = array(typecode)
    values.frombytes(data)
    if not _LITTLE:
        values.byteswap()
    return values


class TermRuns:
    """The term of every index as runs: (first index, term) at each term change.

    Covers ``first_index - 1`` (the term before the first retained entry) to
    the last appended entry.
    """

    __slots__ = ("starts", "terms")

    def __init__(self, prev_index: int, prev_term: int) -> None:
        self.starts = array("Q", [prev_index])
        self.terms = array("Q", [prev_term])

    @property
    def last_term(self) -> int:
        """Term of the newest index."""
        return self.terms[-1]

    def term(self, index: int) -> int:
        """Term of ``index`` (the caller checks the range)."""
        return self.terms[bisect_right(self.starts, index) - 1]

    def note(self, index: int, term: int) -> None:
        """``index`` (the next one) has ``term``."""
        if term != self.terms[-1]:
            self.starts.append(index)
            self.terms.append(term)

    def extend(self, starts: array[int], terms: array[int]) -> None:
        """Add runs recorded elsewhere (in order, after the current ones)."""
        for start, term in zip(starts, terms):
            self.note(start, term)

    def cut_after(self, index: int) -> None:
        """Forget the runs that start after ``index``."""
        keep = max(bisect_right(self.starts, index), 1)
        del self.starts[keep:], self.terms[keep:]

    def drop_before(self, prev_index: int) -> None:
        """Keep only what is needed from ``prev_index`` on."""
        slot = bisect_right(self.starts, prev_index) - 1
        if slot > 0:
            del self.starts[:slot], self.terms[:slot]
        self.starts[0] = prev_index

    def runs_between(self, lo: int, hi: int) -> tuple[array[int], array[int]]:
        """The runs covering indexes ``lo`` to ``hi`` (first start clamped to ``lo``)."""
        first = bisect_right(self.starts, lo) - 1
        last = bisect_right(self.starts, hi)
        starts = array("Q", self.starts[first:last])
        starts[0] = lo
        return starts, array("Q", self.terms[first:last])


class BlockRun:
    """The blocks of one partition in one segment, in offset order.

    Offsets are relative to :attr:`base` (the partition's first offset in the
    segment, or its next offset when the segment holds none of it).
    """

    __slots__ = ("base", "bytes", "next", "offsets", "positions", "sizes", "times")

    def __init__(self, base: int) -> None:
        self.base = base
        self.next = base
        self.offsets = array("I")
        self.positions = array("I")
        self.sizes = array("I")
        self.times = array("q")
        self.bytes = 0

    @property
    def count(self) -> int:
        """Blocks in the run."""
        return len(self.offsets)

    def add(self, first_offset: int, count: int, position: int, size: int, time_ns: int) -> None:
        """A block that follows the run."""
        if not self.offsets:
            self.base = first_offset
        self.offsets.append(first_offset - self.base)
        self.positions.append(position)
        self.sizes.append(size)
        self.times.append(time_ns)
        self.next = first_offset + count
        self.bytes += size

    def first_offset(self, slot: int) -> int:
        """Offset of the first record of block ``slot``."""
        return self.base + self.offsets[slot]

    def end_offset(self, slot: int) -> int:
        """One past the last offset of block ``slot``."""
        return self.base + self.offsets[slot + 1] if slot + 1 < len(self.offsets) else self.next

    def slot_of(self, offset: int) -> int:
        """The block holding ``offset`` (-1 when it is before the run)."""
        return bisect_right(self.offsets, offset - self.base) - 1

    def cut_from_position(self, position: int) -> None:
        """Forget the blocks at or after ``position`` in the segment."""
        keep = bisect_right(self.positions, position - 1)
        if keep < len(self.offsets):
            self.next = self.base + self.offsets[keep]
            self.bytes -= sum(self.sizes[keep:])
            del self.offsets[keep:], self.positions[keep:], self.sizes[keep:], self.times[keep:]

    def columns(self) -> bytes:
        """The run's columns as stored in an index file."""
        return b"".join(_le(column) for column in
                        (self.offsets, self.positions, self.sizes, self.times))

    @classmethod
    def from_columns(cls, base: int, next_offset: int, data: bytes | memoryview) -> BlockRun:
        """A run read back from :meth:`columns`."""
        count = len(data) // BLOCK_BYTES
        run = cls(base)
        run.next = next_offset
        run.offsets = _from_le("I", data[:4 * count])
        run.positions = _from_le("I", data[4 * count:8 * count])
        run.sizes = _from_le("I", data[8 * count:12 * count])
        run.times = _from_le("q", data[12 * count:])
        run.bytes = sum(run.sizes)
        return run


# Columns of a sealed segment's summary row per partition (an array of int64).
SUMMARY_FIELDS = 8
(S_BASE, S_NEXT, S_BYTES, S_FIRST_TIME, S_LAST_TIME, S_BLOCKS, S_FILE_OFFSET, S_CRC) = range(
    SUMMARY_FIELDS)
NO_TIME = -(1 << 63)
"""First/last time of a partition with no block in the segment."""


class IndexHead:
    """What a sealed segment keeps in memory: its index file's head."""

    __slots__ = (
        "first_index",
        "last_index",
        "last_position",
        "partitions",
        "positions_crc",
        "positions_offset",
        "prev_term",
        "size",
        "summary",
        "term_starts",
        "terms",
    )

    def __init__(self, first_index: int, last_index: int, prev_term: int, size: int,
                 last_position: int, term_starts: array[int], terms: array[int], positions_crc: int,
                 summary: array[int], positions_offset: int) -> None:
        self.first_index = first_index
        self.last_index = last_index
        self.prev_term = prev_term
        self.size = size
        self.last_position = last_position
        self.partitions = len(summary) // SUMMARY_FIELDS
        self.term_starts = term_starts
        self.terms = terms
        self.positions_crc = positions_crc
        self.summary = summary
        self.positions_offset = positions_offset


def encode_index(first_index: int, last_index: int, prev_term: int, size: int,
                 positions: array[int], term_starts: array[int], terms: array[int],
                 runs: list[BlockRun],
                 checksums: Checksums) -> bytes:
    """The index file of a sealed segment (see the module docstring)."""
    positions_bytes = _le(positions)
    columns = [run.columns() for run in runs]
    head = INDEX_HEAD.pack(INDEX_MAGIC, INDEX_VERSION, first_index, last_index, prev_term, size,
                           positions[-1] if positions else 0, len(runs), len(terms),
                           checksums.crc32c(positions_bytes), 0)
    parts = [head]
    parts += [TERM_RUN.pack(start, term) for start, term in zip(term_starts, terms)]
    for run, column in zip(runs, columns):
        parts.append(PARTITION_ROW.pack(
            run.base, run.next, run.bytes, run.times[0] if run.count else NO_TIME,
            run.times[-1] if run.count else NO_TIME, run.count, checksums.crc32c(column)))
    head_bytes = b"".join(parts)
    return b"".join([head_bytes, _U32.pack(checksums.crc32c(head_bytes)), positions_bytes,
                     *columns])


def decode_index_head(data: bytes, checksums: Checksums) -> IndexHead | None:
    """The head of an index file (``data`` holds at least the head); None when bad."""
    if len(data) < INDEX_HEAD.size:
        return None
    (magic, version, first_index, last_index, prev_term, size, last_position, partitions,
     runs, positions_crc, _) = INDEX_HEAD.unpack_from(data)
    head_size = INDEX_HEAD.size + runs * TERM_RUN.size + partitions * PARTITION_ROW.size
    if magic != INDEX_MAGIC or version != INDEX_VERSION or len(data) < head_size + 4:
        return None
    if _U32.unpack_from(data, head_size)[0] != checksums.crc32c(data[:head_size]):
        return None
    starts, terms = array("Q"), array("Q")
    for start, term in TERM_RUN.iter_unpack(data[INDEX_HEAD.size:
                                                 INDEX_HEAD.size + runs * TERM_RUN.size]):
        starts.append(start)
        terms.append(term)
    summary = array("q")
    entries = last_index - first_index + 1
    file_offset = head_size + 4 + 4 * entries
    table = INDEX_HEAD.size + runs * TERM_RUN.size
    for base, next_offset, total, first_time, last_time, blocks, crc in PARTITION_ROW.iter_unpack(
            data[table:head_size]):
        summary.extend((base, next_offset, total, first_time, last_time, blocks, file_offset, crc))
        file_offset += blocks * BLOCK_BYTES
    return IndexHead(first_index, last_index, prev_term, size, last_position, starts, terms,
                     positions_crc, summary, head_size + 4)


def index_head_size(data: bytes) -> int:
    """Bytes of the head (its CRC included), from the fixed part in ``data``; 0 when unknown."""
    if len(data) < INDEX_HEAD.size:
        return 0
    partitions, runs = INDEX_HEAD.unpack_from(data)[7:9]
    return int(INDEX_HEAD.size + runs * TERM_RUN.size + partitions * PARTITION_ROW.size + 4)


def index_file_size(head: IndexHead) -> int:
    """Bytes the whole index file must have."""
    blocks = sum(head.summary[S_BLOCKS::SUMMARY_FIELDS])
    return head.positions_offset + 4 * (head.last_index - head.first_index + 1) + \
        blocks * BLOCK_BYTES


def positions_from(data: bytes, head: IndexHead, checksums: Checksums) -> array[int] | None:
    """Entry positions read from an index file's bytes; None when they fail their CRC."""
    if checksums.crc32c(data) != head.positions_crc:
        return None
    return _from_le("I", data)


def run_from(data: bytes, head: IndexHead, partition: int, checksums: Checksums) -> BlockRun | None:
    """A partition's block run read from an index file's bytes; None when it fails its CRC."""
    row = head.summary[partition * SUMMARY_FIELDS:(partition + 1) * SUMMARY_FIELDS]
    if checksums.crc32c(data) != row[S_CRC] & 0xFFFFFFFF:
        return None
    return BlockRun.from_columns(row[S_BASE], row[S_NEXT], data)


class IndexCache:
    """Block runs and entry positions of sealed segments, read on demand, bounded in bytes.

    Least recently used first out. Keys are (segment first index, partition),
    with partition -1 for the entry positions.

    Args:
        max_bytes: most bytes of index kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[tuple[int, int], tuple[Any, int]] = OrderedDict()

    def get(self, key: tuple[int, int], load: Callable[[], tuple[Any, int]]) -> Any:
        """The cached value of ``key``, loaded by ``load`` (value, bytes) when missing."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            return item[0]
        value, size = load()
        self._items[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped
        return value

    def forget(self, segment: int) -> None:
        """Drop every entry of one segment (deleted, truncated or reopened)."""
        for key in [key for key in self._items if key[0] == segment]:
            self.bytes -= self._items.pop(key)[1]


__all__ = ["BLOCK_BYTES", "NO_TIME", "SUMMARY_FIELDS", "BlockRun", "IndexCache", "IndexHead",
           "TermRuns", "decode_index_head", "encode_index", "index_file_size", "index_head_size",
           "positions_from", "run_from"]
