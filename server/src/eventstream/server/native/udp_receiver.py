"""A thread that reads datagrams from a UDP socket into a record queue.

The event loop reads a datagram only when it gets round to the socket, one
system call each, so a burst overflows the socket buffer while it is busy.
A receiver thread waits on the socket alone and moves every datagram, as one
record (``u32 BE length + datagram``), into one shard of a queue; the loop
pops them in batches when the queue's eventfd says they are there.

:class:`UdpReceiver` is libshardq's: ``recvmmsg`` in a C thread that never
takes the GIL.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
from collections.abc import Sequence
from ctypes import byref, c_void_p
from dataclasses import dataclass

from . import _lib
from .errors import raise_for
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
    source_refused: int = 0
    """Datagrams dropped because their source is in none of the allowed networks."""


def network_table(networks: Sequence[str]) -> bytes:
    """The receiver's table of allowed networks (``10.0.0.0/8``, ``::1``...).

    Raises:
        ValueError: an entry is not a network or an address.
    """
    table = b""
    for text in networks:
        net = ipaddress.ip_network(text, strict=False)
        table += bytes([net.version, net.prefixlen]) + net.network_address.packed.ljust(16, b"\0")
    return table


class UdpReceiver:
    """The libshardq receiver: a C thread reading with ``recvmmsg``.

    Args:
        sock: a bound datagram socket; it must stay open until :meth:`stop`.
        queue: the native queue the datagrams go to.
        shard: the shard they go to.
        batch: datagrams per ``recvmmsg`` call.
        networks: accept datagrams only from these networks (CIDR or
            addresses; empty: from anywhere).

    Raises:
        InvalidArgument: a bad shard or batch.
        ValueError: a bad network.
    """

    def __init__(self, sock: socket.socket, queue: ShardQueue, *, shard: int = 0,
                 batch: int = 64, networks: Sequence[str] = ()) -> None:
        lib = _lib.load()
        table = network_table(networks)
        opts = _lib.UdpOptions(ctypes.sizeof(_lib.UdpOptions), sock.fileno(), shard, batch,
                               MAX_DATAGRAM, -1, len(networks),
                               ctypes.cast(ctypes.c_char_p(table), c_void_p) if table else None)
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


def start_receiver(sock: socket.socket, queue: ShardQueue, *, shard: int = 0,
                   batch: int = 64, networks: Sequence[str] = ()) -> UdpReceiver:
    """A receiver, already running (see :class:`UdpReceiver` for the arguments)."""
    return UdpReceiver(sock, queue, shard=shard, batch=batch, networks=networks)


def _stats(out: _lib.UdpStats) -> ReceiverStats:
    return ReceiverStats(out.datagrams, out.bytes, out.queue_full, out.truncated, out.errors,
                         out.last_errno, out.source_refused)


__all__ = ["MAX_DATAGRAM", "ReceiverStats", "UdpReceiver", "network_table", "start_receiver"]
