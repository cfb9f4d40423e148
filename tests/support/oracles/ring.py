"""PureShardQueue: the plain-Python reference of :class:`~eventstream.server.native.ShardQueue`.

Same API, same codes and counters, same capacity rounding, same round-robin
order, same eventfd wake-up protocol (``os.eventfd``): the reference the
property tests run the native queue against (tests only). It keeps one
``bytes`` object per record. It cannot place memory on NUMA nodes: with
``numa=True`` its statistics say so (``numa_errno`` is ENOSYS).

Thread-safety: as the native queue; each shard has its own lock.
"""

from __future__ import annotations

import errno
import os
import select
import struct
import threading
import time
from collections import deque

from eventstream.server.native._common import Geometry, QueueStats
from eventstream.server.native.errors import (
    E2BIG,
    EBADMSG,
    ECLOSED,
    EEMPTY,
    EFULL,
    EINVAL,
    ENOBUFS,
    InvalidArgument,
    raise_for,
)
from eventstream.server.native.shardq import DEFAULT_POP_BYTES, Buffer, _wait_async

_HEADER = struct.Struct(">I")


class _Shard:
    __slots__ = (
        "cap_bytes",
        "cap_records",
        "full_rejections",
        "lock",
        "pops",
        "pushes",
        "records",
        "too_large_rejections",
        "used",
    )

    def __init__(self, cap_records: int, cap_bytes: int) -> None:
        self.lock = threading.Lock()
        self.records: deque[bytes] = deque()  # each with its 4-byte header
        self.used = 0
        self.cap_records = cap_records
        self.cap_bytes = cap_bytes
        self.pushes = self.pops = self.full_rejections = self.too_large_rejections = 0


