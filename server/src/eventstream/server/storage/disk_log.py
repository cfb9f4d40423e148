"""The durable committed log: segment files under ``storage.data_dir``.

Threads: the event loop thread appends, publishes, reads and applies
retention; one dedicated I/O thread does every fsync, file close and
deletion, in submission order. :meth:`DiskLog.commit` writes each partition's
pending bytes with one ``write`` and, under ``fsync: always``, one
``fdatasync`` per touched file before returning: that is the group commit
(the write path commits once per round, and new publishes gather in the lanes
meanwhile). Under ``fsync: interval`` and ``never`` a round that seals no
segment is written on the event loop thread itself: a ``write`` into the
page cache costs less than handing it to the I/O thread and back. Which
files await an fsync is known only to the event loop thread; the periodic
fsync takes that set along to the I/O thread.

Every change to a file goes through one :class:`~.fileops.FileOps`. A
storage error in a commit round, or a failed periodic fsync, puts the log in
a failed state (:attr:`DiskLog.failure`): nothing of the round becomes
visible, nothing is rolled back on disk, every later commit fails at once,
and no file is fsynced again by this process, not even at shutdown (after a
failed fsync the kernel may have dropped the pages it could not write, and a
second fsync would report success). The write path then stops accepting writes; the next
start's recovery decides what of the failed round is durable (a torn tail is
cut there, see :mod:`.recovery`).

Reads of the live tail come from a bounded in-memory cache (a
:class:`~.memory_log.MemoryLog`); older offsets are read from the segments.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config.model import StorageConfig
from ..errors import EventStreamError
from .failure import StorageFailed, describe
from .fileops import FileOps
from .log import ReadResult, RecordBatch
from .memory_log import MemoryLog
from .partition import Partition
from .recovery import open_data_dir, partition_dir, recover_partition, start_refused
from .segment import Checksums, CorruptSegment, Segment

log = logging.getLogger(__name__)

DURABILITY_WRITTEN = 2  # eventstream.v1.Durability.DURABILITY_WRITTEN
DURABILITY_FSYNCED = 3  # eventstream.v1.Durability.DURABILITY_FSYNCED
RETENTION_CHECK_SECONDS = 1.0


class DiskLog:
    """An :class:`~.log.EventLog` kept in segment files.

    Args:
        config: the ``storage`` section.
        checksums: the CRC32C functions (libshardq's wire backend).
        file_ops: every write, fsync, rename, truncation and deletion goes through it.
        clock_ns: wall clock for segment age and retention.
        on_fsync: called with the seconds each fsync round took (any thread).
        on_delete: called with (partition, segments, bytes) deleted by retention.
        on_failure: called (on the event loop) when a storage error outside a
            commit, a failed periodic fsync, put the log in its failed state.

    Raises:
        DataDirRefused: the data directory cannot be used (see :mod:`.recovery`),
            or a file operation of the start failed (the message names the
            file, the error and, for a full disk, the free space).
        CorruptSegment: a record before the tail fails its checks.
    """

    evicted = 0
    """Records lost to eviction: none, only retention deletes (whole segments)."""

    def __init__(self, config: StorageConfig, checksums: Checksums, *,
                 file_ops: FileOps | None = None,
                 clock_ns: Callable[[], int] = time.time_ns,
                 on_fsync: Callable[[float], None] | None = None,
                 on_delete: Callable[[int, int, int], None] | None = None,
                 on_failure: Callable[[StorageFailed], None] | None = None) -> None:
        self.partitions = config.partitions
        self.policy = config.fsync
        self.durability = DURABILITY_FSYNCED if config.fsync == "always" else DURABILITY_WRITTEN
        self.root = Path(config.data_dir)
        self.failure: StorageFailed | None = None
        """Set by the first storage error; from then on every commit fails."""
        # The first error, set at once by the thread that met it: the I/O thread may hold
        # more work queued before the event loop learns of it, and none of it may run.
        self._io_error: OSError | None = None
        self._ops = file_ops or FileOps()
        self._config = config
        self._clock_ns = clock_ns
        self._on_fsync = on_fsync
        self._on_delete = on_delete
        self.on_failure = on_failure
        try:
            self._lock_fd = open_data_dir(self.root, config.partitions, self._ops)
        except OSError as error:
            raise start_refused(error, self.root) from None
        try:
            self._parts = [
                Partition(partition_dir(self.root, p),
                          recover_partition(partition_dir(self.root, p), checksums,
                                            config.index_interval_bytes, file_ops=self._ops,
                                            forgive_unflushed=config.fsync != "always"),
                          checksums=checksums, segment_bytes=config.segment_bytes,
                          segment_ns=config.segment_ms * 1_000_000,
                          index_interval=config.index_interval_bytes)
                for p in range(config.partitions)]
            self._ops.fsync_dir(self.root)
        except OSError as error:
            os.close(self._lock_fd)
            raise start_refused(error, self.root) from None
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._cache = MemoryLog(config.partitions, config.tail_cache_bytes,
                                [part.high_watermark() for part in self._parts])
        self._pending: list[tuple[int, RecordBatch, int]] = []
        self._io = ThreadPoolExecutor(1, thread_name_prefix="eventstream-log-io")
        self._dirty: set[Segment] = set()      # written, not yet synced (loop thread only)
        self._dirty_dirs: set[Path] = set()    # got new files, not yet synced (loop thread only)
        self._task: asyncio.Task[None] | None = None
        self.deleted_segments = 0
        self.deleted_bytes = 0

    # -- the EventLog interface ---------------------------------------------

    def next_offset(self, partition: int) -> int:
        """See :meth:`.log.EventLog.next_offset`."""
        return self._parts[partition].active.pending_next

    def append(self, partition: int, batch: RecordBatch, time_ns: int) -> None:
        """See :meth:`.log.EventLog.append`."""
        part = self._parts[partition]
        # Ingest times never go backwards within a partition, so seeking by time can bisect.
        time_ns = max(time_ns, part.last_time)
        part.append(batch, time_ns)
        self._pending.append((partition, batch, time_ns))

    async def commit(self) -> None:
        """See :meth:`.log.EventLog.commit`.

        Raises:
            StorageFailed: this round (or an earlier storage error) failed; the
                log stays failed and every later commit raises it too.
        """
        if self.failure is not None:
            raise self.failure
        writes: list[tuple[Segment, bytearray]] = []
        seals: list[tuple[Segment, bytes, bytes]] = []
        for part in self._parts:
            for number, (segment, buf) in enumerate(part.pending):
                writes.append((segment, buf))  # not appended to until this commit returns
                if number < len(part.pending) - 1:
                    seals.append((segment, *segment.index_bytes()))
        pending, self._pending = self._pending, []
        if writes:
            sync = self.policy == "always"
            try:
                if sync or seals:
                    touched, new_dirs = await asyncio.get_running_loop().run_in_executor(
                        self._io, self._write, writes, seals, sync)
                else:
                    touched, new_dirs = self._write(writes, seals, sync)
            except BaseException as error:
                # Nothing of this round becomes visible, and nothing on disk is undone:
                # whatever of it reached the files, the next start's recovery decides
                # (whole records are kept, a torn one is cut). After a cancellation (only
                # at stop, before close) the I/O thread may still finish writing it.
                for part in self._parts:
                    part.discard()
                if isinstance(error, OSError):
                    self.failure = self.failure or StorageFailed(error, self.root)
                    raise self.failure from error
                raise
            if not sync:
                self._dirty.update(touched)
                self._dirty_dirs.update(new_dirs)
                self._dirty.difference_update(segment for segment, _, _ in seals)
        for part in self._parts:
            part.publish()
        for partition, batch, time_ns in pending:
            self._cache.append(partition, batch, time_ns)
        self._cache.publish()
        self._retain()

    def start_offset(self, partition: int) -> int:
        """See :meth:`.log.EventLog.start_offset`."""
        return self._parts[partition].start_offset()

    def high_watermark(self, partition: int) -> int:
        """See :meth:`.log.EventLog.high_watermark`."""
        return self._parts[partition].high_watermark()

    def read(self, partition: int, offset: int, max_records: int) -> ReadResult:
        """See :meth:`.log.EventLog.read`."""
        part = self._parts[partition]
        if offset < part.start_offset():
            raise LookupError(offset)
        if offset >= self._cache.start_offset(partition):
            return self._cache.read(partition, offset, max_records)
        try:
            return part.read(offset, max_records)
        except CorruptSegment as exc:
            log.error("%s", exc)
            raise EventStreamError("SEGMENT_CORRUPT", f"partition {partition}: offset {offset} "
                                   "cannot be read: the log is damaged there") from None

    def offset_for_time(self, partition: int, time_ns: int) -> int:
        # Strictly after the cache's oldest time: records of the same instant
        # may also sit on disk just before the cache.
        """See :meth:`.log.EventLog.offset_for_time`."""
        oldest = self._cache.oldest_time(partition)
        if oldest is not None and time_ns > oldest:
            return self._cache.offset_for_time(partition, time_ns)
        return self._parts[partition].offset_for_time(time_ns)

    def retained_bytes(self, partition: int) -> int:
        """See :meth:`.log.EventLog.retained_bytes`."""
        return self._parts[partition].bytes

    def segment_count(self, partition: int) -> int:
        """Segment files of ``partition``."""
        return len(self._parts[partition].segments)

    def status(self) -> dict[str, object]:
        """What /status shows of the durable log."""
        return {"data_dir": str(self.root), "fsync": self.policy,
                "segments": [len(part.segments) for part in self._parts],
                "retention_deleted_segments": self.deleted_segments,
                "retention_deleted_bytes": self.deleted_bytes}

    def close(self) -> None:
        """See :meth:`.log.EventLog.close`."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        dirty, dirs = self._take_dirty()
        if self.failure is not None:
            dirty, dirs = set(), set()  # no fsync after a storage error (see the module doc)
        self._io.submit(self._close_files, dirty, dirs).result()
        self._io.shutdown(wait=True)
        for part in self._parts:
            for segment in part.segments:
                segment.close_reader()
        os.close(self._lock_fd)

    # -- background work ------------------------------------------------------

    def start(self) -> None:
        """Start the task that syncs under ``fsync: interval`` and applies retention by age."""
        self._task = asyncio.get_running_loop().create_task(self._maintain(),
                                                            name="log-maintenance")

    async def _maintain(self) -> None:
        interval = self.policy == "interval"
        tick = self._config.fsync_interval_ms / 1000 if interval else RETENTION_CHECK_SECONDS
        loop = asyncio.get_running_loop()
        last_retention = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            if interval and self.failure is None and (self._dirty or self._dirty_dirs):
                dirty, dirs = self._take_dirty()
                try:
                    await loop.run_in_executor(self._io, self._sync, dirty, dirs)
                except OSError as error:  # never retried (see the module docstring)
                    self.failure = self.failure or StorageFailed(error, self.root)
                    log.error("periodic fsync failed: %s", describe(error, self.root))
                    if self.on_failure is not None:
                        self.on_failure(self.failure)
            if time.monotonic() - last_retention >= RETENTION_CHECK_SECONDS:
                last_retention = time.monotonic()
                self._retain()

    def _take_dirty(self) -> tuple[set[Segment], set[Path]]:
        """The files written since the last fsync; forgotten here."""
        taken = self._dirty, self._dirty_dirs
        self._dirty, self._dirty_dirs = set(), set()
        return taken

    def _retain(self) -> None:
        config = self._config
        now = self._clock_ns()
        for number, part in enumerate(self._parts):
            removed = part.expire(now, config.retention_ms * 1_000_000, config.retention_bytes)
            if not removed:
                continue
            size = sum(segment.size for segment in removed)
            for segment in removed:
                segment.close_reader()
                self._dirty.discard(segment)
            self.deleted_segments += len(removed)
            self.deleted_bytes += size
            if self._on_delete is not None:
                self._on_delete(number, len(removed), size)
            log.info("retention: deleted %d segments (%d bytes) of partition %d",
                     len(removed), size, number)
            self._io.submit(self._delete, removed)

    # -- the I/O thread (and the loop thread for rounds written inline) --------

    def _write(self, writes: list[tuple[Segment, bytearray]],
               seals: list[tuple[Segment, bytes, bytes]], sync: bool
               ) -> tuple[list[Segment], set[Path]]:
        """Write a round; with ``sync``, fsync it.

        Returns the files written and the directories that got a new file (both synced when ``sync``).
        """
        if self._io_error is not None:
            raise self._io_error  # an earlier write or fsync failed while this round waited
        touched: list[Segment] = []
        new_dirs: set[Path] = set()
        ops = self._ops
        # On any error the round stops here and the log fails: a partial record left
        # behind is never appended after (the next start cuts it away).
        try:
            for segment, data in writes:
                if segment.write_fd is None:
                    if not segment.path.exists():
                        new_dirs.add(segment.path.parent)
                    segment.write_fd = ops.open(segment.path,
                                                os.O_WRONLY | os.O_CREAT | os.O_APPEND)
                touched.append(segment)
                if data:
                    ops.write(segment.write_fd, data, segment.path)
            if sync:
                self._sync(set(touched), new_dirs)
            for segment, index, times in seals:
                self._seal(segment, index, times, synced=sync)
        except OSError as error:
            self._io_error = self._io_error or error
            raise
        return touched, new_dirs

    def _sync(self, segments: set[Segment], directories: set[Path]) -> None:
        """Fdatasync written files (those still open) and sync directories with new files."""
        if not segments and not directories:
            return
        if self._io_error is not None:
            raise self._io_error  # never an fsync after a failed write or fsync
        started = time.perf_counter()
        try:
            for segment in segments:
                if segment.write_fd is not None:  # else sealed (synced) or deleted meanwhile
                    self._ops.fsync(segment.write_fd, segment.path)
            for directory in directories:
                self._ops.fsync_dir(directory)
        except OSError as error:
            self._io_error = error
            raise
        if self._on_fsync is not None:
            self._on_fsync(time.perf_counter() - started)

    def _seal(self, segment: Segment, index: bytes, times: bytes, *, synced: bool) -> None:
        """A rolled segment: sync it (unless ``synced``), write its indexes, close it."""
        sync = self.policy != "never"
        if sync and not synced:
            self._sync({segment}, set())
        for path, data in ((segment.index_path, index), (segment.time_index_path, times)):
            self._ops.write_file(path, data, sync=sync)
        if segment.write_fd is not None:
            self._ops.close(segment.write_fd)
            segment.write_fd = None

    def _delete(self, segments: list[Segment]) -> None:
        """Remove segments retention dropped. A failure is logged, not fatal.

        The files are found again at the next start and deleted then.
        """
        try:
            for segment in segments:
                if segment.write_fd is not None:
                    self._ops.close(segment.write_fd)
                    segment.write_fd = None
                for path in (segment.path, segment.index_path, segment.time_index_path):
                    self._ops.unlink(path)
            if self.policy != "never":
                self._ops.fsync_dir(segments[0].path.parent)
        except OSError as error:
            log.error("retention: cannot delete segments: %s", describe(error, self.root))

    def _close_files(self, dirty: set[Segment], dirs: set[Path]) -> None:
        """Clean shutdown: sync whatever is written (any policy), close every file."""
        try:
            self._sync(dirty, dirs)
        finally:
            for part in self._parts:
                for segment in part.segments:
                    if segment.write_fd is not None:
                        self._ops.close(segment.write_fd)
                        segment.write_fd = None


__all__ = ["DURABILITY_FSYNCED", "DURABILITY_WRITTEN", "DiskLog"]
