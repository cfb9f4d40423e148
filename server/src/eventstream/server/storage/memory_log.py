"""The in-memory committed log: bounded, and lost when the process exits.

Pure apart from the clock passed in by callers. It keeps at most
``max_bytes`` of records over all partitions, evicting the oldest records of
the partition that holds the most. Its acknowledgements say DURABILITY_MEMORY.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left

from .log import ReadResult

DURABILITY_MEMORY = 1  # eventstream.v1.Durability.DURABILITY_MEMORY
_EMPTY = [b""]


class _Partition:
    __slots__ = ("base", "head", "records", "topics", "priorities", "times",
                 "committed", "bytes")

    def __init__(self) -> None:
        self.base = 0          # offset of records[0]
        self.head = 0          # index of the oldest retained record
        self.records: list[bytes] = []
        self.topics: list[str] = []
        self.priorities = bytearray()
        self.times = array("q")
        self.committed = 0     # index one past the newest committed record
        self.bytes = 0

    def compact(self) -> None:
        """Drop evicted entries once they are half of the lists."""
        if self.head and self.head * 2 >= len(self.records):
            cut = self.head
            del self.records[:cut], self.topics[:cut], self.priorities[:cut], self.times[:cut]
            self.base += cut
            self.committed -= cut
            self.head = 0


class MemoryLog:
    """An :class:`~.log.EventLog` held in memory.

    The durable log also uses one as its cache of the live tail.

    Args:
        partitions: number of partitions.
        max_bytes: most record bytes kept over all partitions.
        start_offsets: offset of the first record of each partition (default 0).
    """

    durability = DURABILITY_MEMORY

    def __init__(self, partitions: int, max_bytes: int,
                 start_offsets: list[int] | None = None) -> None:
        self.partitions = partitions
        self.max_bytes = max_bytes
        self.evicted = 0
        self._parts = [_Partition() for _ in range(partitions)]
        for part, base in zip(self._parts, start_offsets or []):
            part.base = base
        self._bytes = 0
        self._last_time = [0] * partitions

    def next_offset(self, partition: int) -> int:
        part = self._parts[partition]
        return part.base + len(part.records)

    def append(self, partition: int, records: list[bytes], topics: list[str],
               priorities: bytes, time_ns: int) -> None:
        part = self._parts[partition]
        # Ingest times never go backwards within a partition, so seeking by
        # time can bisect even if the wall clock steps back.
        time_ns = max(time_ns, self._last_time[partition])
        self._last_time[partition] = time_ns
        size = sum(map(len, records))
        part.records.extend(records)
        part.topics.extend(topics)
        part.priorities.extend(priorities)
        part.times.extend([time_ns] * len(records))
        part.bytes += size
        self._bytes += size

    async def commit(self) -> None:
        self.publish()

    def publish(self) -> None:
        """Make the staged records visible now (what :meth:`commit` does)."""
        for part in self._parts:
            part.committed = len(part.records)
        while self._bytes > self.max_bytes and self._evict():
            pass

    def _evict(self) -> bool:
        part = max(self._parts, key=lambda p: p.bytes)
        # Evict about 1/16 of the partition at a time to keep this O(1) amortised.
        count = max(1, (part.committed - part.head) // 16)
        stop = min(part.head + count, part.committed)
        if stop == part.head:
            return False
        size = sum(map(len, part.records[part.head:stop]))
        self.evicted += stop - part.head
        # Let the evicted records go now, not at the next compaction: the
        # slots stay (offsets index the list) but hold nothing.
        part.records[part.head:stop] = _EMPTY * (stop - part.head)
        part.head = stop
        part.bytes -= size
        self._bytes -= size
        part.compact()
        return True

    def start_offset(self, partition: int) -> int:
        part = self._parts[partition]
        return part.base + part.head

    def high_watermark(self, partition: int) -> int:
        part = self._parts[partition]
        return part.base + part.committed

    def read(self, partition: int, offset: int, max_records: int) -> ReadResult:
        part = self._parts[partition]
        start = offset - part.base
        if start < part.head:
            raise LookupError(offset)
        stop = min(part.committed, start + max_records)
        if start >= stop:
            return ReadResult(offset, [], [], b"")
        return ReadResult(offset, part.records[start:stop], part.topics[start:stop],
                          bytes(part.priorities[start:stop]))

    def offset_for_time(self, partition: int, time_ns: int) -> int:
        part = self._parts[partition]
        index = bisect_left(part.times, time_ns, part.head, part.committed)
        return part.base + index

    def oldest_time(self, partition: int) -> int | None:
        """Ingest time of the oldest retained committed record, if any."""
        part = self._parts[partition]
        return part.times[part.head] if part.head < part.committed else None

    def retained_bytes(self, partition: int) -> int:
        return self._parts[partition].bytes

    def close(self) -> None:
        self._parts = [_Partition() for _ in range(self.partitions)]
