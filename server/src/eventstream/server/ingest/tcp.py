"""Raw TCP frame ingest on ``server.tcp_port``.

Each connection is a stream of frames (:mod:`.frames`). Without a handshake
it is fire-and-forget: the server answers nothing unless it closes the
connection with an ERROR message. A connection that starts with
:data:`.messages.HANDSHAKE_ACKED` is acknowledged: the client sends
length-delimited batches and the server answers each, in order, with an ACK
(partition and offset per frame) once the batch is committed, or an ERROR.

Memory and time are bounded per connection and in total. The socket is read
into the connection's own receive buffer (``ingest.receive_buffer_bytes``,
:mod:`.channel`), which is validated as it arrives, one native call per
read; a frame larger than that buffer gets a buffer of its own size for as
long as it takes to arrive. What a connection holds beyond its receive
buffer (the validated events of a read until they are in a lane, a large
frame, an acknowledged batch until it is whole) is taken from a byte budget
shared by every connection (``ingest.max_buffered_bytes``, :mod:`.budget`);
when it is used up, connections stop reading until it has room, so nothing
fails. A frame, the handshake, and (acknowledged) a batch must arrive within
``ingest.frame_timeout_seconds`` of its first byte, the time the server
spends waiting for a lane or the budget not counted; an answer the client
does not read within that time drops the connection.

While a lane is full the connection stops reading too (TCP flow control
reaches the producer), so nothing is dropped; after a read of only batch
events, while realtime publishers are active, it also waits for the batch
lane to drain to ``queues.batch_ingest_mark`` (:meth:`.sink.BrokerSink.put`).
A bad frame closes its own connection only, after an ERROR message and a log
line naming the peer.

Security (docs/security.md): with TLS the connection starts with a
handshake on the certificate of the moment. With authentication on, the
client is its verified certificate, or the token of an ``ESA2`` handshake;
one without either gets an ERROR (``CREDENTIALS_MISSING``) and is closed.
Frames to topics its identity may not publish to end the connection like
bad frames (``PERMISSION_DENIED``; acknowledged mode refuses the whole
batch). Over its publish rates, the connection pauses reading for as long
as the rates need (Kafka-style throttling: nothing is refused or lost).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Awaitable
from typing import TypeVar

from ..broker.lanes import Submission
from ..config.model import IngestConfig, LimitsConfig
from ..errors import EventStreamError
from ..native import ACCEPTED_EVENT_BYTES, Accepted
from ..observability.metrics import Metrics
from ..security.access import ANONYMOUS, AccessControl, Principal
from ..security.tls import ServerTls
from ..tasks import cancel_and_wait
from . import messages
from .budget import ByteBudget
from .channel import TcpChannel
from .forwarding import CONNECTION_IN_FLIGHT, FrameForwarder, frames_length
from .frames import DecodedFrames, FrameDecoder, Rejection
from .sink import BrokerSink, positions_of

log = logging.getLogger(__name__)

ACK_WINDOW = 64
"""Acknowledged batches of one connection committing at once; more waits."""
HELD_FRAME_BYTES = ACCEPTED_EVENT_BYTES + 8
"""What a validated frame may hold beyond its own bytes (its row, and a
protobuf encoding at most 5 bytes longer than the frame)."""
SMALLEST_FRAME = 8
"""Bytes of the smallest frame that can be accepted (a one-byte topic)."""
LINGER_SECONDS = 2.0
"""After an ERROR: most time spent reading (and dropping) what the client
still sends before closing, so the close does not reset the connection and
destroy the ERROR before the client reads it."""
_TCP = {"transport": "tcp"}
T = TypeVar("T")


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
        access: who a client is and what it may publish.
        tls: the certificate to serve (None: plaintext).
        forwarder: on a member of a replicated cluster, sends the frames
            read while it follows to the leader (:mod:`.forwarding`).
    """

    def __init__(self, config: IngestConfig, limits: LimitsConfig, decoder: FrameDecoder,
                 sink: BrokerSink, metrics: Metrics, access: AccessControl,
                 tls: ServerTls | None = None, forwarder: FrameForwarder | None = None) -> None:
        self._config = config
        self._limits = limits
        self._decoder = decoder
        self._sink = sink
        self._metrics = metrics
        self.access = access
        self._tls = tls
        self.forwarder = forwarder
        self.budget = ByteBudget(config.max_buffered_bytes)
        """Bytes all connections hold beyond their receive buffers."""
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._listener: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()
        self._per_source: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``."""
        loop = asyncio.get_running_loop()
        backlog = min(self._config.max_connections, 4096)
        if self._tls is None:
            self._server = await loop.create_server(
                self._new_channel, host, port, backlog=backlog)
            self.port = self._server.sockets[0].getsockname()[1]
            return
        # TLS: sockets are accepted here and handed to the loop with the
        # certificate of the moment, so the handshake comes before any byte
        # is read and a failed one is seen (and counted) here.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server((host, port), family=family, backlog=backlog)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._acceptor = loop.create_task(self._accept_tls(listener), name="tcp-tls-accept")

    def stop_accepting(self) -> None:
        """Close the listening socket; open connections go on."""
        if self._server is not None:
            self._server.close()
        if self._acceptor is not None and self._listener is not None:
            listener, self._listener = self._listener, None
            # Closed once the acceptor is off it (the loop still watches its fd until then).
            self._acceptor.add_done_callback(lambda _: listener.close())
            self._acceptor.cancel()
        for handshake in list(self._handshakes):
            handshake.cancel()

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
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
        if self._server is not None:
            await self._server.wait_closed()
        await cancel_and_wait(self._acceptor)
        self._acceptor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def _accept_tls(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(listener)
            except OSError as error:   # e.g. EMFILE: the next accept may succeed
                log.warning("tcp ingest: accept failed: %s", error)
                await asyncio.sleep(0.1)
                continue
            handshake = loop.create_task(self._handshake(sock))
            self._handshakes.add(handshake)
            handshake.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket) -> None:
        """The TLS handshake of an accepted socket, on the certificate of the moment."""
        assert self._tls is not None
        config = self._config
        peer = _peer_of(sock)
        if len(self._connections) + len(self._handshakes) > config.max_connections:
            self._metrics.ingest_closed.add(1, {"transport": "tcp", "reason": "CONNECTION_LIMIT"})
            log.warning("tcp ingest: refused %s before TLS: %d connections open "
                        "(ingest.max_connections)", peer, len(self._connections))
            sock.close()   # no TLS yet to carry an ERROR message
            return
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                self._new_channel, sock, ssl=self._tls.context(),
                ssl_handshake_timeout=config.frame_timeout_seconds)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as error:
            reason = _handshake_reason(error)
            self.access.count_failure("tcp", reason)
            self._metrics.ingest_closed.add(1, {"transport": "tcp", "reason": reason})
            log.info("tcp ingest: TLS handshake with %s failed: %s: %s", peer, reason, error)
            sock.close()

    def _new_channel(self) -> TcpChannel:
        """A new connection's protocol, with its receive buffer (``ingest.receive_buffer_bytes``)."""
        return TcpChannel(self._config.receive_buffer_bytes, self._accept)

    def _accept(self, channel: TcpChannel) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, channel: TcpChannel) -> None:
        peer = channel.peer
        source = peer.rpartition(":")[0]
        refusal = self._refusal(source)
        if refusal is not None:
            log.warning("tcp ingest: refused %s: %s", peer, refusal)
            self._metrics.ingest_closed.add(1, {"transport": "tcp", "reason": "CONNECTION_LIMIT"})
            timeout = self._config.frame_timeout_seconds
            try:
                await channel.send(messages.encode_error(0, "CONNECTION_LIMIT", refusal), timeout)
            except TimeoutError:
                pass
            await channel.close(timeout)
            return
        connection = _Connection(self, channel, peer)
        self._connections.add(connection)
        self._per_source[source] += 1
        self._metrics.ingest_connections.add(1, _TCP)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
            self._per_source[source] -= 1
            if not self._per_source[source]:
                del self._per_source[source]
            self._metrics.ingest_connections.add(-1, _TCP)

    def _refusal(self, source: str) -> str | None:
        """Why a new connection from ``source`` may not be served now, or None."""
        config = self._config
        if len(self._connections) >= config.max_connections:
            return (f"the server has {len(self._connections)} ingest connections open, "
                    "the limit of ingest.max_connections; retry later")
        per_source = config.max_connections_per_source
        if per_source and self._per_source[source] >= per_source:
            return (f"{source} has {self._per_source[source]} ingest connections open, the "
                    "limit of ingest.max_connections_per_source; retry later")
        return None


