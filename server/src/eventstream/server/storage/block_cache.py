"""Visible partition blocks held in memory: the entry log's tail cache.

Pure: no I/O or clock. Each partition keeps its newest applied blocks (runs
of records in the segment record format) in offset order, so live readers
take records from memory without a ``pread`` or a CRC pass; the disk entry
log bounds it in bytes (the oldest block of the partition holding the most
goes first, as in :mod:`.memory_log`), the in-memory entry log trims it by
retention. A block is kept as (buffer, start, end): its own bytes (the disk
log copies it, so evicting it frees it) or a span of a buffer it shares with
other blocks (the in-memory log keeps whole entries); offsets and times are in
arrays. No object per record, and only tuples of atomic values per block,
which the garbage collector stops scanning after its first pass.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right

from .block_records import Collected, Gatherer, first_at_or_after
from .log import ReadResult


class _Partition:
    __slots__ = ("bases", "blocks", "bytes", "head", "next", "times")

    def __init__(self) -> None:
        self.blocks: list[tuple[bytes, int, int] | None] = []
        self.bases = array("q")   # first offset of each block
        self.times = array("q")   # time of each block's first record
        self.head = 0             # number of the oldest kept block
        self.next = 0             # one past the newest kept offset
        self.bytes = 0

    def end_of(self, slot: int) -> int:
        return self.bases[slot + 1] if slot + 1 < len(self.bases) else self.next

    def drop_oldest(self) -> int:
        """Forget the oldest kept block; return its bytes."""
        block = self.blocks[self.head]
        assert block is not None
        self.blocks[self.head] = None
        self.head += 1
        size = block[2] - block[1]
        self.bytes -= size
        if self.head * 2 >= len(self.blocks):  # compact once half the slots are empty
            del self.blocks[:self.head], self.bases[:self.head], self.times[:self.head]
            self.head = 0
        return size


class BlockCache:
    """The newest visible blocks of each partition.

    Args:
        partitions: number of partitions.
        max_bytes: most bytes kept over all partitions (0: keep nothing).
    """

    def __init__(self, partitions: int, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._parts = [_Partition() for _ in range(partitions)]

    def add(self, partition: int, first_offset: int, count: int, time_ns: int,
            buf: bytes, start: int, end: int) -> None:
        """Keep the block ``buf[start:end]`` that just became visible.

        It must follow the kept ones, or the partition's cache starts over from it.
        """
        if not self.max_bytes:
            return
        part = self._parts[partition]
        if part.head < len(part.blocks) and first_offset != part.next:
            self.reset(partition)
            part = self._parts[partition]
        part.blocks.append((buf, start, end))
        part.bases.append(first_offset)
        part.times.append(time_ns)
        part.next = first_offset + count
        part.bytes += end - start
        self.bytes += end - start
        while self.bytes > self.max_bytes:
            largest = max(self._parts, key=lambda p: p.bytes)
            self.bytes -= largest.drop_oldest()

    def reset(self, partition: int) -> None:
        """Forget every block of ``partition``."""
        part = self._parts[partition]
        self.bytes -= part.bytes
        self._parts[partition] = _Partition()

    def trim(self, partition: int, offset: int) -> None:
        """Forget the blocks that end at or before ``offset``."""
        part = self._parts[partition]
        while part.head < len(part.blocks) and part.end_of(part.head) <= offset:
            self.bytes -= part.drop_oldest()

    def cut(self, partition: int, offset: int) -> None:
        """Forget the blocks from ``offset`` on (whole blocks: ``offset`` starts one)."""
        part = self._parts[partition]
        keep = max(bisect_left(part.bases, offset, part.head), part.head)
        for block in part.blocks[keep:]:
            assert block is not None
            part.bytes -= block[2] - block[1]
            self.bytes -= block[2] - block[1]
        del part.blocks[keep:], part.bases[keep:], part.times[keep:]
        part.next = min(part.next, offset)
        if part.head >= len(part.blocks):
            self.reset(partition)

    def start(self, partition: int) -> int | None:
        """Oldest offset kept for ``partition`` (None: nothing kept)."""
        part = self._parts[partition]
        return part.bases[part.head] if part.head < len(part.blocks) else None

    def end(self, partition: int) -> int | None:
        """One past the newest offset kept (None: nothing kept)."""
        part = self._parts[partition]
        return part.next if part.head < len(part.blocks) else None

    def oldest_time(self, partition: int) -> int | None:
        """Time of the oldest kept record of ``partition``, if any."""
        part = self._parts[partition]
        return part.times[part.head] if part.head < len(part.blocks) else None

    def retained_bytes(self, partition: int) -> int:
        """Bytes of ``partition``'s blocks kept."""
        return self._parts[partition].bytes

    def read(self, partition: int, offset: int, max_records: int) -> ReadResult:
        """Kept records from ``offset`` (at least :meth:`start`) on, at most ``max_records``."""
        out = Collected(offset)
        self.gather(partition, offset, max_records, out)
        return out.result()

    def gather(self, partition: int, offset: int, max_records: int, out: Gatherer) -> None:
        """Have ``out`` take kept records from ``offset`` (at least :meth:`start`) on.

        At most ``max_records``; fewer when ``out`` is full.
        """
        part = self._parts[partition]
        slot = max(bisect_right(part.bases, offset, part.head) - 1, part.head)
        while slot < len(part.blocks) and len(out) < max_records and not out.full:
            block = part.blocks[slot]
            assert block is not None
            out.take(*block, part.bases[slot], min_offset=offset, limit=max_records - len(out))
            slot += 1

    def offset_for_time(self, partition: int, time_ns: int) -> int | None:
        """First kept offset at or after ``time_ns``.

        None when it may be older than what is kept (``time_ns`` at or before
        :meth:`oldest_time`).
        """
        part = self._parts[partition]
        oldest = self.oldest_time(partition)
        if oldest is None or time_ns <= oldest:
            return None
        slot = bisect_left(part.times, time_ns, part.head) - 1   # the block before any at time_ns
        block = part.blocks[slot]
        assert block is not None
        found = first_at_or_after(*block, part.bases[slot], time_ns)
        if found is not None:
            return found
        return part.end_of(slot)


__all__ = ["BlockCache"]
