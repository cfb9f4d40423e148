"""The durable entry log: one stream of segment files for every partition.

Threads: the event loop thread appends, applies, reads and keeps every index;
one I/O thread (:mod:`.entry_writer`) does every write, fsync, truncation and
deletion, in submission order. An append is one ``write`` of the batch's
bytes (already encoded: :mod:`.entries`) and, under ``fsync: always``, one
``fdatasync`` per group of appends in flight together, however many
partitions they touch. Appends pipeline: each returns a future at once, the
next may be submitted before the first is durable, and they complete in
order, moving the durable mark.

Readers of a partition see records of applied entries only (the applier
calls :meth:`DiskEntryLog.apply`). They read the newest from a bounded
in-memory tail cache (:mod:`.block_cache`) and older ones from the segments,
one ``pread`` per block (or per run of nearby blocks) found through the
partition's block index, never scanning other partitions' records.

Layout and formats: :mod:`.entry_data_dir`, :mod:`.entry_segment`,
:mod:`.entry_index`; start-up checks: :mod:`.entry_recovery`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from ..config.model import StorageConfig
from ..errors import EventStreamError
from . import hard_state as hard_state_file
from .block_cache import BlockCache
from .block_records import BlockDamaged, Collected, Gatherer, first_at_or_after
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
    walk,
)
from .entry_api import (
    DURABILITY_FSYNCED,
    DURABILITY_WRITTEN,
    Compacted,
    LogHalted,
    SegmentInfo,
    Unavailable,
)
from .entry_data_dir import CLEAN_FILE, LOG_DIR, SNAPSHOT_FILE, open_entry_data_dir, read_snapshot
from .entry_index import NO_TIME, BlockRun, IndexCache
from .entry_install import finish_install, install_log
from .entry_recovery import Floor, Recovered, read_clean_marker, recover, rescan
from .entry_segment import MAX_SEGMENT_BYTES, EntrySegment, encode_header
from .entry_writer import Job, Writer
from .failure import start_refused
from .fileops import FileOps, file_ops
from .hard_state import HARD_STATE_FILE, HardState
from .log import ReadResult
from .segment import Checksums, CorruptSegment

log = logging.getLogger(__name__)

READ_SPAN = 256 * 1024
"""Most bytes one ``pread`` of a partition read covers (nearby blocks are read together)."""
READ_BUDGET = 1024 * 1024
"""Most bytes one read of a partition takes from the files before returning."""
INDEX_CACHE_BYTES = 32 * 1024 * 1024
"""Default bound of the sealed segments' indexes held in memory."""