def _peer_of(sock: socket.socket) -> str:
    try:
        peer = sock.getpeername()
    except OSError:
        return "?"
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


def _handshake_reason(error: BaseException) -> str:
    """The metric reason of a failed TLS handshake."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return "CERTIFICATE_INVALID"
    if isinstance(error, ssl.SSLError) and "CERTIFICATE" in (error.reason or "").upper():
        # The client sent no certificate (PEER_DID_NOT_RETURN_A_CERTIFICATE), or one
        # the verification refused before Python saw it.
        return "CREDENTIALS_MISSING" if "RETURN" in (error.reason or "") else "CERTIFICATE_INVALID"
    return "TLS_HANDSHAKE"


class _Connection:
    """One client connection: reads frames, queues them, answers in order."""

    def __init__(self, ingest: TcpIngest, channel: TcpChannel, peer: str) -> None:
        self._ingest = ingest
        self._channel = channel
        self._peer = peer
        self._metrics = ingest._metrics
        self._budget = ingest.budget
        self._loop = asyncio.get_running_loop()
        config = ingest._config
        self._idle = config.idle_timeout_seconds or None
        self._frame_timeout = config.frame_timeout_seconds
        self._receive = config.receive_buffer_bytes
        """Bytes of the receive buffer when it is not grown for a large frame or batch."""
        self._deadline: float | None = None   # of the frame or batch being received
        self._grown = 0        # budget bytes held for a receive buffer grown for a large frame
        self._accepted = 0     # frames queued (fire-and-forget position)
        self._sequence = 0     # batches read (acknowledged position)
        self._acked = False
        self._dropped: str | None = None       # why the connection was dropped unanswered
        self._erred = False                    # an ERROR was sent
        self._reading: asyncio.Task[None] | None = None
        self._principal: Principal = ANONYMOUS
        self._forwarded: collections.deque[asyncio.Task[bytes]] = collections.deque()
        """Fire-and-forget: requests forwarded to the leader, not yet answered."""
        self.done: asyncio.Future[None] = self._loop.create_future()

    def stop_reading(self) -> None:
        """Read no more; what was queued is still answered (server shutdown)."""
        if self._reading is not None:
            self._reading.cancel()

    def abort(self) -> None:
        """Drop the connection at once."""
        self._channel.abort()

    async def run(self) -> None:
        """Serve the connection until it ends."""
        window: asyncio.Queue[_WindowItem] = asyncio.Queue(ACK_WINDOW)
        answering = self._loop.create_task(self._answer(window))
        self._reading = self._loop.create_task(self._read(window))
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
            if ending is not None and ending.reason not in ("SHUTTING_DOWN", "CONNECTION_RESET"):
                log.warning("tcp ingest: closing %s: %s: %s", self._peer, ending.reason,
                            ending.message)
            if not answering.done():
                await window.put(ending)
            await answering
            reason = self._dropped or ("EOF" if ending is None else ending.reason)
            self._metrics.ingest_closed.add(1, {"transport": "tcp", "reason": reason})
        finally:
            self._reading.cancel()
            answering.cancel()
            self._budget.give(self._grown)
            self._grown = 0
            if self._erred and self._dropped is None:
                await self._linger()
            await self._channel.close(self._frame_timeout)
            if not self.done.done():
                self.done.set_result(None)

    # ---------------------------------------------------------------- timing

    def _begin(self) -> None:
        """A frame (or batch) started arriving: it must be whole by the frame timeout."""
        if self._deadline is None:
            self._deadline = self._loop.time() + self._frame_timeout

    def _finish(self) -> None:
        self._deadline = None

    async def _server_side(self, waiting: Awaitable[T]) -> T:
        """Await something the server waits for (lane room, budget).

        That time does not count against the frame timeout.
        """
        started = self._loop.time()
        try:
            return await waiting
        finally:
            if self._deadline is not None:
                self._deadline += self._loop.time() - started

    async def _fill(self, count: int) -> memoryview:
        """At least ``count`` received bytes, within the idle and frame timeouts.

        Fewer only at the end of the stream.
        """
        channel = self._channel
        if channel.pending >= count:
            return channel.view()
        deadline = self._deadline
        idle_seconds = self._idle
        idle = idle_seconds is not None and (
            deadline is None or self._loop.time() + idle_seconds < deadline)
        if idle and idle_seconds is not None:
            deadline = self._loop.time() + idle_seconds
        try:
            return await channel.fill(count, deadline)
        except TimeoutError:
            if idle:
                raise _Closed("IDLE_TIMEOUT", f"nothing received for {self._idle:g} s "
                              "(ingest.idle_timeout_seconds)") from None
            self._metrics.received.add(1, _TCP)
            self._metrics.rejected.add(1, {"transport": "tcp", "reason": "FRAME_TIMEOUT"})
            unit = "batch" if self._acked else "frame"
            raise _Closed("FRAME_TIMEOUT", f"the {unit} was not complete "
                          f"{self._frame_timeout:g} s after its first byte "
                          "(ingest.frame_timeout_seconds)") from None

    # --------------------------------------------------------------- reading

    async def _read(self, window: asyncio.Queue[_WindowItem]) -> None:
        if not await self._fill(1):
            return
        self._begin()
        first = await self._fill(4)
        magic = bytes(first[:4])
        if magic in (messages.HANDSHAKE_ACKED, messages.HANDSHAKE_ACKED_TOKEN):
            self._channel.consume(4)
            token = await self._read_token() if magic == messages.HANDSHAKE_ACKED_TOKEN else None
            self._finish()
            self._acked = True
            self._authenticate(token)
            await self._read_batches(window)
        else:
            self._authenticate(None)
            await self._read_stream()
            while self._forwarded:  # the leader's refusal still ends the connection
                await self._settle(self._forwarded.popleft())

    async def _read_token(self) -> str:
        """The token of an ``ESA2`` handshake (after the magic)."""
        header = await self._fill(2)
        if len(header) < 2:
            raise self._truncated()
        length = messages.token_length(header)
        if not 0 < length <= messages.MAX_TOKEN_BYTES:
            raise _Closed("TOKEN_INVALID", f"handshake: a token of {length} bytes; 1 to "
                          f"{messages.MAX_TOKEN_BYTES} are allowed")
        self._channel.consume(2)
        data = await self._fill(length)
        if len(data) < length:
            raise self._truncated()
        token = bytes(data[:length])
        self._channel.consume(length)
        try:
            return token.decode()
        except UnicodeDecodeError:
            raise _Closed("TOKEN_INVALID", "handshake: the token is not UTF-8") from None

    def _authenticate(self, token: str | None) -> None:
        """Who the client is (its token, else its certificate).

        Raises:
            _Closed: UNAUTHENTICATED (``CREDENTIALS_MISSING``, ``TOKEN_INVALID``).
        """
        try:
            self._principal = self._ingest.access.authenticate(
                "tcp", token, self._channel.certificate_names())
        except EventStreamError as error:
            raise _Closed(error.reason, error.message) from None

    def _denial(self, accepted: Accepted, first_frame: int) -> tuple[int, _Closed] | None:
        """The first frame of ``accepted`` its client may not publish, if any.

        Returns:
            None, or its position in ``accepted`` and the error that ends the
            connection (naming the frame, counted from ``first_frame``, and its topic).
        """
        verdicts = self._ingest.access.publish_verdicts(self._principal, accepted)
        if verdicts is None:
            return None
        denied = min((accepted.good_position(row), row) for row, allowed in enumerate(verdicts)
                     if not allowed)
        topic = accepted.good_topic(denied[1]).decode()
        return denied[0], _Closed("PERMISSION_DENIED", f"frame {first_frame + denied[0]}: "
                                  f"publishing to {topic!r} is not allowed")

    async def _pay(self, events: int, size: int) -> None:
        """Charge queued events to the client's publish rates; pause reading while in debt."""
        pause = self._ingest.access.publish_pause(self._principal, events, size)
        if pause:
            await self._server_side(asyncio.sleep(pause))

    async def _read_stream(self) -> None:
        """Fire-and-forget: frames until the end of the stream."""
        channel = self._channel
        decoder = self._ingest._decoder
        need = 1
        while True:
            data = await self._fill(need)
            if not data:
                return
            final = channel.at_eof
            decoded = decoder.decode(data, final=final)
            held = 0
            if decoded.accepted is not None and not self._grown:
                # A grown buffer's reservation covers its frame's events.
                held = decoded.accepted.held_bytes
                if not self._budget.try_take(held):
                    del decoded   # hold nothing while waiting; the bytes are still there
                    self._on_full()
                    await self._server_side(self._budget.take(held))
                    decoded = decoder.decode(data, final=final)
            denial = None
            try:
                self._count(decoded)
                channel.consume(decoded.consumed)
                if decoded.accepted is not None:
                    denial = self._denial(decoded.accepted, self._accepted)
                if denial is not None:
                    self._refuse_denied(decoded, denial[0])
                if decoded.count:
                    if self._forwarding():
                        consumed = decoded.consumed if denial is None else \
                            frames_length(data, denial[0])
                        await self._forward(bytes(data[:consumed]), decoded.count)
                    else:
                        await self._queue(decoded)
                    self._accepted += decoded.count
            finally:
                if held:
                    self._budget.give(held)
            if denial is not None:
                raise denial[1]
            if decoded.count:
                await self._pay(decoded.count, decoded.consumed)
            if decoded.rejection is not None:
                raise _Closed(decoded.rejection.reason,
                              f"frame {self._accepted}: {decoded.rejection.message}")
            if final:
                return
            need = await self._next_need()

    def _refuse_denied(self, decoded: DecodedFrames, position: int) -> None:
        """Keep the frames before the first denied one; count the rest as refused."""
        assert decoded.accepted is not None
        kept = decoded.accepted.before(position)
        refused = decoded.count - kept.good
        decoded.accepted, decoded.count = (kept if kept.good else None), kept.good
        self._metrics.rejected.add(refused, {"transport": "tcp", "reason": "PERMISSION_DENIED"})

    async def _read_batches(self, window: asyncio.Queue[_WindowItem]) -> None:
        """Acknowledged: length-delimited batches until the end of the stream."""
        limits = self._ingest._limits
        while True:
            self._shrink()
            if not await self._fill(1):
                return
            self._begin()
            header = await self._fill(4)
            if len(header) < 4:
                raise self._truncated()
            size = messages.batch_length(header[:4])
            self._channel.consume(4)
            if size > limits.max_request_bytes:
                raise _Closed("BATCH_TOO_LARGE", f"batch {self._sequence}: {size} bytes is over "
                              f"the limit of {limits.max_request_bytes} (limits.max_request_bytes)")
            reserved = self._batch_reservation(size)
            await self._server_side(self._taken(reserved))
            raw: list[bytes] | None = [] if self._forwarding() else None
            try:
                pieces = await self._read_batch(size, raw)
                self._finish()
                self._check_batch(pieces)
                if raw is None:
                    queued: _Answer = [await self._queue_accepted(piece) for piece in pieces]
                else:
                    forwarder = self._ingest.forwarder
                    assert forwarder is not None
                    queued = await self._server_side(forwarder.send(
                        b"".join(raw), sum(piece.good for piece in pieces), "tcp",
                        self._on_full))
            finally:
                self._budget.give(reserved - self._keep_grown())
            await window.put((self._sequence, queued))
            self._sequence += 1
            await self._pay(sum(piece.good for piece in pieces), size)

    def _check_batch(self, pieces: list[Accepted]) -> None:
        """Refuse a whole batch with a frame its client may not publish.

        Raises:
            _Closed: PERMISSION_DENIED naming the frame and its topic.
        """
        first = 0
        for piece in pieces:
            denial = self._denial(piece, first)
            if denial is not None:
                frames = sum(piece.good for piece in pieces)
                self._metrics.rejected.add(frames, {"transport": "tcp",
                                                    "reason": "PERMISSION_DENIED"})
                closed = denial[1]
                raise _Closed(closed.reason, f"batch {self._sequence} {closed.message}")
            first += piece.good

    async def _read_batch(self, size: int, raw: list[bytes] | None = None) -> list[Accepted]:
        """The body of one batch, validated as it arrives, a receive buffer at a time.

        ``raw`` (when forwarding) gets a copy of the batch's bytes, a piece at a time.

        A batch larger than the receive buffer gets a buffer of its size (at
        most a largest frame), so that a small batch is validated in one
        piece and a frame always fits; the batch's reservation covers it.

        Returns:
            The batch's frames as validated pieces, in order.

        Raises:
            _Closed: a bad frame, too many frames, or a batch that did not
                arrive whole; the rest of the batch is read and dropped first,
                so the client can read the ERROR before the connection closes.
        """
        channel = self._channel
        decoder = self._ingest._decoder
        limit = self._ingest._limits.max_batch_events
        wanted = min(size, decoder.max_frame + 4)
        if wanted > channel.capacity:
            channel.resize(wanted)
        pieces: list[Accepted] = []
        frames = 0
        remaining = size
        while remaining:
            need = min(remaining, channel.capacity)
            data = await self._fill(need)
            if len(data) < need:
                raise self._truncated()
            data = data[:remaining]
            decoded = decoder.decode(data, final=len(data) == remaining)
            self._count(decoded)
            if raw is not None:
                raw.append(bytes(data[:decoded.consumed]))
            channel.consume(decoded.consumed)
            remaining -= decoded.consumed
            rejection = decoded.rejection
            if rejection is None and frames + decoded.count > limit:
                self._metrics.received.add(1, _TCP)
                self._metrics.rejected.add(1, {"transport": "tcp", "reason": "BATCH_TOO_LARGE"})
                rejection = Rejection("BATCH_TOO_LARGE", f"more than {limit} frames "
                                      "(limits.max_batch_events)", 0)
            if rejection is not None:
                await self._discard(remaining)
                where = ("" if rejection.reason == "BATCH_TOO_LARGE"
                         else f" frame {frames + rejection.index}")
                raise _Closed(rejection.reason,
                              f"batch {self._sequence}{where}: {rejection.message}")
            frames += decoded.count
            if decoded.accepted is not None:
                pieces.append(decoded.accepted)
        return pieces

    async def _next_need(self) -> int:
        """Fire-and-forget.

        How many bytes to wait for next, a whole frame at the head of the received bytes.

        A frame larger than the receive buffer gets a buffer of its size; its
        bytes, and its events once validated, are taken from the budget first.
        """
        channel = self._channel
        self._shrink()
        head = channel.view()
        if not head:
            self._finish()
            return 1
        self._begin()
        if len(head) < 4:
            return 4
        declared = int.from_bytes(head[:4], "big")
        if declared > self._ingest._decoder.max_frame:
            return 4   # the decoder refuses it from its length alone
        need = declared + 4
        if need > channel.capacity:
            await self._server_side(self._taken(2 * need + HELD_FRAME_BYTES))
            self._grown = 2 * need + HELD_FRAME_BYTES
            channel.resize(need)
        return need

    def _shrink(self) -> None:
        """Give a grown receive buffer back once its frame or batch is consumed."""
        channel = self._channel
        if channel.capacity > self._receive and channel.pending <= self._receive:
            channel.resize(self._receive)
            self._budget.give(self._grown)
            self._grown = 0

    def _keep_grown(self) -> int:
        """After a batch.

        The bytes of its reservation that stay taken for a receive buffer still grown (it already holds the
        next batch's bytes).
        """
        self._shrink()
        capacity = self._channel.capacity
        keep = max(0, capacity - self._grown) if capacity > self._receive else 0
        self._grown += keep
        return keep

    async def _taken(self, count: int) -> None:
        """Take ``count`` bytes of the budget, counting a wait as backpressure."""
        if not self._budget.try_take(count):
            self._on_full()
            await self._budget.take(count)

    def _batch_reservation(self, size: int) -> int:
        """Budget bytes a batch of ``size`` bytes may hold while it is read.

        Its validated frames, and a receive buffer grown for a large frame.
        """
        frames = min(size // SMALLEST_FRAME + 1, self._ingest._limits.max_batch_events + 1)
        grown = min(size, self._ingest._decoder.max_frame + 4) if size > self._receive else 0
        return size + frames * HELD_FRAME_BYTES + grown

    async def _discard(self, count: int) -> None:
        """Read and drop ``count`` bytes (the rest of a refused batch) within the frame timeout.

        Give up quietly if they do not come.
        """
        channel = self._channel
        try:
            while count:
                data = await self._fill(1)
                if not data:
                    return
                taken = min(len(data), count)
                channel.consume(taken)
                count -= taken
        except (_Closed, ConnectionError):
            return

    def _truncated(self) -> _Closed:
        self._metrics.received.add(1, _TCP)
        self._metrics.rejected.add(1, {"transport": "tcp", "reason": "FRAME_TRUNCATED"})
        return _Closed("FRAME_TRUNCATED", "the connection ended inside a "
                       + ("batch" if self._acked else "frame"))

    def _forwarding(self) -> bool:
        """Whether frames read now go to the leader (this node follows)."""
        forwarder = self._ingest.forwarder
        return forwarder is not None and forwarder.follows()

    async def _forward(self, frames: bytes, count: int) -> None:
        """Fire-and-forget: send frames to the leader, at most a few requests in flight.

        Raises:
            EventStreamError: the leader refused earlier frames, or none is known.
        """
        forwarded = self._forwarded
        if len(forwarded) >= CONNECTION_IN_FLIGHT and not forwarded[0].done():
            self._on_full()  # the leader is slower than this client: stop reading
        while forwarded and (forwarded[0].done() or len(forwarded) >= CONNECTION_IN_FLIGHT):
            await self._settle(forwarded.popleft())
        forwarder = self._ingest.forwarder
        assert forwarder is not None
        forwarded.append(await self._server_side(
            forwarder.send(frames, count, "tcp", self._on_full)))

    async def _settle(self, task: asyncio.Task[bytes]) -> None:
        """Wait for a forwarded request's answer (raises the leader's refusal)."""
        await self._server_side(task)

    async def _queue(self, decoded: DecodedFrames) -> list[Submission]:
        assert decoded.accepted is not None
        return await self._queue_accepted(decoded.accepted)

    async def _queue_accepted(self, accepted: Accepted) -> list[Submission]:
        return await self._server_side(self._ingest._sink.put(accepted, self._on_full,
                                                              self._on_paced))

    def _on_full(self) -> None:
        self._metrics.ingest_backpressure.add(1, _TCP)

    def _on_paced(self) -> None:
        self._metrics.ingest_batch_paced.add(1, _TCP)

    def _count(self, decoded: DecodedFrames) -> None:
        metrics = self._metrics
        rejection = decoded.rejection
        metrics.received.add(decoded.count + (rejection is not None), _TCP)
        if rejection is not None:
            metrics.rejected.add(1, {"transport": "tcp", "reason": rejection.reason})

    async def _linger(self) -> None:
        """Half-close after the ERROR, then drop what the client still sends.

        Until it closes too, for at most :data:`LINGER_SECONDS`.
        """
        channel = self._channel
        channel.write_eof()
        channel.consume(channel.pending)
        channel.resize(self._receive)
        deadline = self._loop.time() + min(LINGER_SECONDS, self._frame_timeout)
        try:
            while data := await channel.fill(1, deadline):
                channel.consume(len(data))
        except (TimeoutError, ConnectionError):
            pass

    # ---------------------------------------------------------------- answering

    async def _answer(self, window: asyncio.Queue[_WindowItem]) -> None:
        """Write ACKs in batch order; end with the ERROR that closed the connection."""
        try:
            while True:
                item = await window.get()
                if item is None:
                    return
                if isinstance(item, _Closed):
                    position = self._sequence if self._acked else self._accepted
                    self._erred = True
                    await self._send(messages.encode_error(position, item.reason, item.message))
                    return
                sequence, pieces = item
                try:
                    if isinstance(pieces, asyncio.Task):  # forwarded: the leader's positions
                        ack = messages.encode_ack_of(sequence, await pieces)
                    else:
                        ack = messages.encode_ack(sequence, [
                            position for queued in pieces
                            for position in await positions_of(queued)])
                except EventStreamError as error:
                    self._erred = True
                    await self._send(messages.encode_error(sequence, error.reason, error.message))
                    self.stop_reading()
                    return
                await self._send(ack)
        except TimeoutError:
            # The client reads nothing: no ERROR can reach it either.
            log.warning("tcp ingest: dropping %s: it read no answer for %g s "
                        "(ingest.frame_timeout_seconds)", self._peer, self._frame_timeout)
            self._dropped = "SEND_TIMEOUT"
            self.stop_reading()
            self._channel.abort()

    async def _send(self, data: bytes) -> None:
        await self._channel.send(data, self._frame_timeout)


_Answer = list[list[Submission]] | asyncio.Task[bytes]
"""An acknowledged batch on its way: its submissions per piece, or the request forwarding it."""
_WindowItem = tuple[int, _Answer] | _Closed | None
"""What the reader hands the answerer: a batch's sequence and submissions (or
forwarding), the error that closed the connection, or None at the end."""


def _as_closed(error: ConnectionError | EventStreamError) -> _Closed:
    if isinstance(error, EventStreamError):
        return _Closed(error.reason, error.message)
    return _Closed("CONNECTION_RESET", str(error) or type(error).__name__)


__all__ = ["ACK_WINDOW", "TcpIngest"]
