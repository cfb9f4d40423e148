"""A thread that reads datagrams from a UDP socket into a record queue.

The event loop reads a datagram only when it gets round to the socket, one
system call each, so a burst overflows the socket buffer while it is busy.
A receiver thread waits on the socket alone and moves every datagram, as one
record (``u32 BE length + datagram``), into one shard of a queue; the loop
pops them in batches when the queue's eventfd says they are there.

Two backends with the same behaviour: :class:`NativeUdpReceiver` (libshardq:
``recvmmsg`` in a C thread that never takes the GIL) and
:class:`PureUdpReceiver` (a Python thread), chosen like the queue's.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import threading
from ctypes import byref, c_void_p
from dataclasses import dataclass

from . import _lib
from ._pure import PureShardQueue
from .errors import EINVAL, InvalidArgument, QueueClosed, QueueFull, raise_for
from .shardq import ShardQueue

MAX_DATAGRAM = 65535
"""Bytes read per datagram: the largest a UDP datagram can carry."""


@dataclass(frozen=True, slots=True)
class ReceiverStats:
    """Counters of a receiver, read in one call."""

    datagrams: int
    """Datagrams read from the socket."""
    bytes: int
    """Their bytes."""
    queue_full: int
    """Datagrams dropped because the queue had no room."""
    truncated: int
    """Datagrams dropped because they were longer than ``max_datagram``."""
    errors: int
    """Failed receive calls (other than "nothing to read")."""
    last_errno: int
    """errno of the last failure, 0 when none."""


class NativeUdpReceiver:
    """The libshardq receiver: a C thread reading with ``recvmmsg``.

    Args:
        sock: a bound datagram socket; it must stay open until :meth:`stop`.
        queue: the native queue the datagrams go to.
        shard: the shard they go to.
        batch: datagrams per ``recvmmsg`` call.

    Raises:
        InvalidArgument: a bad shard or batch.
    """

    def __init__(self, sock: socket.socket, queue: ShardQueue, *, shard: int = 0,
                 batch: int = 64) -> None:
        lib = _lib.load()
        opts = _lib.UdpOptions(ctypes.sizeof(_lib.UdpOptions), sock.fileno(), shard, batch,
                               MAX_DATAGRAM, -1)
        handle = c_void_p()
        rc = lib.shardq_udp_start(byref(opts), queue._hv, byref(handle))
        if rc:
            raise_for(rc, "udp_start")
        self._lib = lib
        self._handle: int | None = handle.value
        self._queue = queue  # kept alive as long as the thread may push
        self._final = ReceiverStats(0, 0, 0, 0, 0, 0)

    def stats(self) -> ReceiverStats:
        """The receiver's counters."""
        if self._handle is None:
            return self._final
        out = _lib.UdpStats()
        out.size = ctypes.sizeof(out)
        self._lib.shardq_udp_stats(self._handle, byref(out))
        return _stats(out)

    def stop(self) -> ReceiverStats:
        """End the thread and wait for it; returns the final counters. Idempotent."""
        handle, self._handle = self._handle, None
        if handle is not None:
            final = _lib.UdpStats()
            final.size = ctypes.sizeof(final)
            self._lib.shardq_udp_stop(handle, byref(final))
            self._final = _stats(final)
        return self._final


class PureUdpReceiver:
    """The fallback: a Python thread with the behaviour of :class:`NativeUdpReceiver`.

    Args: as for :class:`NativeUdpReceiver` (``batch`` is accepted for parity).
    """

    def __init__(self, sock: socket.socket, queue: PureShardQueue, *, shard: int = 0,
                 batch: int = 64) -> None:
        if not 0 <= shard < queue.shards or not 1 <= batch <= 1024:
            raise InvalidArgument(EINVAL, f"bad shard {shard} or batch {batch}")
        self._sock, self._queue, self._shard = sock, queue, shard
        self._lock = threading.Lock()
        self._counts = [0, 0, 0, 0, 0, 0]  # as ReceiverStats
        self._stop_read, self._stop_write = os.pipe()
        self._thread: threading.Thread | None = threading.Thread(
            target=self._run, name="udp-receiver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN)
        poller.register(self._stop_read, select.POLLIN)
        buffer = bytearray(4 + MAX_DATAGRAM)
        view = memoryview(buffer)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._stop_read in ready:
                return
            try:
                size = self._sock.recv_into(view[4:], MAX_DATAGRAM, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError as error:
                with self._lock:
                    self._counts[4] += 1
                    self._counts[5] = error.errno or 0
                continue
            buffer[:4] = size.to_bytes(4, "big")
            full = 0
            try:
                self._queue.push(view[:4 + size], shard=self._shard)
            except QueueFull:
                full = 1
            except QueueClosed:
                return
            with self._lock:
                counts = self._counts
                counts[0] += 1
                counts[1] += size
                counts[2] += full

    def stats(self) -> ReceiverStats:
        """The receiver's counters."""
        with self._lock:
            return ReceiverStats(*self._counts)

    def stop(self) -> ReceiverStats:
        """End the thread and wait for it; returns the final counters. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None:
            os.write(self._stop_write, b"x")
            thread.join()
            os.close(self._stop_read)
            os.close(self._stop_write)
        return self.stats()


def start_receiver(sock: socket.socket, queue: ShardQueue | PureShardQueue, *, shard: int = 0,
                   batch: int = 64) -> NativeUdpReceiver | PureUdpReceiver:
    """A receiver of the queue's backend, already running."""
    if isinstance(queue, ShardQueue):
        return NativeUdpReceiver(sock, queue, shard=shard, batch=batch)
    return PureUdpReceiver(sock, queue, shard=shard, batch=batch)


def _stats(out: _lib.UdpStats) -> ReceiverStats:
    return ReceiverStats(out.datagrams, out.bytes, out.queue_full, out.truncated, out.errors,
                         out.last_errno)


__all__ = ["MAX_DATAGRAM", "NativeUdpReceiver", "PureUdpReceiver", "ReceiverStats",
           "start_receiver"]
