"""Raw UDP frame ingest on ``server.udp_port``.

Each datagram holds one or more whole frames and is accepted all or none: a
datagram with a bad frame, or one that finds its lane full, is dropped and
counted by reason. UDP is lossy: nothing is acknowledged, and the kernel
drops datagrams when the socket buffer overflows; those are counted too
(read from ``/proc/net/udp``), so datagrams sent = read + dropped by the
kernel, and read = accepted + dropped by reason.

Datagrams that arrive together are handled in one callback, so metrics are
recorded per group, and the group is queued as one submission per lane when
the lanes have room for all of it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import Counter
from pathlib import Path

from ..config.model import IngestConfig
from ..errors import EventStreamError
from ..observability.metrics import Metrics
from .frames import DecodedFrames, FrameDecoder
from .sink import BrokerSink

log = logging.getLogger(__name__)

_UDP = {"transport": "udp"}
_PROC_TABLES = (Path("/proc/net/udp"), Path("/proc/net/udp6"))
# SO_RCVBUFFORCE (Linux): may exceed net.core.rmem_max with CAP_NET_ADMIN.
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


class UdpIngest(asyncio.DatagramProtocol):
    """The UDP listener.

    Args:
        config: the ``ingest`` section.
        decoder: the frame decoder.
        sink: where events go.
        metrics: the server's metrics.
    """

    def __init__(self, config: IngestConfig, decoder: FrameDecoder, sink: BrokerSink,
                 metrics: Metrics) -> None:
        self._config = config
        self._decoder = decoder
        self._sink = sink
        self._metrics = metrics
        self._transport: asyncio.DatagramTransport | None = None
        self._inode = 0
        self._waiting: list[bytes] = []
        self.port = 0
        self.receive_buffer = 0

    async def start(self, host: str, port: int) -> None:
        """Bind ``host:port`` with the configured receive buffer."""
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.receive_buffer = _set_receive_buffer(sock, self._config.udp_receive_buffer_bytes)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        self._inode = os.fstat(sock.fileno()).st_ino
        self.port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=sock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        self._transport = transport  # type: ignore[assignment]

    def stop_accepting(self) -> None:
        """Close the socket; datagrams already read are still handled."""
        if self._transport is not None:
            self._transport.close()

    def datagram_received(self, data: bytes, addr: object) -> None:  # noqa: D102
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self._handle_waiting)
        self._waiting.append(data)

    def error_received(self, exc: Exception) -> None:  # noqa: D102
        log.warning("udp ingest: socket error: %s", exc)

    def _handle_waiting(self) -> None:
        datagrams, self._waiting = self._waiting, []
        decode = self._decoder.decode
        frames = 0
        dropped: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        good: list[DecodedFrames] = []
        for data in datagrams:
            decoded = decode(data, final=True)
            frames += decoded.count
            if decoded.rejection is not None:
                frames += 1
                dropped[decoded.rejection.reason] += 1
                rejected[decoded.rejection.reason] += decoded.count + 1
            elif decoded.count:
                good.append(decoded)
        if good:
            self._queue(good, dropped, rejected)
        metrics = self._metrics
        metrics.datagrams.add(len(datagrams), _UDP)
        metrics.received.add(frames, _UDP)
        for reason, count in dropped.items():
            metrics.datagrams_dropped.add(count, {"transport": "udp", "reason": reason})
            metrics.rejected.add(rejected[reason], {"transport": "udp", "reason": reason})

    def _queue(self, good: list[DecodedFrames], dropped: Counter[str],
               rejected: Counter[str]) -> None:
        """Queue the good datagrams of a group, each all or none, counting refusals."""
        sink = self._sink
        per_datagram = [sink.submissions(decoded.accepted, chunked=False)
                        for decoded in good if decoded.accepted is not None]
        if len(per_datagram) > 1:
            # Usually the lanes have room for the whole group: one call for all.
            try:
                sink.offer([s for submissions in per_datagram for s in submissions])
                return
            except EventStreamError as error:
                if error.reason != "LANE_FULL":
                    for decoded in good:
                        dropped[error.reason] += 1
                        rejected[error.reason] += decoded.count
                    return
        for decoded, submissions in zip(good, per_datagram):
            try:
                sink.offer(submissions)
            except EventStreamError as error:
                dropped[error.reason] += 1
                rejected[error.reason] += decoded.count

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped on this socket (0 when it cannot tell)."""
        if not self._inode:
            return 0
        inode = str(self._inode)
        for table in _PROC_TABLES:
            try:
                lines = table.read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if len(fields) > 12 and fields[9] == inode:
                    return int(fields[-1])
        return 0


def _set_receive_buffer(sock: socket.socket, wanted: int) -> int:
    """Ask for ``wanted`` bytes of SO_RCVBUF, forcing past rmem_max if allowed.

    Linux reports twice the size it grants (half is its bookkeeping).

    Returns:
        The granted size, as requested (the kernel's report halved).
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    if got < wanted:
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, wanted)
            got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
        except OSError:
            pass
    if got < wanted:
        log.warning("udp ingest: asked for a %d-byte receive buffer, the kernel granted %d "
                    "(raise net.core.rmem_max); expect drops under bursts", wanted, got)
    return got


__all__ = ["UdpIngest"]
