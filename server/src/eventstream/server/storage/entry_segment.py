"""One segment file of the entry log: its header, entries and per-partition blocks.

Pure apart from reading its own file (``os.pread``); the log's I/O thread
does every write. A segment holds consecutive entries and is named by the
index of its first one (``00000000000000000001.log``). The file starts with a
header of ``40 + 8 * partitions`` bytes, little-endian::

    4s  magic "ESLG"
    u32 version (1)
    u64 first_index
    u64 prev_term       term of the entry before the first (0 for none)
    u32 partitions
    u32 0
    u64 x partitions    each partition's next offset when the segment starts
    u32 crc32c          of the bytes before it
    u32 0

then the entries back to back (:mod:`.entries`). The header makes the file
self-describing: once older segments are deleted by retention, the first one
still knows the term of the entry before it and where every partition's
offsets go on, also of a partition none of its entries holds.

While a segment is the active one (the one appended to), its block runs and
entry positions are in memory; once sealed, only its index head is, and the
rest is read from its ``.index`` file on demand (:mod:`.entry_index`).
"""

from __future__ import annotations

import os
import struct
from array import array
from collections.abc import Callable
from pathlib import Path

from .entries import (
    B_COUNT,
    B_FIRST_OFFSET,
    B_PARTITION,
    B_POSITION,
    B_SIZE,
    B_TIME,
    BLOCK_FIELDS,
    EntryBatch,
)
from .entry_index import (
    NO_TIME,
    S_BASE,
    S_BLOCKS,
    S_BYTES,
    S_FILE_OFFSET,
    S_FIRST_TIME,
    S_LAST_TIME,
    S_NEXT,
    SUMMARY_FIELDS,
    BlockRun,
    IndexCache,
    IndexHead,
    decode_index_head,
    encode_index,
    positions_from,
    run_from,
)
from .segment import Checksums

SEGMENT_MAGIC = b"ESLG"
SEGMENT_VERSION = 1
_HEAD = struct.Struct("<4sIQQII")
_CRC = struct.Struct("<II")
MAX_SEGMENT_BYTES = (1 << 32) - 1
"""Positions in the indexes are u32: a segment rolls before it would pass 4 GiB."""


def segment_name(first_index: int) -> str:
    """File name stem of the segment starting at ``first_index``."""
    return f"{first_index:020d}"


def header_size(partitions: int) -> int:
    """Bytes of a segment header for ``partitions`` partitions."""
    return _HEAD.size + 8 * partitions + _CRC.size


def encode_header(first_index: int, prev_term: int, start_offsets: list[int],
                  checksums: Checksums) -> bytes:
    """The header of a new segment file."""
    head = _HEAD.pack(SEGMENT_MAGIC, SEGMENT_VERSION, first_index, prev_term,
                      len(start_offsets), 0) + struct.pack(f"<{len(start_offsets)}Q",
                                                           *start_offsets)
    return head + _CRC.pack(checksums.crc32c(head), 0)


def decode_header(data: bytes | memoryview, partitions: int, checksums: Checksums
                  ) -> tuple[int, int, list[int]] | str:
    """Read a segment header: (first index, prev term, start offsets), or why it is not one.

    ``partitions`` is the log's partition count, which the header must record.
    """
    size = header_size(partitions)
    if len(data) < size:
        return "truncated"
    magic, version, first_index, prev_term, recorded, _ = _HEAD.unpack_from(data)
    if _CRC.unpack_from(data, size - _CRC.size)[0] != checksums.crc32c(data[:size - _CRC.size]):
        return "the segment header fails its CRC32C"
    if magic != SEGMENT_MAGIC or version != SEGMENT_VERSION:
        return f"not a segment header of version {SEGMENT_VERSION}"
    if recorded != partitions:
        return f"a header for {recorded} partitions, not {partitions}"
    return first_index, prev_term, list(struct.unpack_from(f"<{partitions}Q", data, _HEAD.size))


