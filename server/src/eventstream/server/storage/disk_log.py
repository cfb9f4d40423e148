"""The durable committed log: segment files under ``storage.data_dir``.

Threads: the event loop thread stages, publishes, reads and applies
retention; one dedicated I/O thread does every fsync, file close and
deletion, in submission order. :meth:`DiskLog.commit` writes each partition's
staged bytes with one ``write`` and, under ``fsync: always``, one
``fdatasync`` per touched file before returning: that is the group commit
(the write path commits once per round, and new publishes gather in the lanes
meanwhile). Under ``fsync: interval`` and ``never`` a round that seals no
segment is written on the event loop thread itself: a ``write`` into the
page cache costs less than handing it to the I/O thread and back. Which
files await an fsync is known only to the event loop thread; the periodic
fsync takes that set along to the I/O thread.

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
from .log import ReadResult, RecordBatch
from .memory_log import MemoryLog
from .partition import Partition
from .recovery import open_data_dir, partition_dir, recover_partition, sync_dir
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
        clock_ns: wall clock for segment age and retention.
        on_fsync: called with the seconds each fsync round took (any thread).
        on_delete: called with (partition, segments, bytes) deleted by retention.

    Raises:
        DataDirRefused: the data directory cannot be used (see :mod:`.recovery`).
        CorruptSegment: a record before the tail fails its checks.
    """

    evicted = 0
    """Records lost to eviction: none, only retention deletes (whole segments)."""

    def __init__(self, config: StorageConfig, checksums: Checksums, *,
                 clock_ns: Callable[[], int] = time.time_ns,
                 on_fsync: Callable[[float], None] | None = None,
                 on_delete: Callable[[int, int, int], None] | None = None) -> None:
        self.partitions = config.partitions
        self.policy = config.fsync
        self.durability = DURABILITY_FSYNCED if config.fsync == "always" else DURABILITY_WRITTEN
        self.root = Path(config.data_dir)
        self._config = config
        self._clock_ns = clock_ns
        self._on_fsync = on_fsync
        self._on_delete = on_delete
        self._lock_fd = open_data_dir(self.root, config.partitions)
        try:
            self._parts = [
                Partition(partition_dir(self.root, p),
                          recover_partition(partition_dir(self.root, p), checksums,
                                            config.index_interval_bytes),
                          checksums=checksums, segment_bytes=config.segment_bytes,
                          segment_ns=config.segment_ms * 1_000_000,
                          index_interval=config.index_interval_bytes)
                for p in range(config.partitions)]
        except BaseException:
            os.close(self._lock_fd)
            raise
        sync_dir(self.root)
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
        return self._parts[partition].active.staged_next

    def append(self, partition: int, batch: RecordBatch, time_ns: int) -> None:
        part = self._parts[partition]
        # Ingest times never go backwards within a partition, so seeking by time can bisect.
        time_ns = max(time_ns, part.last_time)
        part.stage(batch, time_ns)
        self._pending.append((partition, batch, time_ns))

    async def commit(self) -> None:
        writes: list[tuple[Segment, bytearray]] = []
        seals: list[tuple[Segment, bytes, bytes]] = []
        for part in self._parts:
            for number, (segment, buf) in enumerate(part.staged):
                writes.append((segment, buf))  # not appended to until this commit returns
                if number < len(part.staged) - 1:
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
            except BaseException:
                # Nothing of this round becomes visible. After a cancellation (only at
                # stop, before close) the I/O thread may still finish writing it: those
                # whole, never acknowledged records are found by the next start.
                for part in self._parts:
                    part.discard()
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
        return self._parts[partition].start_offset()

    def high_watermark(self, partition: int) -> int:
        return self._parts[partition].high_watermark()

    def read(self, partition: int, offset: int, max_records: int) -> ReadResult:
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
        oldest = self._cache.oldest_time(partition)
        if oldest is not None and time_ns > oldest:
            return self._cache.offset_for_time(partition, time_ns)
        return self._parts[partition].offset_for_time(time_ns)

    def retained_bytes(self, partition: int) -> int:
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
        if self._task is not None:
            self._task.cancel()
            self._task = None
        dirty, dirs = self._take_dirty()
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
            if interval and (self._dirty or self._dirty_dirs):
                dirty, dirs = self._take_dirty()
                try:
                    await loop.run_in_executor(self._io, self._sync, dirty, dirs)
                except OSError:
                    log.exception("periodic fsync failed")
                    self._dirty |= dirty  # tried again at the next tick
                    self._dirty_dirs |= dirs
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
        """Write a round; with ``sync``, fsync it. Returns the files written and
        the directories that got a new file (both synced when ``sync``)."""
        touched: list[Segment] = []
        new_dirs: set[Path] = set()
        try:
            for segment, data in writes:
                if segment.write_fd is None:
                    if not segment.path.exists():
                        new_dirs.add(segment.path.parent)
                    segment.write_fd = os.open(segment.path,
                                               os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                touched.append(segment)
                _write_all(segment.write_fd, data)
            if sync:
                self._sync(set(touched), new_dirs)
        except OSError:
            # Leave no partial record behind: the next commit appends after it.
            for segment in touched:
                try:
                    os.ftruncate(segment.write_fd, segment.size)  # type: ignore[arg-type]
                except OSError:
                    log.exception("cannot truncate %s after a failed write", segment.path)
            raise
        for segment, index, times in seals:
            self._seal(segment, index, times, synced=sync)
        return touched, new_dirs

    def _sync(self, segments: set[Segment], directories: set[Path]) -> None:
        """fdatasync written files (those still open) and sync directories with new files."""
        if not segments and not directories:
            return
        started = time.perf_counter()
        for segment in segments:
            if segment.write_fd is not None:  # else sealed (synced) or deleted meanwhile
                os.fdatasync(segment.write_fd)
        for directory in directories:
            sync_dir(directory)
        if self._on_fsync is not None:
            self._on_fsync(time.perf_counter() - started)

    def _seal(self, segment: Segment, index: bytes, times: bytes, *, synced: bool) -> None:
        """A rolled segment: sync it (unless ``synced``), write its indexes, close it."""
        sync = self.policy != "never"
        if sync and not synced and segment.write_fd is not None:
            os.fdatasync(segment.write_fd)
        for path, data in ((segment.index_path, index), (segment.time_index_path, times)):
            with open(path, "wb") as out:
                out.write(data)
                out.flush()
                if sync:
                    os.fdatasync(out.fileno())
        if segment.write_fd is not None:
            os.close(segment.write_fd)
            segment.write_fd = None

    def _delete(self, segments: list[Segment]) -> None:
        for segment in segments:
            if segment.write_fd is not None:
                os.close(segment.write_fd)
                segment.write_fd = None
            for path in (segment.path, segment.index_path, segment.time_index_path):
                path.unlink(missing_ok=True)
        if self.policy != "never":
            sync_dir(segments[0].path.parent)

    def _close_files(self, dirty: set[Segment], dirs: set[Path]) -> None:
        """Clean shutdown: sync whatever is written (any policy), close every file."""
        try:
            self._sync(dirty, dirs)
        finally:
            for part in self._parts:
                for segment in part.segments:
                    if segment.write_fd is not None:
                        os.close(segment.write_fd)
                        segment.write_fd = None


def _write_all(fd: int, data: bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


__all__ = ["DURABILITY_FSYNCED", "DURABILITY_WRITTEN", "DiskLog"]
