"""Raw UDP frame ingest on ``server.udp_port``.

Each datagram holds one or more whole frames and is accepted all or none: a
datagram with a bad frame is dropped and counted by reason. UDP is lossy:
nothing is acknowledged, and the kernel
drops datagrams when the socket buffer overflows; those are counted too
(read from ``/proc/net/udp``), so datagrams sent = read + dropped by the
kernel, and read = accepted + dropped by reason.

A receiver thread (:mod:`..native.udp_receiver`) empties the socket as fast
as datagrams come, into a record queue in native memory
(``ingest.udp_queue_bytes``); a datagram that finds that queue full is
dropped as ``RECEIVE_QUEUE_FULL``. The event loop pops the queue in batches
when its eventfd wakes it, validates a whole batch in one native call (each
datagram accepted whole or dropped whole) and queues its good frames in lane
order. While a lane is full it stops popping, so datagrams wait in the
receive queue rather than being dropped.

UDP carries no credentials: with ``ingest.udp_allowed_networks`` the
receiver thread drops datagrams from other sources (``SOURCE_NOT_ALLOWED``)
before they are queued, and with ``ingest.udp_enabled`` false the port is
not opened at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

from ..broker.lanes import Submission
from ..config.model import IngestConfig
from ..errors import EventStreamError
from ..native import (
    MAX_DATAGRAM,
    Accepted,
    QueueClosed,
    QueueEmpty,
    ReceiverStats,
    ShardQueue,
    UdpReceiver,
    alloc_buffer,
    start_receiver,
)
from ..observability.metrics import Metrics
from ..tasks import cancel_and_wait
from .forwarding import FrameForwarder, frames_of_datagrams
from .frames import FrameDecoder
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
        numa: place the receive queue's memory on a NUMA node (its one
            shard on node 0; best effort), as ``numa.enabled`` asks.
        forwarder: on a member of a replicated cluster, sends the frames of
            the datagrams read while it follows to the leader (:mod:`.forwarding`).
    """

    def __init__(self, config: IngestConfig, decoder: FrameDecoder, sink: BrokerSink,
                 metrics: Metrics, numa: bool = False,
                 forwarder: FrameForwarder | None = None) -> None:
        self._config = config
        self._forwarder = forwarder
        self._decoder = decoder
        self._sink = sink
        self._metrics = metrics
        self._numa = numa
        self._sock: socket.socket | None = None
        self._queue: ShardQueue | None = None
        self._receiver: UdpReceiver | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._tally: asyncio.Task[None] | None = None
        self._counted = ReceiverStats(0, 0, 0, 0, 0, 0, 0)
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
        queue = ShardQueue(capacity_records=max(size // 16, 1), capacity_bytes=size,
                           max_record=MAX_DATAGRAM, numa=self._numa)
        self._buffer = alloc_buffer(_POP_BYTES)
        self._view = memoryview(self._buffer).cast("B")
        self._sock, self._queue = sock, queue
        self._receiver = start_receiver(sock, queue, networks=self._config.udp_allowed_networks)
        self._consumer = asyncio.create_task(self._consume(), name="udp-ingest")
        if self._config.udp_allowed_networks:
            # Refused datagrams never reach the queue, so nothing wakes the
            # consumer to count them: count them every second.
            self._tally = asyncio.create_task(self._count_every_second(), name="udp-tally")

    async def _count_every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._count_receiver_drops()

    def stop_accepting(self) -> None:
        """Stop reading the socket; datagrams already read are still handled (see :meth:`finish`)."""
        if self._receiver is not None and self._queue is not None:
            self._receiver.stop()
            self._queue.close()

    async def finish(self, timeout: float) -> None:
        """After :meth:`stop_accepting`.

        Wait up to ``timeout`` seconds until every datagram read is queued or counted, then release the socket
        and queue.
        """
        await cancel_and_wait(self._tally)
        self._tally = None
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
        assert self._sock is not None and self._queue is not None  # started
        self._sock.close()
        self._queue.destroy()

    async def _consume(self) -> None:
        """Take datagrams from the receive queue in batches until it is closed and empty."""
        queue = self._queue
        assert queue is not None  # started
        while True:
            try:
                count, size = queue.pop_into(self._buffer, 4096)
            except QueueEmpty:
                self._count_receiver_drops()
                try:
                    await queue.wait_async()
                except QueueClosed:
                    return
                continue
            await self._handle(self._view[:size], count)

    def _count_receiver_drops(self) -> None:
        """Count what the receiver dropped since the last call (read, then dropped)."""
        assert self._receiver is not None  # started
        now = self._receiver.stats()
        before, self._counted = self._counted, now
        metrics = self._metrics
        for reason, count in (("RECEIVE_QUEUE_FULL", now.queue_full - before.queue_full),
                              ("DATAGRAM_TOO_LONG", now.truncated - before.truncated),
                              ("SOURCE_NOT_ALLOWED", now.source_refused - before.source_refused)):
            if count:
                metrics.datagrams.add(count)
                metrics.datagrams_dropped.add(count, {"reason": reason})
        if now.errors != before.errors:
            log.warning("udp ingest: %d receive errors, the last errno %d",
                        now.errors - before.errors, now.last_errno)

    async def _handle(self, batch: memoryview, datagrams: int) -> None:
        """Decode a popped batch in one call, count it, and queue its good frames."""
        decoded = self._decoder.decode_datagrams(batch)
        metrics = self._metrics
        metrics.datagrams.add(datagrams)
        metrics.received.add(decoded.frames, _UDP)
        for reason, count in decoded.dropped.items():
            metrics.datagrams_dropped.add(count, {"reason": reason})
            metrics.rejected.add(decoded.rejected[reason], {"transport": "udp", "reason": reason})
        accepted = decoded.accepted
        if not accepted.good:
            return
        forwarder = self._forwarder
        if forwarder is not None and forwarder.follows():
            await self._forward_good(forwarder, batch, accepted)
        else:
            await self._queue_good(accepted)

    async def _forward_good(self, forwarder: FrameForwarder, batch: memoryview,
                            accepted: Accepted) -> None:
        """Send the good datagrams' frames to the leader; a refusal drops and counts them.

        Waits while the node has too many requests in flight (the receive
        queue holds what comes meanwhile).
        """
        refused = frozenset(refusal.position for refusal in accepted.refusals())
        frames = frames_of_datagrams(batch, refused)
        task = await forwarder.send(frames, accepted.good, "udp", self._on_full)
        task.add_done_callback(lambda done: self._count_forward_failure(done, accepted))

    def _count_forward_failure(self, task: asyncio.Task[bytes], accepted: Accepted) -> None:
        """Count the datagrams of a forwarded request the leader did not take (or none is known)."""
        if task.cancelled():
            reason = "SHUTTING_DOWN"
        else:
            error = task.exception()
            if error is None:
                return
            reason = error.reason if isinstance(error, EventStreamError) else "INTERNAL"
        datagrams = len(set(accepted.good_events().indexes()))
        self._metrics.datagrams_dropped.add(datagrams, {"reason": reason})
        self._metrics.rejected.add(accepted.good, {"transport": "udp", "reason": reason})
        log.warning("udp ingest: %d datagrams read but not forwarded to the leader: %s",
                    datagrams, reason)

    async def _queue_good(self, accepted: Accepted) -> None:
        """Queue the good datagrams' events in order, waiting while a lane is full.

        The receive queue holds what comes meanwhile.
        """
        submissions = self._sink.submissions(accepted)
        for number, submission in enumerate(submissions):
            try:
                await self._sink.offer_when_room([submission], self._on_full)
            except EventStreamError as error:   # e.g. SHUTTING_DOWN: count what is lost
                self._count_lost(submissions[number:], error.reason)
                return

    def _on_full(self) -> None:
        self._metrics.ingest_backpressure.add(1, _UDP)

    def _count_lost(self, lost: list[Submission], reason: str) -> None:
        datagrams = {index for submission in lost for index in submission.events.indexes()}
        self._metrics.datagrams_dropped.add(len(datagrams), {"reason": reason})
        self._metrics.rejected.add(sum(submission.count for submission in lost),
                                   {"transport": "udp", "reason": reason})
        log.warning("udp ingest: %d datagrams read but not queued: %s", len(datagrams), reason)

    def queue_reading(self, field: str) -> list[tuple[int, dict[str, str]]]:
        """``field`` of the receive queue's :class:`..native.QueueStats`, as a metric reading."""
        if self._consumer is None or self._queue is None:
            return []
        return [(getattr(self._queue.stats(), field), {})]

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
