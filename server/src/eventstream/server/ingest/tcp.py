"""Raw TCP frame ingest on ``server.tcp_port``.

Each connection is a stream of frames (:mod:`.frames`). Without a handshake
it is fire-and-forget: the server answers nothing unless it closes the
connection with an ERROR message. A connection that starts with
:data:`.messages.HANDSHAKE_ACKED` is acknowledged: the client sends
length-delimited batches and the server answers each, in order, with an ACK
(partition and offset per frame) once the batch is committed, or an ERROR.

One native parse per read buffer. While a lane is full the connection stops
reading (the stream reader's buffer fills, the transport pauses, TCP flow
control reaches the producer), so nothing is dropped. A bad frame closes its
own connection only, after an ERROR message and a log line naming the peer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from ..broker.lanes import Submission
from ..config.model import IngestConfig, LimitsConfig
from ..errors import EventStreamError
from ..observability.metrics import Metrics
from . import messages
from ..queue.staging import R_INDEX, ROW_FIELDS
from .frames import DecodedFrames, FrameDecoder, Rejection
from .sink import BrokerSink

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
"""Bytes asked for per read; the stream reader pauses the socket past twice this."""
ACK_WINDOW = 64
"""Acknowledged batches of one connection committing at once; more waits."""
_TCP = {"transport": "tcp"}


class _Closed(Exception):
    """End the connection with an ERROR message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class TcpIngest:
    """The TCP listener and its connections.

    Args:
        config: the ``ingest`` section.
        limits: request limits (acknowledged batches obey
            ``max_request_bytes`` and ``max_batch_events``).
        decoder: the frame decoder.
        sink: where events go.
        metrics: the server's metrics.
    """

    def __init__(self, config: IngestConfig, limits: LimitsConfig, decoder: FrameDecoder,
                 sink: BrokerSink, metrics: Metrics) -> None:
        self._config = config
        self._limits = limits
        self._decoder = decoder
        self._sink = sink
        self._metrics = metrics
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``."""
        self._server = await asyncio.start_server(self._accept, host, port, limit=READ_SIZE,
                                                  backlog=min(self._config.max_connections, 4096))
        self.port = self._server.sockets[0].getsockname()[1]

    def stop_accepting(self) -> None:
        """Close the listening socket; open connections go on."""
        if self._server is not None:
            self._server.close()

    async def close(self, timeout: float) -> None:
        """Stop reading every connection, answer what was accepted, then close.

        Call after the broker drained, so accepted batches are committed and
        their acknowledgements can be written.
        """
        for connection in list(self._connections):
            connection.stop_reading()
        if self._connections:
            await asyncio.wait([c.done for c in self._connections], timeout=timeout)
        for connection in list(self._connections):
            connection.abort()
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer_name(writer)
        if len(self._connections) >= self._config.max_connections:
            log.warning("tcp ingest: refused %s: %d connections open (ingest.max_connections)",
                        peer, len(self._connections))
            self._metrics.ingest_closed.add(1, {"transport": "tcp", "reason": "CONNECTION_LIMIT"})
            writer.write(messages.encode_error(0, "CONNECTION_LIMIT", (
                f"the server has {len(self._connections)} ingest connections open, "
                f"the limit of ingest.max_connections; retry later")))
            await _close(writer)
            return
        connection = _Connection(self, reader, writer, peer)
        self._connections.add(connection)
        self._metrics.ingest_connections.add(1, _TCP)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
            self._metrics.ingest_connections.add(-1, _TCP)


class _Connection:
    """One client connection: reads frames, queues them, answers in order."""

    def __init__(self, ingest: TcpIngest, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, peer: str) -> None:
        self._ingest = ingest
        self._reader = reader
        self._writer = writer
        self._peer = peer
        self._metrics = ingest._metrics
        self._idle = ingest._config.idle_timeout_seconds or None
        self._accepted = 0     # frames queued (fire-and-forget position)
        self._sequence = 0     # batches read (acknowledged position)
        self._acked = False
        self._reading: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def stop_reading(self) -> None:
        """Read no more; what was queued is still answered (server shutdown)."""
        if self._reading is not None:
            self._reading.cancel()

    def abort(self) -> None:
        """Drop the connection at once."""
        self._writer.transport.abort()

    async def run(self) -> None:
        """Serve the connection until it ends."""
        window: asyncio.Queue[tuple[int, list[Submission]] | _Closed
                              | None] = asyncio.Queue(ACK_WINDOW)
        answering = asyncio.get_running_loop().create_task(self._answer(window))
        self._reading = asyncio.get_running_loop().create_task(self._read(window))
        ending: _Closed | None = None
        try:
            try:
                await self._reading
            except asyncio.CancelledError:
                if not self._reading.cancelled():
                    raise
                ending = _Closed("SHUTTING_DOWN", "the server is shutting down")
            except _Closed as closed:
                ending = closed
            except (ConnectionError, EventStreamError) as error:
                ending = _as_closed(error)
            except Exception:  # a bug: end this connection only, and say so
                log.exception("tcp ingest: unexpected error on %s", self._peer)
                ending = _Closed("INTERNAL", "unexpected server error; see the server log")
            reason = "EOF" if ending is None else ending.reason
            if ending is not None and ending.reason not in ("SHUTTING_DOWN", "CONNECTION_RESET"):
                log.warning("tcp ingest: closing %s: %s: %s", self._peer, ending.reason,
                            ending.message)
            if not answering.done():
                await window.put(ending)
            await answering
            self._metrics.ingest_closed.add(1, {"transport": "tcp", "reason": reason})
        finally:
            self._reading.cancel()
            answering.cancel()
            await _close(self._writer)
            if not self.done.done():
                self.done.set_result(None)

    # ------------------------------------------------------------------ reading

    async def _within_idle(self, read: Awaitable[bytes]) -> bytes:
        """Await ``read``, closing the connection with IDLE_TIMEOUT if it takes too long."""
        try:
            async with asyncio.timeout(self._idle):
                return await read
        except TimeoutError:
            raise _Closed("IDLE_TIMEOUT", f"nothing received for {self._idle:g} s "
                          "(ingest.idle_timeout_seconds)") from None

    async def _read_some(self) -> bytes:
        """Read up to READ_SIZE bytes; b"" at end of stream."""
        return await self._within_idle(self._reader.read(READ_SIZE))

    async def _read_exactly(self, count: int, at_boundary: bool) -> bytes | None:
        """Read ``count`` bytes; None on a clean end of stream at a boundary."""
        try:
            return await self._within_idle(self._reader.readexactly(count))
        except asyncio.IncompleteReadError as short:
            if at_boundary and not short.partial:
                return None
            self._metrics.received.add(1, _TCP)
            self._metrics.rejected.add(1, {"transport": "tcp", "reason": "FRAME_TRUNCATED"})
            raise _Closed("FRAME_TRUNCATED", "the connection ended inside a "
                          + ("batch" if self._acked else "frame")) from None

    async def _read(self, window: asyncio.Queue) -> None:
        first = await self._read_exactly(4, at_boundary=True)
        if first is None:
            return
        if first == messages.HANDSHAKE_ACKED:
            self._acked = True
            await self._read_batches(window)
        else:
            await self._read_stream(first)

    async def _read_stream(self, pending: bytes) -> None:
        """Fire-and-forget: frames until the end of the stream."""
        decoder = self._ingest._decoder
        while True:
            chunk = await self._read_some()
            data = pending + chunk if pending else chunk
            if not data:
                return
            decoded = decoder.decode(data, final=not chunk)
            self._count(decoded)
            if decoded.count:
                await self._queue(decoded)
                self._accepted += decoded.count
            if decoded.rejection is not None:
                raise _Closed(decoded.rejection.reason,
                              f"frame {self._accepted}: {decoded.rejection.message}")
            if not chunk:
                return
            pending = data[decoded.consumed:]

    async def _read_batches(self, window: asyncio.Queue) -> None:
        """Acknowledged: length-delimited batches until the end of the stream."""
        limits = self._ingest._limits
        decoder = self._ingest._decoder
        while True:
            header = await self._read_exactly(4, at_boundary=True)
            if header is None:
                return
            size = messages.batch_length(header)
            if size > limits.max_request_bytes:
                raise _Closed("BATCH_TOO_LARGE", f"batch {self._sequence}: {size} bytes is over "
                              f"the limit of {limits.max_request_bytes} (limits.max_request_bytes)")
            body = await self._read_exactly(size, at_boundary=False) if size else b""
            decoded = decoder.decode(body or b"", final=True)
            if decoded.rejection is None and decoded.count > limits.max_batch_events:
                decoded.rejection = Rejection(
                    "BATCH_TOO_LARGE", f"{decoded.count} frames is over the limit of "
                    f"{limits.max_batch_events} (limits.max_batch_events)", 0)
            self._count(decoded)
            if decoded.rejection is not None:
                # Nothing of a bad batch is queued: its ERROR is its answer.
                rejection = decoded.rejection
                where = "" if rejection.reason == "BATCH_TOO_LARGE" else f" frame {rejection.index}"
                raise _Closed(rejection.reason,
                              f"batch {self._sequence}{where}: {rejection.message}")
            queued = await self._queue(decoded) if decoded.count else []
            await window.put((self._sequence, queued))
            self._sequence += 1

    async def _queue(self, decoded: DecodedFrames) -> list[Submission]:
        assert decoded.accepted is not None
        return await self._ingest._sink.put(decoded.accepted, self._on_full)

    def _on_full(self) -> None:
        self._metrics.ingest_backpressure.add(1, _TCP)

    def _count(self, decoded: DecodedFrames) -> None:
        metrics = self._metrics
        rejection = decoded.rejection
        metrics.received.add(decoded.count + (rejection is not None), _TCP)
        if rejection is not None:
            metrics.rejected.add(1, {"transport": "tcp", "reason": rejection.reason})

    # ---------------------------------------------------------------- answering

    async def _answer(self, window: asyncio.Queue) -> None:
        """Write ACKs in batch order; end with the ERROR that closed the connection."""
        writer = self._writer
        while True:
            item = await window.get()
            if item is None:
                return
            if isinstance(item, _Closed):
                position = self._sequence if self._acked else self._accepted
                await _send(writer, messages.encode_error(position, item.reason, item.message))
                return
            sequence, queued = item
            try:
                positions = await _positions(queued)
            except EventStreamError as error:
                await _send(writer, messages.encode_error(sequence, error.reason, error.message))
                self.stop_reading()
                return
            await _send(writer, messages.encode_ack(sequence, positions))


async def _positions(queued: list[Submission]) -> list[int]:
    """Partition and offset of each frame of a batch, flat, in frame order."""
    if len(queued) == 1:   # one lane: rows are already in frame order
        await queued[0].future
        assert queued[0].positions is not None
        return queued[0].positions.tolist()
    by_frame: dict[int, tuple[int, int]] = {}
    for submission in queued:
        await submission.future
        assert submission.positions is not None
        flat = submission.positions.tolist()
        frames = memoryview(submission.rows).cast("I")[R_INDEX::ROW_FIELDS].tolist()
        by_frame.update(zip(frames, zip(flat[::2], flat[1::2])))
    return [value for frame in sorted(by_frame) for value in by_frame[frame]]


def _as_closed(error: ConnectionError | EventStreamError) -> _Closed:
    if isinstance(error, EventStreamError):
        return _Closed(error.reason, error.message)
    return _Closed("CONNECTION_RESET", str(error) or type(error).__name__)


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    if writer.is_closing():
        return
    writer.write(data)
    try:
        await writer.drain()
    except ConnectionError:
        pass


async def _close(writer: asyncio.StreamWriter) -> None:
    if not writer.is_closing():
        writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


__all__ = ["ACK_WINDOW", "READ_SIZE", "TcpIngest"]