class PureShardQueue:
    """Pure-Python queue with the behaviour of :class:`.shardq.ShardQueue`.

    Args:
        capacity_records: as for ShardQueue.
        capacity_bytes: as for ShardQueue.
        shards: as for ShardQueue.
        max_record: as for ShardQueue.
        numa: accepted for parity; memory is not placed (``numa_errno`` ENOSYS).
        sysfs_root: accepted for parity.
        library: ignored.
    """

    def __init__(
        self,
        *,
        capacity_records: int,
        capacity_bytes: int,
        shards: int = 1,
        max_record: int = 0,
        numa: bool = False,
        sysfs_root: str | os.PathLike[str] | None = None,
        library: str | os.PathLike[str] | None = None,
    ) -> None:
        del sysfs_root, library
        self._fd: int | None = None
        self._geometry = g = Geometry.of(shards, capacity_records, capacity_bytes, max_record)
        self._shards = [_Shard(g.shard_records, g.shard_bytes) for _ in range(shards)]
        self._numa_errno = errno.ENOSYS if numa else 0
        self._wake_lock = threading.Lock()  # guards depth, sleepers, cursors, wakeups
        self._depth = 0
        self._sleepers = False
        self._push_cursor = 0
        self._pop_cursor = 0
        self._wakeups = 0
        self._closed = False
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    @property
    def shards(self) -> int:
        """Number of shards."""
        return self._geometry.shards

    @property
    def max_record(self) -> int:
        """Largest record accepted, in bytes."""
        return self._geometry.max_record

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def _check_shard(self, shard: int | None) -> None:
        if self._fd is None:
            raise InvalidArgument(EINVAL, "queue was destroyed")
        if shard is not None and not 0 <= shard < self._geometry.shards:
            raise InvalidArgument(EINVAL, f"shard {shard} out of range 0..{self._geometry.shards - 1}")

    def _wake(self) -> None:
        self._wakeups += 1
        assert self._fd is not None
        os.eventfd_write(self._fd, 1)

    def push(self, records: Buffer, *, shard: int | None = None, all_or_nothing: bool = False) -> int:
        """Push a batch of records into one shard; see :meth:`.shardq.ShardQueue.push`."""
        self._check_shard(shard)
        if shard is None:
            with self._wake_lock:
                shard = self._push_cursor % self._geometry.shards
                self._push_cursor = (self._push_cursor + 1) & 0xFFFFFFFF
        s = self._shards[shard]
        if self._closed:
            raise_for(ECLOSED, "push")
        view = memoryview(records).cast("B")
        size, pos, bounds = len(view), 0, []
        max_record = self._geometry.max_record
        while pos < size:
            if size - pos < 4:
                raise_for(EBADMSG, "push")
            (length,) = _HEADER.unpack_from(view, pos)
            if length > max_record:
                with s.lock:
                    s.too_large_rejections += 1
                raise_for(E2BIG, "push", index=len(bounds))
            if length > size - pos - 4:
                raise_for(EBADMSG, "push")
            bounds.append((pos, pos + 4 + length))
            pos += 4 + length
        total = len(bounds)
        if total == 0:
            return 0
        with s.lock:
            free_records = s.cap_records - len(s.records)
            free_bytes = s.cap_bytes - s.used
            take, taken_bytes = 0, 0
            if total <= free_records and size <= free_bytes:
                take, taken_bytes = total, size
            elif not all_or_nothing:
                while take < free_records and take < total:
                    start, end = bounds[take]
                    if taken_bytes + end - start > free_bytes:
                        break
                    taken_bytes += end - start
                    take += 1
            for start, end in bounds[:take]:
                s.records.append(bytes(view[start:end]))
            s.used += taken_bytes
            s.pushes += take
            s.full_rejections += total - take
            if take:
                with self._wake_lock:
                    self._depth += take
        if take == 0:
            raise_for(EFULL, "push")
        with self._wake_lock:
            if self._sleepers:
                self._sleepers = False
                self._wake()
        return take

    def _shard_pop(self, s: _Shard, limit: int, room: int, out: list[bytes]) -> tuple[int, int, int]:
        taken, nbytes, need = 0, 0, 0
        with s.lock:
            records = s.records
            while taken < limit and records:
                size = len(records[0])
                if nbytes + size > room:
                    need = size
                    break
                out.append(records.popleft())
                nbytes += size
                taken += 1
            if taken:
                s.used -= nbytes
                s.pops += taken
                with self._wake_lock:
                    self._depth -= taken
        return taken, nbytes, need

    def _pop_parts(self, max_records: int, shard: int | None, room: int) -> tuple[list[bytes], int]:
        self._check_shard(shard)
        if max_records <= 0:
            raise InvalidArgument(EINVAL, "pop: max_records must be positive")
        parts: list[bytes] = []
        if shard is not None:
            got, used, need = self._shard_pop(self._shards[shard], max_records, room, parts)
        else:
            with self._wake_lock:
                if self._depth == 0:
                    raise_for(EEMPTY, "pop")
                start = self._pop_cursor % self._geometry.shards
                self._pop_cursor = (self._pop_cursor + 1) & 0xFFFFFFFF
            got = used = need = 0
            n = self._geometry.shards
            for i in range(n):
                if got >= max_records:
                    break
                taken, nbytes, need = self._shard_pop(
                    self._shards[(start + i) % n], max_records - got, room - used, parts)
                got += taken
                used += nbytes
                if need:
                    break
        if got == 0:
            if need:
                raise_for(ENOBUFS, "pop", needed=need)
            raise_for(EEMPTY, "pop")
        return parts, used

    def pop_into(self, buffer: bytearray | memoryview, max_records: int = 1024, *,
                 shard: int | None = None) -> tuple[int, int]:
        """Pop whole records into ``buffer``; see :meth:`.shardq.ShardQueue.pop_into`."""
        out = memoryview(buffer).cast("B")
        parts, used = self._pop_parts(max_records, shard, len(out))
        pos = 0
        for part in parts:
            out[pos:pos + len(part)] = part
            pos += len(part)
        return len(parts), used

    def pop(self, max_records: int = 1024, *, shard: int | None = None,
            max_bytes: int = DEFAULT_POP_BYTES) -> bytes:
        """Pop records as one bytes batch; see :meth:`.shardq.ShardQueue.pop`."""
        from eventstream.server.native.errors import BufferTooSmall

        try:
            parts, _ = self._pop_parts(max_records, shard, max_bytes)
        except BufferTooSmall as exc:
            parts, _ = self._pop_parts(max_records, shard, exc.needed)
        return b"".join(parts)

    def stats(self, shard: int | None = None) -> QueueStats:
        """Counters of the queue or one shard; see :meth:`.shardq.ShardQueue.stats`."""
        self._check_shard(shard)
        chosen = self._shards if shard is None else [self._shards[shard]]
        totals = [0] * 8
        for s in chosen:
            with s.lock:
                values = (len(s.records), s.used, s.cap_records, s.cap_bytes, s.pushes, s.pops,
                          s.full_rejections, s.too_large_rejections)
            totals = [a + b for a, b in zip(totals, values, strict=True)]
        return QueueStats(len(chosen), *totals, self._wakeups, -1, self._numa_errno)

    def fileno(self) -> int:
        """The eventfd a consumer sleeps on (owned by the queue)."""
        if self._fd is None:
            raise InvalidArgument(EINVAL, "queue was destroyed")
        return self._fd

    def sleep_prepare(self) -> bool:
        """See :meth:`.shardq.ShardQueue.sleep_prepare`."""
        self._check_shard(None)
        with self._wake_lock:
            self._sleepers = True
            if self._depth:
                return False
        if self._closed:
            raise_for(ECLOSED, "sleep_prepare")
        return True

    def clear_wakeup(self) -> None:
        """Consume a pending wake-up."""
        try:
            os.eventfd_read(self.fileno())
        except BlockingIOError:
            pass  # nothing pending

    def wait(self, timeout: float | None = None) -> bool:
        """See :meth:`.shardq.ShardQueue.wait`."""
        if not self.sleep_prepare():
            return True
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        poller = select.poll()
        poller.register(self.fileno(), select.POLLIN)
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if poller.poll(None if left is None else int(left * 1000)):
                break
            if deadline is not None and time.monotonic() >= deadline:
                return False
        self.clear_wakeup()
        with self._wake_lock:
            empty = self._depth == 0
        if empty and self._closed:
            raise_for(ECLOSED, "wait")
        return True

    async def wait_async(self) -> None:
        """See :meth:`.shardq.ShardQueue.wait_async`."""
        await _wait_async(self)

    def close(self) -> None:
        """Refuse further pushes and wake every sleeper."""
        if self._fd is None or self._closed:
            return
        self._closed = True
        with self._wake_lock:
            self._wake()

    def destroy(self) -> None:
        """Close the eventfd and drop queued records."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
            for s in self._shards:
                s.records.clear()

    def __enter__(self) -> PureShardQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __del__(self) -> None:
        self.destroy()


__all__ = ["PureShardQueue"]
