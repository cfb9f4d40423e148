"""ShardQueue: the native sharded MPMC record queue (libshardq through ctypes).

One queue per lane. Records travel in batches (``u32 big-endian length +
bytes`` each, see :mod:`._common`): one ctypes call pushes or pops a whole
batch, and no Python object is made per record. Negative return codes become
exceptions in one place (:func:`.errors.raise_for`).

Thread-safety: every method may be called from any number of threads at once,
except :meth:`ShardQueue.destroy`, which needs the queue to be idle. The C calls
release the GIL, so producers and a drain thread run in parallel.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
from ctypes import byref, c_int32, c_size_t, c_void_p
from typing import Protocol

from . import _lib
from ._common import Geometry, QueueStats
from .errors import (
    ECLOSED,
    EINVAL,
    ENOBUFS,
    ENOTEMPTY,
    ETIMEDOUT,
    InvalidArgument,
    raise_for,
)

DEFAULT_POP_BYTES = 1 << 20
"""Size of the buffer :meth:`ShardQueue.pop` fills (it grows when one record needs more)."""

Buffer = bytes | bytearray | memoryview
_ANY = ctypes.c_uint32(_lib.SHARD_ANY)


def alloc_buffer(size: int) -> ctypes.Array[ctypes.c_char]:
    """A reusable pop buffer of ``size`` bytes (``memoryview(buf)[:n]`` reads it)."""
    return ctypes.create_string_buffer(size)


class ShardQueue:
    """A bounded queue of variable-length records, split into shards.

    Args:
        capacity_records: records the whole queue holds (split evenly over shards).
        capacity_bytes: bytes the whole queue holds, 4 bytes of header per record
            included (per shard: rounded up to a power of two).
        shards: number of shards (1..1024); producers pick one per push, e.g.
            by :func:`~eventstream.server.native.NativeWire.hash` modulo shards.
        max_record: largest record in bytes; 0 means whatever fits an empty shard.
        numa: place shard ``i`` on NUMA node ``i mod nodes`` (best effort; see
            :attr:`QueueStats.numa_errno`).
        sysfs_root: sysfs root for NUMA discovery (tests use fixture trees).
        library: explicit libshardq path (default: see :func:`._lib.library_path`).

    Raises:
        NativeLibraryError: libshardq is missing or mismatched.
        InvalidArgument: the options are out of range.
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
        self._handle: int | None = None
        self._hv: c_void_p | None = None
        lib = _lib.load(library)
        geometry = Geometry.of(shards, capacity_records, capacity_bytes, max_record)
        opts = _lib.Options(
            ctypes.sizeof(_lib.Options), shards, capacity_records, capacity_bytes, max_record,
            _lib.OPT_NUMA if numa else 0,
            os.fsencode(sysfs_root) if sysfs_root is not None else None,
        )
        handle = c_void_p()
        rc = lib.shardq_create(byref(opts), byref(handle))
        if rc:
            raise_for(rc, "create")
        self._handle = handle.value
        fd = c_int32()
        lib.shardq_eventfd(self._handle, byref(fd))
        self._fd = fd.value
        self._lib = lib
        self._hv = c_void_p(self._handle)
        self._push = _lib.unchecked(lib, "shardq_push_batch")
        self._pop = _lib.unchecked(lib, "shardq_pop_batch")
        self._geometry = geometry
        self._closed = False
        self._local = threading.local()

    # -- properties -------------------------------------------------------

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

    # -- data path --------------------------------------------------------

    def _shard(self, shard: int | None) -> int:
        if shard is None:
            return _lib.SHARD_ANY
        if not 0 <= shard < self._geometry.shards:
            raise InvalidArgument(EINVAL, f"shard {shard} out of range 0..{self._geometry.shards - 1}")
        return shard

    def push(self, records: Buffer, *, shard: int | None = None, all_or_nothing: bool = False) -> int:
        """Push a batch of records into one shard.

        Args:
            records: record batch (``u32 BE length + bytes`` each), any
                contiguous buffer; ``bytes`` pass without a copy.
            shard: shard index, or None for round-robin over calls.
            all_or_nothing: push every record or none. By default the longest
                prefix that fits is pushed and its length returned.

        Returns:
            Records pushed (fewer than sent when the shard filled up).

        Raises:
            QueueFull: nothing was pushed for lack of room.
            RecordTooLarge: a record exceeds ``max_record`` (nothing pushed).
            MalformedInput: the batch does not end on a record boundary.
            QueueClosed: after :meth:`close`.
        """
        hv = self._hv
        if hv is None:
            raise _destroyed()
        target = _ANY if shard is None else self._shard(shard)
        try:
            outs, ref0, _ = self._local.outs
        except AttributeError:
            outs, ref0, _ = self._outs()
        if type(records) is bytes:
            rc = self._push(hv, target, records, c_size_t(len(records)), all_or_nothing, ref0)
        else:
            borrowed = _lib.Borrowed(records)
            try:
                rc = self._push(hv, target, borrowed.ptr, c_size_t(borrowed.length),
                                all_or_nothing, ref0)
            finally:
                borrowed.release()
        if rc:
            raise_for(rc, "push", index=outs[0])
        pushed: int = outs[0]
        return pushed

    def pop_into(self, buffer: bytearray | memoryview | ctypes.Array[ctypes.c_char],
                 max_records: int = 1024, *, shard: int | None = None) -> tuple[int, int]:
        """Pop whole records into ``buffer`` (any writable contiguous buffer).

        The cheapest buffer is a ctypes array made once and reused (see
        :func:`alloc_buffer`); a bytearray or memoryview is borrowed through
        the buffer protocol on each call, which costs about a microsecond.

        Args:
            buffer: receives the records in the push format, from offset 0.
            max_records: most records to take.
            shard: shard index, or None to take from every shard in turn.

        Returns:
            ``(records, nbytes)`` written.

        Raises:
            QueueEmpty: nothing to pop.
            BufferTooSmall: the first waiting record does not fit (``needed``).
        """
        hv = self._hv
        if hv is None:
            raise _destroyed()
        target = _ANY if shard is None else self._shard(shard)
        try:
            outs, ref0, ref1 = self._local.outs
        except AttributeError:
            outs, ref0, ref1 = self._outs()
        if isinstance(buffer, ctypes.Array):
            rc = self._pop(hv, target, c_size_t(max_records), buffer,
                           c_size_t(ctypes.sizeof(buffer)), ref0, ref1)
        else:
            borrowed = _lib.Borrowed(buffer, writable=True)
            try:
                rc = self._pop(hv, target, c_size_t(max_records), borrowed.ptr,
                               c_size_t(borrowed.length), ref0, ref1)
            finally:
                borrowed.release()
        if rc:
            raise_for(rc, "pop", needed=outs[1])
        return outs[0], outs[1]

    def _outs(self) -> tuple[ctypes.Array[c_size_t], object, object]:
        """This thread's two reusable size_t out-parameters (and their byrefs)."""
        outs = (c_size_t * 2)()
        self._local.outs = made = (outs, byref(outs), byref(outs, ctypes.sizeof(c_size_t)))
        return made

    def pop(self, max_records: int = 1024, *, shard: int | None = None,
            max_bytes: int = DEFAULT_POP_BYTES) -> bytes:
        """Pop up to ``max_records`` records and return them as one bytes batch.

        Copies once more than :meth:`pop_into` (out of a per-thread scratch
        buffer); a record larger than ``max_bytes`` is still returned, the
        scratch buffer grows for it.

        Raises:
            QueueEmpty: nothing to pop.
        """
        hv = self._hv
        if hv is None:
            raise _destroyed()
        target = _ANY if shard is None else self._shard(shard)
        scratch = getattr(self._local, "buf", None)
        if scratch is None or len(scratch) < max_bytes:
            scratch = self._local.buf = ctypes.create_string_buffer(max_bytes)
        count, nbytes = c_size_t(), c_size_t()
        rc = self._pop(hv, target, c_size_t(max_records), scratch, c_size_t(len(scratch)),
                       byref(count), byref(nbytes))
        if rc == ENOBUFS:
            scratch = self._local.buf = ctypes.create_string_buffer(nbytes.value)
            rc = self._pop(hv, target, c_size_t(max_records), scratch, c_size_t(len(scratch)),
                           byref(count), byref(nbytes))
        if rc:
            raise_for(rc, "pop", needed=nbytes.value)
        return ctypes.string_at(scratch, nbytes.value)

    # -- counters ---------------------------------------------------------

    def stats(self, shard: int | None = None) -> QueueStats:
        """Counters of the whole queue (default) or of one shard, in one call."""
        if self._handle is None:
            raise _destroyed()
        out = _lib.Stats()
        out.size = ctypes.sizeof(out)
        rc = self._lib.shardq_stats(self._handle, self._shard(shard), byref(out))
        if rc:
            raise_for(rc, "stats")
        return QueueStats(
            out.shards, out.depth, out.depth_bytes, out.capacity_records, out.capacity_bytes,
            out.pushes, out.pops, out.full_rejections, out.too_large_rejections, out.wakeups,
            out.numa_node, out.numa_errno,
        )

    # -- sleeping and waking ------------------------------------------------

    def fileno(self) -> int:
        """The eventfd a consumer sleeps on (owned by the queue: do not close it)."""
        return self._fd

    def sleep_prepare(self) -> bool:
        """Announce a consumer is about to sleep on :meth:`fileno`.

        Returns:
            True when the queue is empty and the caller may sleep (the next
            push will make the fd readable); False when records are waiting.

        Raises:
            QueueClosed: the queue is closed and empty.
        """
        if self._handle is None:
            raise _destroyed()
        rc = self._lib.shardq_sleep_prepare(self._handle)
        if rc == ENOTEMPTY:
            return False
        if rc:
            raise_for(rc, "sleep_prepare")
        return True

    def clear_wakeup(self) -> None:
        """Consume a pending wake-up so the fd is no longer readable."""
        if self._handle is None:
            raise _destroyed()
        self._lib.shardq_wakeup_clear(self._handle)

    def wait(self, timeout: float | None = None) -> bool:
        """Block (GIL released) until records may be waiting.

        Args:
            timeout: seconds, or None to wait without limit.

        Returns:
            True when records may be waiting (a wake-up can be spurious),
            False on timeout.

        Raises:
            QueueClosed: the queue is closed and empty.
        """
        if self._handle is None:
            raise _destroyed()
        ms = -1 if timeout is None else max(0, min(int(timeout * 1000), 0x7FFFFFFF))
        rc = self._lib.shardq_wait(self._handle, ms)
        if rc == ETIMEDOUT:
            return False
        if rc:
            raise_for(rc, "wait")
        return True

    async def wait_async(self) -> None:
        """Wait in the running asyncio loop, via ``loop.add_reader`` on the eventfd.

        Returns at once when records are waiting. One asyncio waiter per queue
        and loop (the drain task): ``add_reader`` keeps one callback per fd.

        Raises:
            QueueClosed: the queue is closed and empty.
        """
        await _wait_async(self)

    def close(self) -> None:
        """Refuse further pushes and wake every sleeper; queued records can still be popped."""
        if self._handle is None:
            return
        self._closed = True
        self._lib.shardq_close(self._handle)

    def destroy(self) -> None:
        """Free the queue, its memory and its eventfd. Queued records are dropped.

        The caller must ensure no other thread uses the queue any more.
        """
        handle, self._handle = self._handle, None
        self._hv = None
        if handle is not None:
            self._lib.shardq_destroy(handle)

    def __enter__(self) -> ShardQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __del__(self) -> None:
        self.destroy()


class _Sleeper(Protocol):
    """What :func:`_wait_async` needs of a queue (the native one and the tests' reference)."""

    @property
    def closed(self) -> bool:
        """True once closed."""
        ...

    def sleep_prepare(self) -> bool:
        """Arm the wake-up; False when records are already there."""
        ...

    def fileno(self) -> int:
        """The eventfd."""
        ...

    def clear_wakeup(self) -> None:
        """Consume a wake-up."""
        ...

    def stats(self) -> QueueStats:
        """The counters."""
        ...


async def _wait_async(q: _Sleeper) -> None:
    """Sleep on ``q.fileno()`` in the running loop until records come or it closes."""
    if not q.sleep_prepare():
        return
    loop = asyncio.get_running_loop()
    woken = loop.create_future()
    fd = q.fileno()

    def on_readable() -> None:
        if not woken.done():
            woken.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await woken
    finally:
        loop.remove_reader(fd)
    q.clear_wakeup()
    if q.closed and not q.stats().depth:
        raise_for(ECLOSED, "wait")


def _destroyed() -> InvalidArgument:
    return InvalidArgument(EINVAL, "queue was destroyed")


__all__ = ["DEFAULT_POP_BYTES", "ShardQueue", "alloc_buffer"]
