"""The in-memory committed log: bounded, and lost when the process exits.

Pure apart from the clock passed in by callers. It keeps at most
``max_bytes`` of records over all partitions, evicting the oldest batches of
the partition that holds the most. Its acknowledgements say DURABILITY_MEMORY.

Each appended :class:`~.log.RecordBatch` is kept whole, as one chunk: its
buffer and boundary arrays, never an object per record. Reads slice the
records out, and their topics only when the reader asks for them. A batch
that is part of a larger buffer (one partition's share
of a submission) is copied, so an evicted chunk frees all it held.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from typing import Any

from .log import ReadResult, RecordBatch

DURABILITY_MEMORY = 1  # eventstream.v1.Durability.DURABILITY_MEMORY

_TOPICS: dict[bytes, str] = {}   # encoded topic -> the one str kept for it
_TOPICS_LIMIT = 65536


def _topic(raw: bytes) -> str:
    """The str of an encoded topic, shared by every record of that topic."""
    topic = _TOPICS.get(raw)
    if topic is None:
        if len(_TOPICS) >= _TOPICS_LIMIT:
            _TOPICS.clear()
        topic = _TOPICS[raw] = raw.decode()
    return topic


# One appended batch, as a plain tuple of bytes and ints: the garbage
# collector stops tracking such a tuple after its first pass, and a full cache
# holds tens of thousands of chunks that every full collection would scan
# otherwise (an object per chunk cost 20-40 ms pauses). Record i is
# data[ends[i - 1] - shift:ends[i] - shift], record 0 starting at start.
_Chunk = tuple[Any, ...]
(_DATA, _START, _SHIFT, _ENDS, _TOPIC_DATA, _TOPIC_SHIFT, _TOPIC_SPANS, _PRIORITIES,
 _SIZE) = range(9)


def _chunk(batch: RecordBatch) -> _Chunk:
    data, start, end = batch.data, batch.start, batch.ends[-1]
    shift = topic_shift = 0
    if start or end != len(data):
        # Part of a larger buffer: keep a copy of just this part, so the
        # cache holds no more than it counts.
        shift = start
        data = bytes(data[start:end])
    topic_data = batch.topic_data
    if topic_data is batch.data:
        topic_data, topic_shift = data, shift
    # Bytes of its own (the u32 arrays as raw bytes), not views into the
    # encoder's buffers: memoryviews and arrays are objects the collector tracks.
    return (data, start, shift, _raw(batch.ends), bytes(topic_data), topic_shift,
            _raw(batch.topics), bytes(batch.priorities), end - start)


def _records_of(chunk: _Chunk, first: int, stop: int) -> list[bytes]:
    """Records ``first`` to ``stop - 1`` of ``chunk``."""
    data, shift, ends = chunk[_DATA], chunk[_SHIFT], memoryview(chunk[_ENDS]).cast("I")
    stops = ends[first:stop].tolist()
    starts = [(ends[first - 1] if first else chunk[_START]), *stops[:-1]]
    return [data[a - shift:b - shift] for a, b in zip(starts, stops)]


def _topics_of(chunk: _Chunk, first: int, stop: int) -> list[str]:
    """Topics of records ``first`` to ``stop - 1`` of ``chunk``."""
    names, shift = chunk[_TOPIC_DATA], chunk[_TOPIC_SHIFT]
    spans = memoryview(chunk[_TOPIC_SPANS]).cast("I")[2 * first:2 * stop].tolist()
    get = _TOPICS.get
    return [get(raw) or _topic(raw) for raw in
            [names[a - shift:a - shift + n] for a, n in zip(spans[::2], spans[1::2])]]


def _raw(values: memoryview | array[int]) -> bytes:
    """The bytes of a u32 array or view."""
    return bytes(memoryview(values).cast("B"))


class _Partition:
    __slots__ = ("bases", "bytes", "chunks", "committed", "head", "next", "times")

    def __init__(self, base: int) -> None:
        self.chunks: list[_Chunk | None] = []
        self.bases = array("q")    # offset of each chunk's first record
        self.times = array("q")    # ingest time of each chunk's records
        self.head = 0              # index of the oldest retained chunk
        self.committed = 0         # index one past the newest committed chunk
        self.next = base           # offset the next appended record gets
        self.bytes = 0

    def end_of(self, index: int) -> int:
        """Offset one past chunk ``index`` (the next chunk's base, or ``next``)."""
        return self.bases[index + 1] if index + 1 < len(self.bases) else self.next

    def compact(self) -> None:
        """Drop evicted chunks once they are half of the lists."""
        if self.head and self.head * 2 >= len(self.chunks):
            cut = self.head
            del self.chunks[:cut], self.bases[:cut], self.times[:cut]
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
        bases = list(start_offsets or []) + [0] * (partitions - len(start_offsets or []))
        self._parts = [_Partition(base) for base in bases]
        self._bytes = 0

    def next_offset(self, partition: int) -> int:
        """See :meth:`.log.EventLog.next_offset`."""
        return self._parts[partition].next

    def append(self, partition: int, batch: RecordBatch, time_ns: int) -> None:
        """See :meth:`.log.EventLog.append`."""
        part = self._parts[partition]
        # Ingest times never go backwards within a partition, so seeking by
        # time can bisect even if the wall clock steps back.
        if part.times:
            time_ns = max(time_ns, part.times[-1])
        chunk = _chunk(batch)
        part.chunks.append(chunk)
        part.bases.append(part.next)
        part.times.append(time_ns)
        part.next += batch.count
        part.bytes += chunk[_SIZE]
        self._bytes += chunk[_SIZE]

    async def commit(self) -> None:
        """See :meth:`.log.EventLog.commit`."""
        self.publish()

    def publish(self) -> None:
        """Make the appended records visible now (what :meth:`commit` does)."""
        for part in self._parts:
            part.committed = len(part.chunks)
        while self._bytes > self.max_bytes and self._evict():
            pass

    def _evict(self) -> bool:
        """Drop the oldest committed chunk of the partition holding the most."""
        part = max(self._parts, key=lambda p: p.bytes)
        if part.head >= part.committed:
            return False
        chunk = part.chunks[part.head]
        assert chunk is not None
        self.evicted += part.end_of(part.head) - part.bases[part.head]
        part.chunks[part.head] = None  # the slot stays (indexes follow) but holds nothing
        part.head += 1
        part.bytes -= chunk[_SIZE]
        self._bytes -= chunk[_SIZE]
        part.compact()
        return True

    def start_offset(self, partition: int) -> int:
        """See :meth:`.log.EventLog.start_offset`."""
        part = self._parts[partition]
        return part.bases[part.head] if part.head < len(part.chunks) else part.next

    def high_watermark(self, partition: int) -> int:
        """See :meth:`.log.EventLog.high_watermark`."""
        part = self._parts[partition]
        return part.bases[part.committed] if part.committed < len(part.chunks) else part.next

    def read(self, partition: int, offset: int, max_records: int) -> ReadResult:
        """See :meth:`.log.EventLog.read`."""
        part = self._parts[partition]
        if offset < self.start_offset(partition):
            raise LookupError(offset)
        records: list[bytes] = []
        ranges: list[tuple[_Chunk, int, int]] = []
        priorities = bytearray()
        index = max(bisect_right(part.bases, offset, part.head, part.committed) - 1, part.head)
        at = offset
        while index < part.committed and len(records) < max_records:
            chunk = part.chunks[index]
            assert chunk is not None
            base = part.bases[index]
            first = max(at - base, 0)
            stop = min(len(chunk[_ENDS]) // 4, first + max_records - len(records))
            if first < stop:
                records += _records_of(chunk, first, stop)
                ranges.append((chunk, first, stop))
                priorities += chunk[_PRIORITIES][first:stop]
            at = base + stop
            index += 1
        return ReadResult(offset, records,
                          lambda: [topic for chunk, first, stop in ranges
                                   for topic in _topics_of(chunk, first, stop)],
                          bytes(priorities))

    def offset_for_time(self, partition: int, time_ns: int) -> int:
        """See :meth:`.log.EventLog.offset_for_time`."""
        part = self._parts[partition]
        index = bisect_left(part.times, time_ns, part.head, part.committed)
        return part.bases[index] if index < part.committed else self.high_watermark(partition)

    def oldest_time(self, partition: int) -> int | None:
        """Ingest time of the oldest retained committed record, if any."""
        part = self._parts[partition]
        return part.times[part.head] if part.head < part.committed else None

    def retained_bytes(self, partition: int) -> int:
        """See :meth:`.log.EventLog.retained_bytes`."""
        return self._parts[partition].bytes

    def close(self) -> None:
        """See :meth:`.log.EventLog.close`."""
        self._parts = [_Partition(part.next) for part in self._parts]
