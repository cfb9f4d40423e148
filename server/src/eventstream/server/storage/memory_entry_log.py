"""The in-memory entry log: the same interface as the disk one, lost when the process exits.

Pure apart from the event loop's futures. For tests and ``storage.engine:
memory``. Every append is "durable" at once (its future is already
resolved; acknowledgements say DURABILITY_MEMORY). Each appended batch is one
retention unit; once the log holds more than ``max_bytes``, the oldest applied
units are dropped as :meth:`MemoryEntryLog.drop_before` would, down to
:data:`EVICT_TO` of ``max_bytes`` at once (each drop moves the lists of the
units kept: one unit per round would cost a pass over the whole log per round). Partition
reads take records straight from the entries' buffers (no copy).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence

from .block_cache import BlockCache
from .block_records import Collected, Gatherer
from .entries import (
    B_COUNT,
    B_ENTRY,
    B_FIRST_OFFSET,
    B_PARTITION,
    B_POSITION,
    B_SIZE,
    B_TIME,
    BLOCK_FIELDS,
    EntryBatch,
    check_follows,
    concat,
)
from .entry_api import DURABILITY_MEMORY, Compacted, LogHalted, SegmentInfo, Unavailable
from .entry_index import NO_TIME, TermRuns
from .hard_state import HardState
from .log import ReadResult

_UNBOUNDED = 1 << 62
EVICT_TO = 15 / 16
"""Share of ``max_bytes`` an eviction brings the log down to."""


class MemoryEntryLog:
    """An :class:`~.entry_api.EntryLog` held in memory.

    Args:
        partitions: number of partitions.
        max_bytes: most bytes of entries kept (the oldest applied go first).
    """

    durability = DURABILITY_MEMORY

    def __init__(self, partitions: int, max_bytes: int) -> None:
        self.partitions = partitions
        self.max_bytes = max_bytes
        self.evicted = 0
        """Records dropped to stay within ``max_bytes``."""
        self._chunks: list[EntryBatch] = []
        self._firsts: list[int] = []
        self._first = 1
        self._terms = TermRuns(0, 0)
        self._bytes = 0
        self._next = [0] * partitions
        self._start = [0] * partitions
        self._last_times = [NO_TIME] * partitions
        self._visible = [0] * partitions
        self._applied = 0
        self._hard = HardState()
        self._blocks = BlockCache(partitions, _UNBOUNDED)
        # (entry index, partition, first offset, count, time, buffer, start, size)
        self._unapplied: deque[tuple[int, int, int, int, int, bytes, int, int]] = deque()
        self._snapshot: bytes | None = None
        self._retain_from = 0
        self._block_starts: list[deque[tuple[int, int]]] = [deque() for _ in range(partitions)]
        """Per partition, (entry index, first offset) of each block held, oldest first."""

    # -- the replicated log ---------------------------------------------------

    def first_index(self) -> int:
        """See :meth:`.entry_api.EntryLog.first_index`."""
        return self._first

    def last_index(self) -> int:
        """See :meth:`.entry_api.EntryLog.last_index`."""
        return self._chunks[-1].last_index if self._chunks else self._first - 1

    def term(self, index: int) -> int:
        """See :meth:`.entry_api.EntryLog.term`."""
        if index < self._first - 1:
            raise Compacted(index)
        if index > self.last_index():
            raise Unavailable(index)
        return self._terms.term(index)

    def entries(self, lo: int, hi: int, max_bytes: int) -> EntryBatch:
        """See :meth:`.entry_api.EntryLog.entries`."""
        if lo < self._first:
            raise Compacted(lo)
        if hi - 1 > self.last_index():
            raise Unavailable(hi - 1)
        parts: list[EntryBatch] = []
        budget = max_bytes
        at = lo
        while at < hi and (budget > 0 or not parts):
            part = self._chunks[bisect_right(self._firsts, at) - 1].take(at, hi, budget)
            parts.append(part)
            budget -= len(part.data)
            at = part.last_index + 1
        return concat(parts) if parts else EntryBatch.empty(lo)

    def append(self, batch: EntryBatch) -> asyncio.Future[int]:
        """See :meth:`.entry_api.EntryLog.append`."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._append(batch)
        future.set_result(self.last_index())
        return future

    def append_many(self, batches: Sequence[EntryBatch]) -> asyncio.Future[int]:
        """See :meth:`.entry_api.EntryLog.append_many`."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        for batch in batches:
            self._append(batch)
        future.set_result(self.last_index())
        return future

    def _append(self, batch: EntryBatch) -> None:
        if not batch.count:
            return
        first_index = batch.first_index
        check_follows(batch, self.last_index(), self._terms.last_term, self._next,
                      self._last_times)
        data = batch.data
        if not isinstance(data, bytes):  # kept as it is: no one changes a bytes
            data = bytes(data)
            batch = EntryBatch(data, first_index, batch.ends, batch.terms, batch.kinds,
                               batch.blocks)
        self._chunks.append(batch)
        self._firsts.append(first_index)
        self._bytes += len(data)
        note = self._terms.note
        for index, term in enumerate(batch.terms, first_index):
            note(index, term)
        rows = batch.blocks
        next_offsets, last_times = self._next, self._last_times
        block_starts, unapplied = self._block_starts, self._unapplied
        for row in range(0, len(rows), BLOCK_FIELDS):
            partition, first, count, time_ns = (rows[row + B_PARTITION], rows[row + B_FIRST_OFFSET],
                                                rows[row + B_COUNT], rows[row + B_TIME])
            index = first_index + rows[row + B_ENTRY]
            next_offsets[partition] = first + count
            last_times[partition] = time_ns
            block_starts[partition].append((index, first))
            unapplied.append((index, partition, first, count, time_ns, data,
                              rows[row + B_POSITION], rows[row + B_SIZE]))

    def truncate_after(self, index: int) -> asyncio.Future[int]:
        """See :meth:`.entry_api.EntryLog.truncate_after`."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if index < self.last_index():
            if index < self._applied:
                raise ValueError(f"cannot drop entries after {index}: entries up to "
                                 f"{self._applied} are applied")
            if index < self._first - 1:
                raise Compacted(index)
            while self._chunks and self._chunks[-1].first_index > index:
                self._bytes -= len(self._chunks.pop().data)
                self._firsts.pop()
            if self._chunks and self._chunks[-1].last_index > index:
                chunk = self._chunks[-1]
                kept = chunk.slice(0, index - chunk.first_index + 1)
                self._bytes -= len(chunk.data) - len(kept.data)
                self._chunks[-1] = kept
            self._terms.cut_after(index)
            while self._unapplied and self._unapplied[-1][0] > index:
                self._unapplied.pop()
            for starts in self._block_starts:
                while starts and starts[-1][0] > index:
                    starts.pop()
            self._rewind_partitions()
        future.set_result(index)
        return future

    def _rewind_partitions(self) -> None:
        next_offsets = list(self._start)
        times = [NO_TIME] * self.partitions
        for chunk in self._chunks:
            rows = chunk.blocks
            for row in range(0, len(rows), BLOCK_FIELDS):
                partition = rows[row + B_PARTITION]
                next_offsets[partition] = rows[row + B_FIRST_OFFSET] + rows[row + B_COUNT]
                times[partition] = rows[row + B_TIME]
        self._next, self._last_times = next_offsets, times

    def durable_index(self) -> int:
        """See :meth:`.entry_api.EntryLog.durable_index`."""
        return self.last_index()

    async def wait_durable(self, index: int) -> None:
        """See :meth:`.entry_api.EntryLog.wait_durable`."""
        return None

    def hard_state(self) -> HardState:
        """See :meth:`.entry_api.EntryLog.hard_state`."""
        return self._hard

    def set_hard_state(self, state: HardState) -> asyncio.Future[None]:
        """See :meth:`.entry_api.EntryLog.set_hard_state`."""
        self._hard = state
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    # -- applying -------------------------------------------------------------

    def applied_index(self) -> int:
        """See :meth:`.entry_api.EntryLog.applied_index`."""
        return self._applied

    def apply(self, index: int) -> None:
        """See :meth:`.entry_api.EntryLog.apply`."""
        if index <= self._applied:
            return
        if index > self.last_index():
            raise ValueError(f"cannot apply up to {index}: entries are durable up to "
                             f"{self.last_index()}")
        while self._unapplied and self._unapplied[0][0] <= index:
            _, partition, first, count, time_ns, data, start, size = self._unapplied.popleft()
            self._blocks.add(partition, first, count, time_ns, data, start, start + size)
            self._visible[partition] = first + count
        self._applied = index
        if self._bytes > self.max_bytes:
            self._evict()

    def _evict(self) -> None:
        """Drop the oldest applied units down to :data:`EVICT_TO` of ``max_bytes`` (never the newest)."""
        chunks = self._chunks
        excess = self._bytes - int(self.max_bytes * EVICT_TO)
        drop = 0
        while drop < len(chunks) - 1 and excess > 0 and chunks[drop].last_index <= self._applied:
            excess -= len(chunks[drop].data)
            drop += 1
        if drop:
            before = sum(self._start)
            self.drop_before(chunks[drop - 1].last_index + 1)
            self.evicted += sum(self._start) - before

    # -- one partition, for subscribers ---------------------------------------

    def next_offset(self, partition: int) -> int:
        """See :meth:`.entry_api.EntryLog.next_offset`."""
        return self._next[partition]

    def start_offset(self, partition: int) -> int:
        """See :meth:`.entry_api.EntryLog.start_offset`."""
        return self._start[partition]

    def last_time(self, partition: int) -> int:
        """See :meth:`.entry_api.EntryLog.last_time`."""
        return self._last_times[partition]

    def high_watermark(self, partition: int) -> int:
        """See :meth:`.entry_api.EntryLog.high_watermark`."""
        return self._visible[partition]

    def read(self, partition: int, offset: int, max_records: int) -> ReadResult:
        """See :meth:`.entry_api.EntryLog.read`."""
        out = Collected(offset)
        self.select(partition, offset, max_records, out)
        return out.result()

    def select(self, partition: int, offset: int, max_records: int, out: Gatherer) -> None:
        """See :meth:`.entry_api.EntryLog.select`."""
        if offset < self._start[partition]:
            raise LookupError(offset)
        visible = self._visible[partition]
        if offset < visible and max_records > 0:
            self._blocks.gather(partition, offset, min(max_records, visible - offset), out)

    def offset_for_time(self, partition: int, time_ns: int) -> int:
        """See :meth:`.entry_api.EntryLog.offset_for_time`."""
        visible = self._visible[partition]
        found = self._blocks.offset_for_time(partition, time_ns)
        if found is None:
            start = self._blocks.start(partition)
            found = start if start is not None else visible
        return min(found, visible)

    def retained_bytes(self, partition: int) -> int:
        """See :meth:`.entry_api.EntryLog.retained_bytes`."""
        return self._blocks.retained_bytes(partition)

    # -- retention ------------------------------------------------------------

    def segments(self) -> list[SegmentInfo]:
        """See :meth:`.entry_api.EntryLog.segments`."""
        infos = []
        for chunk in self._chunks:
            times = chunk.blocks[B_TIME::BLOCK_FIELDS]
            sizes = [0] * self.partitions
            rows = chunk.blocks
            for row in range(0, len(rows), BLOCK_FIELDS):
                sizes[rows[row + B_PARTITION]] += rows[row + B_SIZE]
            infos.append(SegmentInfo(chunk.first_index, chunk.last_index, len(chunk.data),
                                     min(times) if times else None,
                                     max(times) if times else None, tuple(sizes)))
        return infos

    def segment_count(self) -> int:
        """See :meth:`.entry_api.EntryLog.segment_count`."""
        return len(self._chunks)

    def drop_before(self, index: int) -> int:
        """See :meth:`.entry_api.EntryLog.drop_before`."""
        chunks = self._chunks
        drop = 0
        while drop < len(chunks) - 1 and chunks[drop].last_index < index and \
                chunks[drop].last_index <= self._applied:
            drop += 1
        if not drop:
            return self._first
        for chunk in self._chunks[:drop]:
            self._bytes -= len(chunk.data)
        del self._chunks[:drop], self._firsts[:drop]
        self._first = self._chunks[0].first_index
        self._terms.drop_before(self._first - 1)
        # Each partition's first remaining block (a partition with none starts at its
        # next offset): the blocks' starts are kept per partition, oldest first, so
        # evicting after each round does not walk the whole log.
        starts = list(self._next)
        for partition, held in enumerate(self._block_starts):
            while held and held[0][0] < self._first:
                held.popleft()
            if held:
                starts[partition] = held[0][1]
        for partition, start in enumerate(starts):
            self._start[partition] = start
            self._blocks.trim(partition, start)
        return self._first

    def snapshot(self) -> bytes | None:
        """See :meth:`.entry_api.EntryLog.snapshot`."""
        return self._snapshot

    def retain_from(self, index: int) -> None:
        """See :meth:`.entry_api.EntryLog.retain_from`."""
        self._retain_from = max(self._retain_from, index)

    def save_snapshot(self, data: bytes, index: int) -> asyncio.Future[None]:
        """See :meth:`.entry_api.EntryLog.save_snapshot`."""
        self._snapshot = data
        if self._retain_from > self._first:
            self.drop_before(min(self._retain_from, index + 1))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def install(self, *, first_index: int, prev_term: int, start_offsets: list[int],
                entries: bytes | memoryview, snapshot: bytes) -> asyncio.Future[None]:
        """See :meth:`.entry_api.EntryLog.install`: refused (a replicated node keeps its log on disk).

        Raises:
            LogHalted: always.
        """
        raise LogHalted("a log kept in memory cannot install a leader's snapshot")

    def close(self) -> None:
        """See :meth:`.entry_api.EntryLog.close`."""
        self._chunks.clear()
        self._firsts.clear()
        self._unapplied.clear()


__all__ = ["MemoryEntryLog"]