class DiskEntryLog:
    """An :class:`~.entry_api.EntryLog` kept in segment files under ``storage.data_dir``.

    Args:
        config: the ``storage`` section (``segment_bytes`` is the size of a
            segment of the whole log, ``tail_cache_bytes`` the tail cache).
        checksums: the CRC32C functions (libshardq's wire backend).
        ops: the file operations (default: :func:`.fileops.file_ops`).
        on_fsync: called with the seconds each fsync round took (I/O thread).
        on_durable: called with the new durable index each time it moves.
        on_halt: called once, on the event loop thread, with the error that
            halted the log (a failed periodic fsync has no append to fail).
        index_cache_bytes: most bytes of sealed segments' indexes kept in memory.
        test_bugs: test-only: known bugs of the I/O thread to switch back on, so a
            test proves its checks can fail (see :data:`.entry_writer.TEST_BUGS`).

    Raises:
        DataDirRefused: the data directory cannot be used (format, partitions, lock).
        CorruptSegment: damage found at start-up (file and byte position named).
        HardStateRefused: the hard-state file is damaged.
    """

    evicted = 0
    """Records evicted to bound memory: never, for the durable log (retention drops segments)."""

    def __init__(self, config: StorageConfig, checksums: Checksums, *,
                 ops: FileOps | None = None,
                 on_fsync: Callable[[float], None] | None = None,
                 on_durable: Callable[[int], None] | None = None,
                 on_halt: Callable[[LogHalted], None] | None = None,
                 index_cache_bytes: int = INDEX_CACHE_BYTES,
                 test_bugs: frozenset[str] = frozenset()) -> None:
        if not 0 < config.segment_bytes <= MAX_SEGMENT_BYTES // 2:
            raise ValueError(f"storage.segment_bytes must be between 1 and "
                             f"{MAX_SEGMENT_BYTES // 2}")
        self.partitions = config.partitions
        self.policy = config.fsync
        self.durability = DURABILITY_FSYNCED if config.fsync == "always" else DURABILITY_WRITTEN
        self.root = Path(config.data_dir)
        self.directory = self.root / LOG_DIR
        self._config = config
        self._checksums = checksums
        self._ops = ops if ops is not None else file_ops()
        self._on_durable = on_durable
        self._on_halt = on_halt
        self._cache_index = IndexCache(index_cache_bytes)
        try:
            self._lock_fd, self.meta = open_entry_data_dir(self.root, config.partitions,
                                                           self._ops)
        except OSError as error:
            raise start_refused(error, self.root) from None
        try:
            finish_install(self.root, self._ops)
            found = self._recover()
        except OSError as error:
            os.close(self._lock_fd)
            raise start_refused(error, self.root) from None
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._take(found)
        self._inflight: deque[EntryBatch] = deque()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._halted: LogHalted | None = None
        self._holding: list[Job] | None = None
        self._retain_from = 0
        self.dropped_segments = 0
        """Segments dropped by retention since the log was opened."""
        self.dropped_bytes = [0] * self.partitions
        """Bytes of each partition's records dropped by retention since the log was opened."""
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._writer: Writer | None = None
        self._on_fsync = on_fsync
        self._test_bugs = test_bugs

    def _recover(self) -> Recovered:
        """Check the log on disk (see :func:`.entry_recovery.recover`); read hard state and snapshot."""
        self._hard = hard_state_file.load(self.root / HARD_STATE_FILE, self._checksums)
        floors = [Floor(self._hard.commit, f"the commit index in {self.root / HARD_STATE_FILE}")]
        clean = read_clean_marker(self.root)
        if clean is not None:
            floors.append(clean)
        found = recover(self.directory, self.partitions, self._checksums, self._ops,
                        self._cache_index, floors)
        self._settle(found.segments[-1], clean is not None)
        self._snapshot = read_snapshot(self.root)
        return found

    def _take(self, found: Recovered) -> None:
        """Serve the log recovery found: every index and mark starts from it."""
        self._segments = found.segments
        self._terms = found.terms
        self._next = found.next_offsets
        self._last_times = found.last_times
        self._sealed_bases: list[list[int]] = []
        self._index_bases()
        last = self.last_index()
        self._durable = self._synced = last
        self._applied = self.first_index() - 1
        self._visible = [self._segments[0].base(p) for p in range(self.partitions)]
        self._cache = BlockCache(self.partitions, self._config.tail_cache_bytes)
        # (entry index, partition, first offset, count, time, entry buffer, start, size)
        self._unapplied: deque[tuple[int, int, int, int, int, bytes | bytearray, int, int]] = \
            deque()
        self._unapplied_bytes = 0

    def _settle(self, newest: EntrySegment, had_clean_marker: bool) -> None:
        """Make what recovery found durable before anything builds on it.

        The newest segment may hold writes of a previous process that were
        never synced (``fsync: interval``/``never``, or a crash before the
        fsync): from now on they count as durable. The clean-shutdown record
        is consumed: a stale one must never vouch for entries a later
        truncation removes.
        """
        ops = self._ops
        if newest.size:
            fd = ops.open(newest.path, os.O_WRONLY)
            try:
                ops.fsync(fd, newest.path)
            finally:
                ops.close(fd)
        if had_clean_marker:
            ops.unlink(self.root / CLEAN_FILE)
        ops.fsync_dir(self.directory)
        ops.fsync_dir(self.root)

    @property
    def fsyncs(self) -> int:
        """Fdatasync calls made on segment files since the log was opened."""
        return self._writer.fsyncs if self._writer is not None else 0

    def _submit(self, job: Job) -> None:
        """Hand a job to the I/O thread (held back while :meth:`append_many` queues a group)."""
        if self._holding is not None:
            self._holding.append(job)
        else:
            self._io().submit(job)

    def _io(self) -> Writer:
        if self._writer is None:
            loop = asyncio.get_running_loop()
            self._writer = Writer(self._ops, self.policy, self._report, loop.call_soon_threadsafe,
                                  self._on_fsync, self._test_bugs)
        return self._writer

    # -- the replicated log ---------------------------------------------------

    def first_index(self) -> int:
        """See :meth:`.entry_api.EntryLog.first_index`."""
        return self._segments[0].first_index

    def last_index(self) -> int:
        """See :meth:`.entry_api.EntryLog.last_index`."""
        return self._segments[-1].last_index

    def term(self, index: int) -> int:
        """See :meth:`.entry_api.EntryLog.term`."""
        if index < self.first_index() - 1:
            raise Compacted(index)
        if index > self.last_index():
            raise Unavailable(index)
        return self._terms.term(index)

    def entries(self, lo: int, hi: int, max_bytes: int) -> EntryBatch:
        """See :meth:`.entry_api.EntryLog.entries`."""
        if lo < self.first_index():
            raise Compacted(lo)
        if hi - 1 > self.last_index():
            raise Unavailable(hi - 1)
        if hi <= lo:
            return EntryBatch.empty(lo)
        durable = min(self._durable, self.last_index())
        parts: list[EntryBatch] = []
        budget = max_bytes
        at = lo
        while at < hi and (budget > 0 or not parts):
            if at > durable:  # in flight: from the batch in memory
                part = self._inflight_batch(at).take(at, hi, budget)
            else:
                part = self._read_entries(at, min(hi, durable + 1), budget)
            parts.append(part)
            budget -= len(part.data)
            at = part.last_index + 1
        return concat(parts)

    def _inflight_batch(self, index: int) -> EntryBatch:
        for batch in reversed(self._inflight):  # the newest after a truncation wins
            if batch.first_index <= index <= batch.last_index:
                return batch
        raise AssertionError(f"entry {index} is neither durable nor in flight")

    def _read_entries(self, lo: int, hi: int, budget: int) -> EntryBatch:
        """Entries from ``lo`` (durable) within one segment, at most ``budget`` bytes but one."""
        segment = self._segments[self._segment_number(lo)]
        positions = self._positions(segment)
        first = lo - segment.first_index
        stop = min(hi - segment.first_index, len(positions))
        start = positions[first]

        def end_of(i: int) -> int:
            return positions[i + 1] if i + 1 < len(positions) else segment.size

        last = first
        while last + 1 < stop and end_of(last + 1) - start <= budget:
            last += 1
        data = segment.pread(end_of(last) - start, start)
        walked = walk(data, self._checksums, first_index=lo, partitions=self.partitions)
        if walked.problem is not None or walked.batch.count != last - first + 1:
            problem = walked.problem or "shorter than its index says"
            raise CorruptSegment(segment.path, start + walked.end, problem)
        return walked.batch

    def _segment_number(self, index: int) -> int:
        firsts = [segment.first_index for segment in self._segments]
        return bisect_right(firsts, index) - 1

    def _positions(self, segment: EntrySegment) -> array[int]:
        """The entry positions of a segment (its index repaired if it fails a check)."""
        try:
            return segment.entry_positions(self._cache_index, self._checksums)
        except (OSError, ValueError) as exc:
            fresh = self._repair_index(segment, exc)
            assert fresh.positions is not None
            return fresh.positions

    def _run(self, segment: EntrySegment, partition: int) -> BlockRun:
        """A partition's block run in a segment (its index repaired if it fails a check)."""
        try:
            return segment.run(partition, self._cache_index, self._checksums)
        except (OSError, ValueError) as exc:
            fresh = self._repair_index(segment, exc)
            assert fresh.runs is not None
            return fresh.runs[partition]

    def _repair_index(self, segment: EntrySegment, problem: Exception) -> EntrySegment:
        """Index a sealed segment again from its file and rewrite its index file.

        Raises:
            CorruptSegment: the segment itself is damaged.
        """
        log.warning("the index of %s is not usable (%s): rebuilding it from the segment",
                    segment.path, problem)
        fresh = rescan(segment, self.partitions, self._checksums)
        data = fresh.seal(*self._terms.runs_between(segment.first_index, segment.last_index),
                          self._checksums)
        assert fresh.head is not None
        self._cache_index.forget(segment.first_index)
        segment.adopt(fresh.head)
        runs, positions = fresh.runs, fresh.positions
        fresh.seal_done(self._cache_index)
        fresh.runs, fresh.positions = runs, positions
        path = segment.index_path
        self._submit(Job(lambda job: self._ops.write_file(path, data, sync=True),
                              self.last_index()))
        return fresh

    def append(self, batch: EntryBatch) -> asyncio.Future[int]:
        """See :meth:`.entry_api.EntryLog.append`."""
        self._check_writable()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        if not batch.count:
            future.set_result(self.last_index())
            return future
        check_follows(batch, self.last_index(), self._terms.last_term, self._next,
                      self._last_times)
        segment = self._segments[-1]
        if segment.entry_count and (segment.size + len(batch.data) > MAX_SEGMENT_BYTES or
                                    segment.size >= self._config.segment_bytes or
                                    self._too_old(segment, batch)):
            segment = self._roll()
        new_file = segment.size == 0
        position = segment.header_size if new_file else segment.size
        segment.note(batch, position)
        for term_at, term in zip(range(batch.first_index, batch.last_index + 1), batch.terms):
            self._terms.note(term_at, term)
        self._note_blocks(batch)
        self._inflight.append(batch)
        header = encode_header(segment.first_index, segment.prev_term, segment.start_offsets,
                               self._checksums) if new_file else b""

        def write(job: Job) -> None:
            self._write(segment, header + batch.data if header else batch.data)

        def done(error: BaseException | None) -> None:
            self._inflight.popleft()
            if future.done():
                return
            if error is None:
                future.set_result(batch.last_index)
            else:
                future.set_exception(error)

        self._submit(Job(write, batch.last_index, done, wrote=segment,
                              new_dir=self.directory if new_file else None))
        return future

    def append_many(self, batches: Sequence[EntryBatch]) -> asyncio.Future[int]:
        """See :meth:`.entry_api.EntryLog.append_many`."""
        if len(batches) == 1:
            return self.append(batches[0])
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if not batches:
            future.set_result(self.last_index())
            return future
        held: list[Job] = []
        self._holding = held
        try:
            last = [self.append(batch) for batch in batches][-1]
        finally:
            self._holding = None
            if held:
                self._io().submit_all(held)
        return last

    def _too_old(self, segment: EntrySegment, batch: EntryBatch) -> bool:
        """True when ``batch`` is ``segment_ms`` newer than the segment's first events."""
        first, _ = segment.time_span()
        times = batch.blocks[B_TIME::BLOCK_FIELDS]
        return first is not None and bool(times) and \
            max(times) - first >= self._config.segment_ms * 1_000_000

    def _note_blocks(self, batch: EntryBatch) -> None:
        """Advance the partitions and keep the blocks for the tail cache until applied."""
        rows = batch.blocks
        for row in range(0, len(rows), BLOCK_FIELDS):
            partition, first, count = (rows[row + B_PARTITION], rows[row + B_FIRST_OFFSET],
                                       rows[row + B_COUNT])
            self._next[partition] = first + count
            self._last_times[partition] = rows[row + B_TIME]
            if self._cache.max_bytes:
                size = rows[row + B_SIZE]
                self._unapplied.append((batch.first_index + rows[row + B_ENTRY], partition,
                                        first, count, rows[row + B_TIME], batch.data,
                                        rows[row + B_POSITION], size))
                self._unapplied_bytes += size
        while self._unapplied_bytes > self._cache.max_bytes and self._unapplied:
            self._unapplied_bytes -= self._unapplied.popleft()[7]  # read from disk instead

    def _roll(self) -> EntrySegment:
        """Seal the active segment and start the next one (its file comes with its first write)."""
        old = self._segments[-1]
        index_bytes = old.seal(*self._terms.runs_between(old.first_index, old.last_index),
                               self._checksums)
        new = EntrySegment(self.directory, old.last_index + 1, self._terms.last_term, self._next)
        self._segments.append(new)
        self._index_bases()
        policy = self.policy

        def seal(job: Job) -> None:
            ops = self._ops
            if policy != "never" and old.write_fd is not None and old.synced < old.written:
                ops.fsync(old.write_fd, old.path)
                old.synced = old.written
            ops.write_file(old.index_path, index_bytes, sync=policy != "never")
            if old.write_fd is not None:
                ops.close(old.write_fd)
                old.write_fd = None
            self._io().forget(old)

        def sealed(error: BaseException | None) -> None:
            if error is None and old.head is not None and old.runs is not None:
                old.seal_done(self._cache_index)

        self._submit(Job(seal, old.last_index, sealed))
        return new

    def _write(self, segment: EntrySegment, data: bytes | bytearray) -> None:
        """Append to a segment file (I/O thread); cut back a partial write before raising."""
        ops = self._ops
        if segment.write_fd is None:
            segment.write_fd = ops.open(segment.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            segment.written = segment.synced = os.fstat(segment.write_fd).st_size
        try:
            ops.write(segment.write_fd, data, segment.path)
        except OSError:
            try:
                ops.truncate(segment.write_fd, segment.written, segment.path)
            except OSError:
                log.exception("cannot cut %s back to %d bytes after a failed write",
                              segment.path, segment.written)
            raise
        segment.written += len(data)

    def truncate_after(self, index: int) -> asyncio.Future[int]:
        """See :meth:`.entry_api.EntryLog.truncate_after`."""
        self._check_writable()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if index >= self.last_index():
            future.set_result(index)
            return future
        if index < self._applied:
            raise ValueError(f"cannot drop entries after {index}: entries up to "
                             f"{self._applied} are applied")
        if index < self.first_index() - 1:
            raise Compacted(index)
        keep = max(self._segment_number(index), 0) if index >= self.first_index() else 0
        removed = self._segments[keep + 1:]
        target = self._segments[keep]
        had_index = target.sealed
        try:
            target.unseal(self._cache_index, self._checksums)
        except (OSError, ValueError) as exc:
            raise CorruptSegment(target.index_path, 0, str(exc)) from None
        size = target.cut_after(index)
        del self._segments[keep + 1:]
        for segment in removed:
            segment.close_reader()
            self._cache_index.forget(segment.first_index)
        self._terms.cut_after(index)
        self._rewind_partitions()
        while self._unapplied and self._unapplied[-1][0] > index:
            self._unapplied_bytes -= self._unapplied.pop()[7]
        self._index_bases()

        def cut(job: Job) -> None:
            ops = self._ops
            for segment in reversed(removed):  # newest first: a crash leaves no gap
                if segment.write_fd is not None:
                    ops.close(segment.write_fd)
                    segment.write_fd = None
                self._io().forget(segment)
                ops.unlink(segment.path)
                ops.unlink(segment.index_path)
            if had_index:
                ops.unlink(target.index_path)
            if size:
                if target.write_fd is None:
                    target.write_fd = ops.open(target.path, os.O_WRONLY | os.O_APPEND)
                ops.truncate(target.write_fd, size, target.path)
                target.written = size
                target.synced = -1  # the new size must reach the disk
                job.wrote = target

        def done(error: BaseException | None) -> None:
            if not future.done():
                future.set_result(index) if error is None else future.set_exception(error)

        self._durable = min(self._durable, index)
        self._synced = min(self._synced, index)
        self._submit(Job(cut, index, done, new_dir=self.directory))
        return future

    def _rewind_partitions(self) -> None:
        """Each partition's next offset and last time, from the indexes (after a cut)."""
        active = self._segments[-1]
        for partition in range(self.partitions):
            self._next[partition] = active.next(partition)
            self._last_times[partition] = NO_TIME
            for segment in reversed(self._segments):
                if segment.block_count(partition):
                    run = self._run(segment, partition)
                    self._last_times[partition] = run.times[-1]
                    break
            self._cache.cut(partition, self._next[partition])

    def durable_index(self) -> int:
        """See :meth:`.entry_api.EntryLog.durable_index`."""
        return min(self._durable, self.last_index())

    async def wait_durable(self, index: int) -> None:
        """See :meth:`.entry_api.EntryLog.wait_durable`."""
        if self.durable_index() >= index:
            return
        if self._halted is not None:
            raise self._halted
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((index, future))
        await future

    def hard_state(self) -> HardState:
        """See :meth:`.entry_api.EntryLog.hard_state`."""
        return self._hard

    def set_hard_state(self, state: HardState) -> asyncio.Future[None]:
        """See :meth:`.entry_api.EntryLog.set_hard_state`."""
        self._check_writable()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._hard = state
        path = self.root / HARD_STATE_FILE

        def save(job: Job) -> None:
            hard_state_file.save(self._ops, path, state, self._checksums)

        def done(error: BaseException | None) -> None:
            if not future.done():
                future.set_result(None) if error is None else future.set_exception(error)

        self._submit(Job(save, self.last_index(), done, barrier=True))
        return future

    def _report(self, completed: list[Job], failed: list[Job], error: BaseException | None
                ) -> None:
        """A group of jobs came back from the I/O thread (event loop thread)."""
        for job in completed:
            if job.reported:
                continue
            job.reported = True
            self._durable = job.last_after
            if job.synced:
                self._synced = job.last_after
            if job.done is not None:
                job.done(None)
        if error is not None and self._halted is None:
            self._halted = LogHalted(f"the entry log stopped accepting writes after a failed "
                                     f"file operation: {error}")
            self._halted.__cause__ = error
            if self._on_halt is not None:
                self._on_halt(self._halted)
        for job in failed:
            if job.done is not None and not job.reported:
                job.reported = True
                job.done(self._halted)
        durable = self.durable_index()
        waiting, self._waiters = self._waiters, []
        for index, future in waiting:
            if future.done():
                continue
            if durable >= index:
                future.set_result(None)
            elif self._halted is not None:
                future.set_exception(self._halted)
            else:
                self._waiters.append((index, future))
        if completed and self._on_durable is not None:
            self._on_durable(durable)

    def _check_writable(self) -> None:
        if self._halted is not None:
            raise self._halted
        if self._closed:
            raise LogHalted("the entry log is closed")

    @property
    def halted(self) -> LogHalted | None:
        """The error that stopped the log's writes, if any."""
        return self._halted

    # -- applying -------------------------------------------------------------

    def applied_index(self) -> int:
        """See :meth:`.entry_api.EntryLog.applied_index`."""
        return self._applied

    def apply(self, index: int) -> None:
        """See :meth:`.entry_api.EntryLog.apply`."""
        if index <= self._applied:
            return
        if index > self.durable_index():
            raise ValueError(f"cannot apply up to {index}: entries are durable up to "
                             f"{self.durable_index()}")
        for partition in range(self.partitions):
            self._visible[partition] = self._next_at(partition, index)
        self._applied = index
        cache = self._cache
        while self._unapplied and self._unapplied[0][0] <= index:
            _, partition, first, count, time_ns, data, start, size = self._unapplied.popleft()
            self._unapplied_bytes -= size
            # A copy of its own: evicting it frees it, and it pins no entry buffer.
            # Sliced through a view: one copy, from a bytearray (a follower's) too.
            cache.add(partition, first, count, time_ns,
                      bytes(memoryview(data)[start:start + size]), 0, size)

    def _next_at(self, partition: int, index: int) -> int:
        """One past the partition's last offset in entries up to ``index``."""
        segment = self._segments[self._segment_number(index)]
        if index == segment.last_index:
            return segment.next(partition)
        end = self._positions(segment)[index - segment.first_index + 1]
        run = self._run(segment, partition)
        blocks = bisect_left(run.positions, end)
        return run.end_offset(blocks - 1) if blocks else run.base

    # -- one partition, for subscribers ---------------------------------------

    def next_offset(self, partition: int) -> int:
        """See :meth:`.entry_api.EntryLog.next_offset`."""
        return self._next[partition]

    def start_offset(self, partition: int) -> int:
        """See :meth:`.entry_api.EntryLog.start_offset`."""
        return self._segments[0].base(partition)

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
        if offset < self.start_offset(partition):
            raise LookupError(offset)
        visible = self._visible[partition]
        if offset >= visible or max_records <= 0:
            return
        limit = min(max_records, visible - offset)
        cached = self._cache.start(partition)
        if cached is not None and offset >= cached:
            self._cache.gather(partition, offset, limit, out)
            return
        try:
            self._read_files(partition, offset, limit, out)
        except CorruptSegment as exc:
            log.error("%s", exc)
            raise EventStreamError("SEGMENT_CORRUPT", f"partition {partition}: offset {offset} "
                                   "cannot be read: the log is damaged there") from None

    def _segment_of(self, partition: int, offset: int) -> int:
        """Number of the segment holding ``offset`` of ``partition``."""
        active = len(self._segments) - 1
        if offset >= self._segments[active].base(partition):
            return active
        return max(bisect_right(self._sealed_bases[partition], offset) - 1, 0)

    def _index_bases(self) -> None:
        """Each partition's first offset in every sealed segment (for :meth:`_segment_of`)."""
        sealed = self._segments[:-1]
        self._sealed_bases = [[segment.base(p) for segment in sealed]
                              for p in range(self.partitions)]

    def _read_files(self, partition: int, offset: int, limit: int, out: Gatherer) -> None:
        """Have ``out`` take records from the segment files: one pread per run of nearby blocks."""
        number = self._segment_of(partition, offset)
        taken = 0
        while len(out) < limit and not out.full and taken < READ_BUDGET \
                and number < len(self._segments):
            segment = self._segments[number]
            if not segment.block_count(partition):
                number += 1
                continue
            run = self._run(segment, partition)
            slot = max(run.slot_of(offset), 0)
            while slot < run.count and len(out) < limit and not out.full and taken < READ_BUDGET:
                last = slot  # read nearby blocks with one pread
                span_end = run.positions[slot] + run.sizes[slot]
                wanted = run.end_offset(slot) - offset
                while last + 1 < run.count and wanted < limit - len(out) and \
                        run.positions[last + 1] + run.sizes[last + 1] - run.positions[slot] \
                        <= READ_SPAN:
                    last += 1
                    span_end = run.positions[last] + run.sizes[last]
                    wanted = run.end_offset(last) - offset
                start = run.positions[slot]
                data = segment.pread(span_end - start, start)
                if len(data) != span_end - start:
                    raise CorruptSegment(segment.path, start + len(data),
                                         "the file ends before a block")
                for block in range(slot, last + 1):
                    at = run.positions[block] - start
                    try:
                        out.take(data, at, at + run.sizes[block], run.first_offset(block),
                                 min_offset=offset, limit=limit - len(out),
                                 checksums=self._checksums)
                    except BlockDamaged as exc:
                        raise CorruptSegment(segment.path, start + exc.position,
                                             exc.reason) from None
                    if len(out) >= limit or out.full:
                        break
                taken += len(data)
                offset = out.first_offset + len(out)
                slot = last + 1
            number += 1

    def offset_for_time(self, partition: int, time_ns: int) -> int:
        """See :meth:`.entry_api.EntryLog.offset_for_time`."""
        visible = self._visible[partition]
        found = self._cache.offset_for_time(partition, time_ns)
        if found is None:
            found = self._offset_for_time_in_files(partition, time_ns, visible)
        return min(found, visible)

    def _offset_for_time_in_files(self, partition: int, time_ns: int, visible: int) -> int:
        """Seek by time among visible blocks.

        The block before the first one at or after ``time_ns`` is the only one read.
        """
        candidate = None  # the last segment whose first visible block is older
        for segment in self._segments:
            first = segment.first_time(partition)
            if first is None:
                continue
            if first >= time_ns or segment.base(partition) >= visible:
                break
            candidate = segment
        if candidate is None:
            return self.start_offset(partition)
        run = self._run(candidate, partition)
        seen = bisect_left(run.offsets, visible - run.base)  # blocks that are visible
        slot = bisect_left(run.times, time_ns, 0, seen) - 1  # the block before any at time_ns
        start, size = run.positions[slot], run.sizes[slot]
        data = candidate.pread(size, start)
        found = first_at_or_after(data, 0, len(data), run.first_offset(slot), time_ns)
        return found if found is not None else run.end_offset(slot)

    def retained_bytes(self, partition: int) -> int:
        """See :meth:`.entry_api.EntryLog.retained_bytes`."""
        return sum(segment.bytes_of(partition) for segment in self._segments)

    # -- retention ------------------------------------------------------------

    def segments(self) -> list[SegmentInfo]:
        """See :meth:`.entry_api.EntryLog.segments`."""
        partitions = range(self.partitions)
        return [SegmentInfo(segment.first_index, segment.last_index, segment.size,
                            *segment.time_span(),
                            tuple(segment.bytes_of(p) for p in partitions))
                for segment in self._segments]

    def segment_count(self) -> int:
        """See :meth:`.entry_api.EntryLog.segment_count`."""
        return len(self._segments)

    def drop_before(self, index: int) -> int:
        """See :meth:`.entry_api.EntryLog.drop_before`."""
        self._check_writable()
        drop = 0
        for segment in self._segments[:-1]:
            if segment.last_index >= index or segment.last_index > self._applied:
                break
            drop += 1
        if not drop:
            return self.first_index()
        dropped = self._segments[:drop]
        del self._segments[:drop]
        self.dropped_segments += drop
        for segment in dropped:
            for partition in range(self.partitions):
                self.dropped_bytes[partition] += segment.bytes_of(partition)
        self._terms.drop_before(self.first_index() - 1)
        for segment in dropped:
            segment.close_reader()
            self._cache_index.forget(segment.first_index)
        for partition in range(self.partitions):
            self._cache.trim(partition, self.start_offset(partition))
        self._index_bases()

        def delete(job: Job) -> None:
            for segment in dropped:  # oldest first: a crash leaves no gap
                self._ops.unlink(segment.path)
                self._ops.unlink(segment.index_path)

        self._submit(Job(delete, self.last_index(), new_dir=self.directory))
        return self.first_index()

    # -- the application's snapshot ---------------------------------------------

    def snapshot(self) -> bytes | None:
        """See :meth:`.entry_api.EntryLog.snapshot`."""
        return self._snapshot

    def retain_from(self, index: int) -> None:
        """See :meth:`.entry_api.EntryLog.retain_from`."""
        self._retain_from = max(self._retain_from, index)

    def save_snapshot(self, data: bytes, index: int) -> asyncio.Future[None]:
        """See :meth:`.entry_api.EntryLog.save_snapshot`."""
        self._check_writable()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        path = self.root / SNAPSHOT_FILE

        def save(job: Job) -> None:
            self._ops.write_file(path, data, sync=True)

        def done(error: BaseException | None) -> None:
            if not future.done():
                future.set_result(None) if error is None else future.set_exception(error)

        self._snapshot = data
        # The segments' deletion is queued after the snapshot's write: a crash
        # between the two leaves files the snapshot already covers, never a gap.
        self._submit(Job(save, self.last_index(), done, barrier=True))
        if self._retain_from > self.first_index():
            self.drop_before(min(self._retain_from, index + 1))
        return future

    def install(self, *, first_index: int, prev_term: int, start_offsets: list[int],
                entries: bytes | memoryview, snapshot: bytes) -> asyncio.Future[None]:
        """Drop the whole log and start over with a leader's entries and snapshot (atomically).

        ``entries`` are encoded entries from ``first_index`` on (checked by
        recovery when the new log is opened: the same checks as at start-up),
        ``start_offsets`` each partition's next offset before them,
        ``prev_term`` the term of the entry before them, ``snapshot`` the new
        snapshot file's bytes. Nothing may be in flight. A crash leaves the old
        log or the new one (:mod:`.entry_install`). Entries up to the new last
        index are durable, none applied, when the future resolves.

        Raises:
            LogHalted: the log is halted; a failed file operation halts it.
            ValueError: appends are still in flight.
        """
        self._check_writable()
        if self._inflight:
            raise ValueError("cannot install a snapshot while appends are in flight")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        old = self._segments

        def run(job: Job) -> None:
            for segment in old:
                if segment.write_fd is not None:
                    self._ops.close(segment.write_fd)
                    segment.write_fd = None
            install_log(self.root, self._ops, self._checksums, first_index=first_index,
                        prev_term=prev_term, start_offsets=start_offsets, entries=entries,
                        snapshot=snapshot, bugs=self._test_bugs)

        def done(error: BaseException | None) -> None:
            if error is None:
                for segment in old:
                    segment.close_reader()
                    self._cache_index.forget(segment.first_index)
                try:
                    self._take(self._recover())
                except (OSError, CorruptSegment) as problem:
                    error = problem
            if future.done():
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        self._submit(Job(run, self.last_index(), done, barrier=True))
        return future

    def status(self) -> dict[str, object]:
        """The log's own figures for /status."""
        return {"fsync": self.policy, "segments": len(self._segments),
                "first_index": self.first_index(), "last_index": self.last_index(),
                "durable_index": self.durable_index(), "fsyncs": self.fsyncs,
                "retention_dropped_segments": self.dropped_segments}

    # -- background work and closing -------------------------------------------

    def start(self) -> None:
        """Start the periodic fsync of ``fsync: interval``."""
        if self.policy == "interval" and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sync_periodically(),
                                                                name="entry-log-sync")

    async def _sync_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._config.fsync_interval_ms / 1000)
            if self._halted is None and self._synced < self.last_index():
                self._submit(Job(None, self.last_index(), sync_after=True))

    def close(self) -> None:
        """See :meth:`.entry_api.EntryLog.close`."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        last = self.last_index()
        marker = json.dumps({"last_index": last}).encode()
        if self._writer is not None:
            if self._halted is None:
                self._writer.submit(Job(None, last, sync_after=True))
                self._writer.submit(Job(lambda job: self._ops.write_file(
                    self.root / CLEAN_FILE, marker, sync=True), last))
            self._writer.stop()
        elif self._halted is None:  # nothing was written since the start-up checks
            try:
                self._ops.write_file(self.root / CLEAN_FILE, marker, sync=True)
            except OSError:
                log.exception("cannot record the clean shutdown")
        for segment in self._segments:
            if segment.write_fd is not None:
                self._ops.close(segment.write_fd)
                segment.write_fd = None
            segment.close_reader()
        os.close(self._lock_fd)


__all__ = ["READ_BUDGET", "READ_SPAN", "DiskEntryLog"]
