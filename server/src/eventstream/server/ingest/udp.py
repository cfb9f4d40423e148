"""Raw UDP frame ingest on ``server.udp_port``.

Each datagram holds one or more whole frames and is accepted all or none: a
datagram with a bad frame, or one that finds its lane full, is dropped and
counted by reason. UDP is lossy: nothing is acknowledged, and the kernel
drops datagrams when the socket buffer overflows; those are counted too
(read from ``/proc/net/udp``), so datagrams sent = read + dropped by the
kernel, and read = accepted + dropped by reason.

A receiver thread (:mod:`..queue.udp_receiver`) empties the socket as fast
as datagrams come, into a record queue in native memory
(``ingest.udp_queue_bytes``); a datagram that finds that queue full is
dropped as ``RECEIVE_QUEUE_FULL``. The event loop pops the queue in batches
when its eventfd wakes it, and queues each batch's good datagrams as one
submission per lane when the lanes have room for all of them. While a lane is
full it stops popping, so datagrams wait in the receive queue rather than
being dropped.
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
from ..queue import QueueClosed, QueueEmpty, alloc_buffer, open_queue
from ..queue.udp_receiver import MAX_DATAGRAM, ReceiverStats, start_receiver
from .frames import DecodedFrames, FrameDecoder
from .sink import BrokerSink

log = logging.getLogger(__name__)

_UDP = {"transport": "udp"}
_PROC_TABLES = (Path("/proc/net/udp"), Path("/proc/net/udp6"))
# SO_RCVBUFFORCE (Linux): may exceed net.core.rmem_max with CAP_NET_ADMIN.
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_POP_BYTES = 4 * 1024 * 1024


class UdpIngest:
    """The UDP listener.

    Args:
        config: the ``ingest`` section.
        decoder: the frame decoder.
        sink: where events go.
        metrics: the server's metrics.
        native: the receiver's backend (None follows ``EVENTSTREAM_NATIVE``).
    """

    def __init__(self, config: IngestConfig, decoder: FrameDecoder, sink: BrokerSink,
                 metrics: Metrics, native: bool | None = None) -> None:
        self._config = config
        self._decoder = decoder
        self._sink = sink
        self._metrics = metrics
        self._native = native
        self._sock: socket.socket | None = None
        self._queue = None
        self._receiver = None
        self._consumer: asyncio.Task[None] | None = None
        self._counted = ReceiverStats(0, 0, 0, 0, 0, 0)
        self._inode = 0
        self.port = 0
        self.receive_buffer = 0

    async def start(self, host: str, port: int) -> None:
        """Bind ``host:port`` with the configured receive buffer and start receiving."""
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.receive_buffer = _set_receive_buffer(sock, self._config.udp_receive_buffer_bytes)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._inode = os.fstat(sock.fileno()).st_ino
        self.port = sock.getsockname()[1]
        size = self._config.udp_queue_bytes
        queue = open_queue(capacity_records=max(size // 16, 1), capacity_bytes=size,
                           max_record=MAX_DATAGRAM, native=self._native)
        self._buffer = alloc_buffer(_POP_BYTES) if queue.native else bytearray(_POP_BYTES)
        self._view = memoryview(self._buffer).cast("B")
        self._sock, self._queue = sock, queue
        self._receiver = start_receiver(sock, queue)
        self._consumer = asyncio.create_task(self._consume(), name="udp-ingest")

    def stop_accepting(self) -> None:
        """Stop reading the socket; datagrams already read are still handled (see :meth:`finish`)."""
        if self._receiver is not None:
            self._receiver.stop()
            self._queue.close()

    async def finish(self, timeout: float) -> None:
        """After :meth:`stop_accepting`: wait up to ``timeout`` seconds until every
        datagram read is queued or counted, then release the socket and queue."""
        if self._consumer is None:
            return
        consumer, self._consumer = self._consumer, None
        try:
            await asyncio.wait_for(asyncio.shield(consumer), timeout)
        except TimeoutError:
            consumer.cancel()
            log.warning("udp ingest: datagrams still waiting for lane room at shutdown "
                        "are dropped")
            await asyncio.gather(consumer, return_exceptions=True)
        self._count_receiver_drops()
        self._sock.close()
        self._queue.destroy()

    async def _consume(self) -> None:
        """Take datagrams from the receive queue in batches until it is closed and empty."""
        queue = self._queue
        while True:
            datagrams = self._pop()
            if datagrams is None:
                self._count_receiver_drops()
                try:
                    await queue.wait_async()
                except QueueClosed:
                    return
                continue
            await self._handle(datagrams)

    def _pop(self) -> list[memoryview] | None:
        """The next batch of datagrams (views of the pop buffer), or None when none wait."""
        try:
            _, size = self._queue.pop_into(self._buffer, 4096)
        except QueueEmpty:
            return None
        view = self._view
        datagrams = []
        at = 0
        while at < size:
            length = int.from_bytes(view[at:at + 4], "big")
            datagrams.append(view[at + 4:at + 4 + length])
            at += 4 + length
        return datagrams

    def _count_receiver_drops(self) -> None:
        """Count what the receiver dropped since the last call (read, then dropped)."""
        now = self._receiver.stats()
        before, self._counted = self._counted, now
        metrics = self._metrics
        for reason, count in (("RECEIVE_QUEUE_FULL", now.queue_full - before.queue_full),
                              ("DATAGRAM_TOO_LONG", now.truncated - before.truncated)):
            if count:
                metrics.datagrams.add(count, _UDP)
                metrics.datagrams_dropped.add(count, {"transport": "udp", "reason": reason})
        if now.errors != before.errors:
            log.warning("udp ingest: %d receive errors, the last errno %d",
                        now.errors - before.errors, now.last_errno)

    async def _handle(self, datagrams: list[memoryview]) -> None:
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
        metrics = self._metrics
        metrics.datagrams.add(len(datagrams), _UDP)
        metrics.received.add(frames, _UDP)
        if good:
            await self._queue_good(good, dropped, rejected)
        for reason, count in dropped.items():
            metrics.datagrams_dropped.add(count, {"transport": "udp", "reason": reason})
            metrics.rejected.add(rejected[reason], {"transport": "udp", "reason": reason})

    async def _queue_good(self, good: list[DecodedFrames], dropped: Counter[str],
                          rejected: Counter[str]) -> None:
        """Queue the good datagrams of a batch, each all or none, counting refusals.

        While a lane is full this waits (the receive queue holds what comes
        meanwhile); a datagram is dropped only when it can never fit a lane or
        the server is shutting down.
        """
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
                await sink.offer_when_room(submissions)
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
