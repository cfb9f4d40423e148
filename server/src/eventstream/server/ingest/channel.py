"""One TCP ingest connection's socket: a fixed receive buffer and flow-controlled writes.

An :class:`asyncio.BufferedProtocol`: the event loop reads the socket
straight into the connection's own buffer, so the bytes a connection holds
are that buffer and nothing else. When it is full the channel stops reading
the socket (TCP flow control then slows the producer) until the reader
consumes. The reader waits for data with :meth:`TcpChannel.fill`; it may
make the buffer larger for a frame that does not fit (:meth:`TcpChannel.resize`).
"""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Callable


def _expire(waiter: asyncio.Future[None]) -> None:
    """A wait of :meth:`TcpChannel.fill` reached its deadline."""
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class TcpChannel(asyncio.BufferedProtocol):
    """The protocol of one accepted connection.

    Args:
        capacity: bytes of the receive buffer (allocated on first use).
        on_connect: called with the channel once the connection is made
            (with TLS: once the handshake is done).
    """

    def __init__(self, capacity: int, on_connect: Callable[[TcpChannel], None]) -> None:
        self.capacity = capacity
        self._on_connect = on_connect
        self._buffer: bytearray | None = None
        self._start = 0              # first unconsumed byte
        self._end = 0                # end of the bytes received
        self._paused = False
        self._eof = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Resolves once the connection is gone."""

    # ------------------------------------------------------------ protocol side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        self._transport = typing.cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._on_connect(self)

    def get_buffer(self, sizehint: int) -> memoryview:  # noqa: D102
        if self._buffer is None:
            self._buffer = bytearray(self.capacity)
        return memoryview(self._buffer)[self._end:]

    def buffer_updated(self, nbytes: int) -> None:  # noqa: D102
        self._end += nbytes
        self._flow()
        self._wake()

    def eof_received(self) -> bool:  # noqa: D102
        self._eof = True
        self._wake()
        return True   # keep the connection open: answers and an ERROR may still go out

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        self._eof = True
        self._error = exc
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:  # noqa: D102
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:  # noqa: D102
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -------------------------------------------------------------- reader side

    @property
    def at_eof(self) -> bool:
        """The peer ended its stream: every byte it sent is in the buffer."""
        return self._eof

    @property
    def pending(self) -> int:
        """Bytes received and not consumed."""
        return self._end - self._start

    def view(self) -> memoryview:
        """The bytes received and not consumed (valid until the next :meth:`fill` or :meth:`resize`)."""
        return memoryview(self._buffer or b"")[self._start:self._end]

    async def fill(self, count: int, deadline: float | None) -> memoryview:
        """Wait until ``count`` bytes are pending, or the stream ended.

        Args:
            count: bytes wanted, at most :attr:`capacity`.
            deadline: :meth:`loop.time` after which to give up, or None.

        Returns:
            Every pending byte: ``count`` or more, fewer only at the end of
            the stream.

        Raises:
            TimeoutError: ``deadline`` passed first.
            ConnectionError: the connection broke before ``count`` bytes came.
        """
        if count > self.capacity:
            raise ValueError(f"fill({count}) is over the receive buffer of {self.capacity}")
        while self.pending < count and not self._eof:
            if self._start + count > self.capacity:
                self._compact()
            self._flow()
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            # A timer that fails the waiter, not an asyncio.timeout per wait:
            # this runs once per read, and the context manager cost several
            # times the timer (its own object, the task's cancel bookkeeping).
            timer = None if deadline is None else loop.call_at(deadline, _expire, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        if self.pending < count and self._error is not None:
            raise ConnectionResetError(str(self._error) or type(self._error).__name__)
        return self.view()

    def consume(self, count: int) -> None:
        """Drop the first ``count`` pending bytes."""
        self._start += count
        if self._start == self._end:
            self._start = self._end = 0
            self._flow()

    def resize(self, capacity: int) -> None:
        """Give the receive buffer ``capacity`` bytes, keeping the pending ones.

        Raises:
            ValueError: more than ``capacity`` bytes are pending.
        """
        pending = self.pending
        if pending > capacity:
            raise ValueError(f"{pending} bytes pending do not fit {capacity}")
        if capacity == self.capacity:
            return
        buffer = bytearray(capacity)
        buffer[:pending] = self.view()
        self._buffer, self.capacity = buffer, capacity
        self._start, self._end = 0, pending
        self._flow()

    def _compact(self) -> None:
        assert self._buffer is not None
        pending = self.pending
        self._buffer[:pending] = self._buffer[self._start:self._end]
        self._start, self._end = 0, pending

    def _flow(self) -> None:
        """Read the socket exactly while the buffer has room.

        The transport must never be handed an empty buffer.
        """
        transport = self._transport
        if transport is None:
            return
        if self._end >= self.capacity and not self._paused:
            self._paused = True
            transport.pause_reading()
        elif self._end < self.capacity and self._paused:
            self._paused = False
            transport.resume_reading()

    # ----------------------------------------------------------------- TLS side

    def certificate_names(self) -> list[str]:
        """The verified client certificate's subject CN, then its SANs (empty without one)."""
        if self._transport is None:
            return []
        sslobj = self._transport.get_extra_info("ssl_object")
        certificate = sslobj.getpeercert() if sslobj is not None else None
        if not certificate:
            return []
        names = [value for rdn in certificate.get("subject", ()) for key, value in rdn
                 if key == "commonName"]
        names += [str(value) for _, value in certificate.get("subjectAltName", ())]
        return names

    # -------------------------------------------------------------- writer side

    @property
    def peer(self) -> str:
        """``host:port`` of the client."""
        assert self._transport is not None
        peer = self._transport.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    async def send(self, data: bytes, timeout: float) -> None:
        """Write ``data``; wait while the socket's send buffer is full.

        A connection that is gone swallows it.

        Raises:
            TimeoutError: the client read nothing for ``timeout`` seconds.
        """
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if self._writable is not None and not self._writable.done():
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._writable)

    def write_eof(self) -> None:
        """Send FIN after what was written; the connection can still be read."""
        transport = self._transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            transport.write_eof()

    async def close(self, timeout: float) -> None:
        """Close once what was written is sent; drop the connection if that takes over ``timeout`` seconds."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self.closed)
        except TimeoutError:
            self.abort()

    def abort(self) -> None:
        """Drop the connection at once."""
        if self._transport is not None:
            self._transport.abort()


__all__ = ["TcpChannel"]
