"""Senders of raw EventStream frames over TCP (port 9000) and UDP (port 9001).

For producers that want less overhead than gRPC. Frames are batched: many go
out in one ``sendall`` (TCP) or one datagram (UDP). Blocking sockets, no
threads; one sender per thread.

Frame (big-endian): ``u32 length`` (of what follows) · ``u8 priority`` ·
``u16 topic_len`` · topic · payload. Over TCP a sender is fire-and-forget
by default; with ``acked=True`` it opens the connection with the ``ESA1``
handshake, sends length-delimited batches and :meth:`TcpFrameSender.flush`
returns the (partition, offset) of every frame once committed. UDP is lossy:
nothing is acknowledged.

With ``tls=`` (an :class:`ssl.SSLContext`, with a client certificate for
mutual TLS) the TCP connection is encrypted; with ``token=`` (acknowledged
mode only) the handshake is ``ESA2`` · ``u16 length`` · token, for a server
with authentication on.

Example::

    with TcpFrameSender("127.0.0.1", 9000, acked=True) as sender:
        sender.send("sensors/a", b"21.5", Priority.HIGH)
        positions = sender.flush()   # [(partition, offset)]
"""

from __future__ import annotations

import enum
import socket
import ssl
import struct
from types import TracebackType

HANDSHAKE_ACKED = b"ESA1"
"""First bytes of an acknowledged-mode connection."""
HANDSHAKE_ACKED_TOKEN = b"ESA2"
"""First bytes of an acknowledged-mode connection that carries a bearer token."""
KIND_ACK = 1
KIND_ERROR = 2

_HEADER = struct.Struct(">IBH")
_U32 = struct.Struct(">I")
_ACK_HEAD = struct.Struct(">QI")
_ENTRY = struct.Struct(">IQ")
_ERROR_HEAD = struct.Struct(">QB")
MAX_DATAGRAM = 65507
"""Largest UDP payload over IPv4."""


class Priority(enum.IntEnum):
    """The frame's priority byte. HIGH and CRITICAL use the realtime lane."""

    BATCH = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


class FrameError(Exception):
    """The server refused frames and closed the connection.

    Attributes:
        reason: stable reason, e.g. ``TOPIC_NOT_UTF8`` or ``IDLE_TIMEOUT``.
        message: the server's explanation.
        position: acknowledged mode: the sequence of the refused batch;
            fire-and-forget: how many frames the server accepted before it.
    """

    def __init__(self, reason: str, message: str, position: int) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.position = position


def encode_frame(topic: str | bytes, payload: bytes, priority: int = Priority.MEDIUM) -> bytes:
    """Encode one frame.

    Raises:
        ValueError: the topic is longer than 65535 bytes or the priority is not 0..4.
    """
    topic_bytes = topic.encode() if isinstance(topic, str) else topic
    if len(topic_bytes) > 0xFFFF:
        raise ValueError(f"topic: {len(topic_bytes)} bytes is over 65535")
    if not 0 <= priority <= 4:
        raise ValueError(f"priority: {priority} is not 0..4")
    return (_HEADER.pack(3 + len(topic_bytes) + len(payload), priority, len(topic_bytes))
            + topic_bytes + payload)