class EntrySegment:
    """A segment file and its indexes.

    ``size`` and ``last_index`` count every appended entry, those still in
    flight to the file included. Only the event loop thread changes the
    indexes; ``write_fd``, ``written`` and ``synced`` belong to the I/O thread.

    Args:
        directory: the log's directory.
        first_index: index of its first entry.
        prev_term: term of the entry before it.
        next_offsets: each partition's next offset when the segment starts.
    """

    def __init__(self, directory: Path, first_index: int, prev_term: int,
                 next_offsets: list[int]) -> None:
        self.first_index = first_index
        self.prev_term = prev_term
        self.start_offsets = list(next_offsets)
        self.header_size = header_size(len(next_offsets))
        self.path = directory / f"{segment_name(first_index)}.log"
        self.index_path = self.path.with_suffix(".index")
        self.size = 0
        """Bytes of the file, header included (0 until the first append creates it)."""
        self.last_index = first_index - 1
        self.positions: array[int] | None = array("I")
        self.runs: list[BlockRun] | None = [BlockRun(offset) for offset in next_offsets]
        self.head: IndexHead | None = None
        self.write_fd: int | None = None
        self.written = 0
        self.synced = 0
        self._read_fd: int | None = None

    @property
    def sealed(self) -> bool:
        """True once the segment takes no more entries and its index file is written."""
        return self.head is not None

    @property
    def entry_count(self) -> int:
        """Entries in the segment."""
        return self.last_index - self.first_index + 1

    # -- what a partition has in this segment (summary, no file read) ----------

    def _row(self, partition: int) -> array[int]:
        assert self.head is not None
        return self.head.summary[partition * SUMMARY_FIELDS:(partition + 1) * SUMMARY_FIELDS]

    def base(self, partition: int) -> int:
        """The partition's first offset in the segment (its next one when it has none)."""
        if self.runs is not None:
            return self.runs[partition].base
        return self._row(partition)[S_BASE]

    def next(self, partition: int) -> int:
        """One past the partition's last offset in the segment."""
        if self.runs is not None:
            return self.runs[partition].next
        return self._row(partition)[S_NEXT]

    def block_count(self, partition: int) -> int:
        """Blocks of the partition in the segment."""
        if self.runs is not None:
            return self.runs[partition].count
        return self._row(partition)[S_BLOCKS]

    def bytes_of(self, partition: int) -> int:
        """Record bytes of the partition in the segment."""
        if self.runs is not None:
            return self.runs[partition].bytes
        return self._row(partition)[S_BYTES]

    def first_time(self, partition: int) -> int | None:
        """Time of the partition's first block in the segment, if any."""
        if self.runs is not None:
            run = self.runs[partition]
            return run.times[0] if run.count else None
        value = self._row(partition)[S_FIRST_TIME]
        return None if value == NO_TIME else value

    def time_span(self) -> tuple[int | None, int | None]:
        """Times of the first and the newest EVENTS blocks of the segment."""
        firsts, lasts = [], []
        for partition in range(self.partition_count):
            if self.runs is not None:
                run = self.runs[partition]
                if run.count:
                    firsts.append(run.times[0])
                    lasts.append(run.times[-1])
            else:
                row = self._row(partition)
                if row[S_BLOCKS]:
                    firsts.append(row[S_FIRST_TIME])
                    lasts.append(row[S_LAST_TIME])
        return (min(firsts) if firsts else None), (max(lasts) if lasts else None)

    @property
    def partition_count(self) -> int:
        """Partitions the segment indexes."""
        if self.runs is not None:
            return len(self.runs)
        assert self.head is not None
        return self.head.partitions

    # -- indexes, loaded on demand when sealed ---------------------------------

    def run(self, partition: int, cache: IndexCache, checksums: Checksums) -> BlockRun:
        """The partition's block run.

        Raises:
            OSError: the index file cannot be read.
            ValueError: it fails its CRC (the caller rebuilds it).
        """
        if self.runs is not None:
            return self.runs[partition]

        def load() -> tuple[BlockRun, int]:
            row = self._row(partition)
            size = row[S_BLOCKS] * 20
            data = self._read_index(size, row[S_FILE_OFFSET])
            run = run_from(data, self.head, partition, checksums)  # type: ignore[arg-type]
            if run is None:
                raise ValueError(f"{self.index_path}: the block run of partition {partition} "
                                 "fails its CRC32C")
            return run, size + 200

        return cache.get((self.first_index, partition), load)  # type: ignore[no-any-return]

    def entry_positions(self, cache: IndexCache, checksums: Checksums) -> array[int]:
        """Position of each entry in the file.

        Raises:
            OSError: the index file cannot be read.
            ValueError: it fails its CRC (the caller rebuilds it).
        """
        if self.positions is not None:
            return self.positions
        head = self.head
        assert head is not None

        def load() -> tuple[array[int], int]:
            size = 4 * self.entry_count
            positions = positions_from(self._read_index(size, head.positions_offset), head,
                                       checksums)
            if positions is None:
                raise ValueError(f"{self.index_path}: the entry positions fail their CRC32C")
            return positions, size + 100

        return cache.get((self.first_index, -1), load)  # type: ignore[no-any-return]

    def _read_index(self, size: int, position: int) -> bytes:
        with open(self.index_path, "rb") as index:
            data = os.pread(index.fileno(), size, position)
        if len(data) != size:
            raise ValueError(f"{self.index_path} is shorter than its head says")
        return data

    # -- changes (event loop thread) -------------------------------------------

    def note(self, batch: EntryBatch, position: int) -> None:
        """Index a batch of entries written at ``position`` (checked to follow on)."""
        assert self.positions is not None and self.runs is not None
        ends = batch.ends
        self.positions.append(position)
        self.positions.extend(array("I", (position + end for end in ends[:-1])))
        rows = batch.blocks
        runs = self.runs
        for row in range(0, len(rows), BLOCK_FIELDS):
            runs[rows[row + B_PARTITION]].add(
                rows[row + B_FIRST_OFFSET], rows[row + B_COUNT], position + rows[row + B_POSITION],
                rows[row + B_SIZE], rows[row + B_TIME])
        self.size = position + ends[-1]
        self.last_index = batch.last_index

    def seal(self, term_starts: array[int], terms: array[int], checksums: Checksums) -> bytes:
        """Stop taking entries; return the index file's bytes.

        The indexes stay in memory until :meth:`seal_done` (the file is written
        by the I/O thread meanwhile).
        """
        assert self.positions is not None and self.runs is not None
        data = encode_index(self.first_index, self.last_index, self.prev_term, self.size,
                            self.positions, term_starts, terms, self.runs, checksums)
        head = decode_index_head(data, checksums)
        assert head is not None
        self.head = head
        return data

    def seal_done(self, cache: IndexCache) -> None:
        """The index file is written: keep only its head in memory."""
        assert self.head is not None and self.runs is not None and self.positions is not None
        for partition, run in enumerate(self.runs):
            cache.get((self.first_index, partition), _sized(run, run.count * 20 + 200))
        positions = self.positions
        cache.get((self.first_index, -1), lambda: (positions, 4 * len(positions) + 100))
        self.runs = None
        self.positions = None

    def adopt(self, head: IndexHead) -> None:
        """Become a sealed segment described by a checked index file head."""
        self.head = head
        self.size = head.size
        self.last_index = head.last_index
        self.runs = None
        self.positions = None

    def unseal(self, cache: IndexCache, checksums: Checksums) -> None:
        """Load every index into memory and take entries again (before a cut).

        Raises:
            OSError, ValueError: as :meth:`run`.
        """
        if self.head is None:
            return
        runs = [self.run(p, cache, checksums) for p in range(self.partition_count)]
        positions = self.entry_positions(cache, checksums)
        cache.forget(self.first_index)
        self.runs = [_copy_run(run) for run in runs]
        self.positions = array("I", positions)
        self.head = None

    def cut_after(self, index: int) -> int:
        """Forget the entries after ``index``; return the new file size."""
        assert self.positions is not None and self.runs is not None
        keep = index - self.first_index + 1
        if keep < len(self.positions):
            size = self.positions[keep]
            del self.positions[keep:]
            for run in self.runs:
                run.cut_from_position(size)
            self.size = size
        self.last_index = index
        return self.size

    # -- reading ----------------------------------------------------------------

    def pread(self, size: int, position: int) -> bytes:
        """Bytes of the file (fewer at its end)."""
        if self._read_fd is None:
            self._read_fd = os.open(self.path, os.O_RDONLY)
        return os.pread(self._read_fd, size, position)

    def close_reader(self) -> None:
        """Close the read descriptor, if open."""
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None


def _sized(value: object, size: int) -> Callable[[], tuple[object, int]]:
    """A loader for :meth:`IndexCache.get` of a value already at hand."""
    return lambda: (value, size)


def _copy_run(run: BlockRun) -> BlockRun:
    copy = BlockRun(run.base)
    copy.next, copy.bytes = run.next, run.bytes
    copy.offsets, copy.positions = array("I", run.offsets), array("I", run.positions)
    copy.sizes, copy.times = array("I", run.sizes), array("q", run.times)
    return copy


__all__ = ["MAX_SEGMENT_BYTES", "EntrySegment", "decode_header", "encode_header",
           "header_size", "segment_name"]