class TcpFrameSender:
    """Sends frames over one TCP connection, batched.

    Args:
        host: server address.
        port: ``server.tcp_port`` (9000 by default).
        acked: use the acknowledged mode.
        batch_bytes: buffered bytes that trigger a send (and, acknowledged,
            a wait for the batch's ACK).
        timeout: socket timeout in seconds for connecting, sending and waiting.
        tls: speak TLS with this context (load a client certificate into it
            for mutual TLS); None for plaintext.
        server_hostname: the name to verify in the server's certificate
            (default: ``host``).
        token: a bearer token for the handshake (needs ``acked``).

    Raises:
        ValueError: a token without ``acked``, or a token that is empty or too long.
        ssl.SSLError: the TLS handshake failed.
    """

    def __init__(self, host: str, port: int, *, acked: bool = False,
                 batch_bytes: int = 64 * 1024, timeout: float = 30.0,
                 tls: ssl.SSLContext | None = None, server_hostname: str | None = None,
                 token: str | None = None) -> None:
        token_bytes = b"" if token is None else token.encode()
        if token is not None and not acked:
            raise ValueError("token: only the acknowledged mode carries a token (acked=True)")
        if token is not None and not 0 < len(token_bytes) <= 4096:
            raise ValueError("token: 1 to 4096 bytes")
        self.acked = acked
        self._batch_bytes = batch_bytes
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_hostname=server_hostname or host)
            except BaseException:
                sock.close()
                raise
        self._sock = sock
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._sequence = 0
        self._positions: list[tuple[int, int]] = []
        self._inbox = bytearray()
        if token is not None:
            self._sock.sendall(HANDSHAKE_ACKED_TOKEN + struct.pack(">H", len(token_bytes))
                               + token_bytes)
        elif acked:
            self._sock.sendall(HANDSHAKE_ACKED)

    def send(self, topic: str | bytes, payload: bytes, priority: int = Priority.MEDIUM) -> None:
        """Buffer one frame; sends the batch once ``batch_bytes`` are buffered."""
        self.send_encoded(encode_frame(topic, payload, priority))

    def send_encoded(self, frame: bytes) -> None:
        """Buffer one frame already encoded with :func:`encode_frame`."""
        self._pending.append(frame)
        self._pending_bytes += len(frame)
        if self._pending_bytes >= self._batch_bytes:
            self._send_batch()

    def flush(self) -> list[tuple[int, int]]:
        """Send what is buffered.

        Returns:
            Acknowledged mode: (partition, offset) of every frame sent since
            the previous flush, in order, all committed. Otherwise ``[]``.

        Raises:
            FrameError: the server refused a batch (acknowledged mode).
        """
        if self._pending:
            self._send_batch()
        positions, self._positions = self._positions, []
        return positions

    def close(self) -> None:
        """Flush, end the stream and wait until the server has read all of it.

        Raises:
            FrameError: the server refused a frame (it says so before closing).
        """
        if self._sock.fileno() == -1:
            return  # already closed after a FrameError
        try:
            self.flush()
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server closed first; an ERROR it sent may still be unread
            while True:
                message = self._read_message()
                if message is None:
                    return
                self._raise_if_error(message)
        finally:
            self._sock.close()

    def __enter__(self) -> TcpFrameSender:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self._sock.close()

    def _send_batch(self) -> None:
        try:
            self._send_pending()
        except (FrameError, ConnectionError):
            self._sock.close()  # the server has closed the connection
            raise

    def _send_pending(self) -> None:
        body = b"".join(self._pending)
        count = len(self._pending)
        self._pending, self._pending_bytes = [], 0
        if not self.acked:
            self._send(body)
            return
        self._send(_U32.pack(len(body)) + body)
        message = self._read_message()
        if message is None:
            raise FrameError("CONNECTION_CLOSED", "the server closed the connection",
                             self._sequence)
        self._raise_if_error(message)
        sequence, acked = _ACK_HEAD.unpack_from(message, 1)
        if sequence != self._sequence or acked != count:
            raise FrameError("PROTOCOL", f"ACK for batch {sequence} of {acked} frames, expected "
                             f"batch {self._sequence} of {count}", self._sequence)
        self._sequence += 1
        start = 1 + _ACK_HEAD.size
        self._positions.extend(_ENTRY.iter_unpack(message[start:start + acked * _ENTRY.size]))

    def _send(self, data: bytes) -> None:
        """Send ``data``; if the server closed the connection, raise the ERROR it sent."""
        try:
            self._sock.sendall(data)
        except ConnectionError:
            message = self._read_message()
            if message is not None:
                self._raise_if_error(message)
            raise

    def _read_message(self) -> bytes | None:
        """The next server message (kind byte first), or None at end of stream."""
        while True:
            if len(self._inbox) >= 4:
                (size,) = _U32.unpack_from(self._inbox)
                if len(self._inbox) >= 4 + size:
                    message = bytes(self._inbox[4:4 + size])
                    del self._inbox[:4 + size]
                    return message
            try:
                chunk = self._sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self._inbox += chunk

    @staticmethod
    def _raise_if_error(message: bytes) -> None:
        if message[0] == KIND_ERROR:
            position, reason_len = _ERROR_HEAD.unpack_from(message, 1)
            start = 1 + _ERROR_HEAD.size
            reason = message[start:start + reason_len].decode("ascii", "replace")
            raise FrameError(reason, message[start + reason_len:].decode("utf-8", "replace"),
                             position)


class UdpFrameSender:
    """Packs frames into datagrams and sends them; nothing is acknowledged.

    Args:
        host: server address.
        port: ``server.udp_port`` (9001 by default).
        max_datagram: most bytes per datagram (1472 fits a 1500-byte MTU;
            up to 65507 on loopback). A larger frame goes alone, if it fits 65507.
    """

    def __init__(self, host: str, port: int, *, max_datagram: int = 1472) -> None:
        if not 7 <= max_datagram <= MAX_DATAGRAM:
            raise ValueError(f"max_datagram: {max_datagram} is not 7..{MAX_DATAGRAM}")
        self._max = max_datagram
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.connect((host, port))
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.datagrams_sent = 0
        """Datagrams sent so far."""

    def send(self, topic: str | bytes, payload: bytes, priority: int = Priority.MEDIUM) -> None:
        """Add one frame to the current datagram, sending it first if the frame does not fit.

        Raises:
            ValueError: the frame alone is larger than 65507 bytes.
        """
        frame = encode_frame(topic, payload, priority)
        if len(frame) > MAX_DATAGRAM:
            raise ValueError(f"frame of {len(frame)} bytes does not fit a datagram")
        if self._pending and self._pending_bytes + len(frame) > self._max:
            self.flush()
        self._pending.append(frame)
        self._pending_bytes += len(frame)

    def flush(self) -> None:
        """Send the current datagram, if any."""
        if self._pending:
            self._sock.send(b"".join(self._pending))
            self.datagrams_sent += 1
            self._pending, self._pending_bytes = [], 0

    def close(self) -> None:
        """Flush and close the socket."""
        try:
            self.flush()
        finally:
            self._sock.close()

    def __enter__(self) -> UdpFrameSender:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


__all__ = ["HANDSHAKE_ACKED", "FrameError", "Priority", "TcpFrameSender", "UdpFrameSender",
           "encode_frame"]
