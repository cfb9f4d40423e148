"""The sending half of the link to one peer: a bounded queue and one long-lived Exchange stream.

Messages for the peer wait in a bounded queue; one task writes them to an
``Exchange`` stream, taking everything queued since its last write (up to
``max_batch_bytes``) as one request, so a burst costs one HTTP/2 message
rather than one per Raft message. A write waits for HTTP/2 flow control:
a slow peer fills the queue, and what does not fit is dropped and reported.

When the stream fails, queued messages are dropped, the peer is reported
unreachable (the core then probes it again from what it acknowledged), and
the link waits a jittered, doubling back-off before the next attempt;
messages sent meanwhile are dropped and reported at once rather than queued
stale. A snapshot goes on its own ``InstallSnapshot`` stream, one at a time,
its outcome reported to the driver.

A new channel (:meth:`PeerLink.use_channel`, after a certificate change)
is taken without losing a message: the open stream is ended once what was
written is read, and the queue goes on over a stream on the new channel.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import grpc

from eventstream.peer.v1 import raft_pb2, raft_pb2_grpc
from eventstream.server.raft import InstallSnapshot, Message, Snapshot

from ..errors import SnapshotUnavailable
from ..ports import Inbox
from .convert import encode_batch, message_size, snapshot_requests
from .identity import SERVICE

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.05
"""Seconds before the first reconnection attempt (then doubling, jittered by ±50%)."""
BACKOFF_MAX = 1.0
"""Longest wait between attempts: a restarted peer is reached within about a second."""
SNAPSHOT_TIMEOUT = 300.0
"""Most seconds one snapshot transfer may take."""
EXCHANGE = f"/{SERVICE}/Exchange"
if TYPE_CHECKING:
    _Exchange = grpc.aio.StreamUnaryMultiCallable[bytes, raft_pb2.ExchangeResponse]


class LinkStats:
    """What one link did, for tests, benchmarks and metrics."""

    __slots__ = (
        "dropped",
        "failures",
        "sent_messages",
        "sent_requests",
        "snapshots_failed",
        "snapshots_sent",
        "streams",
    )

    def __init__(self) -> None:
        self.sent_messages = 0
        self.sent_requests = 0
        self.dropped: collections.Counter[str] = collections.Counter()
        """Messages dropped, by reason: ``queue_full``, ``link_down``, ``snapshot_busy``."""
        self.streams = 0
        """Exchange streams opened."""
        self.failures = 0
        """Exchange streams that failed."""
        self.snapshots_sent = 0
        self.snapshots_failed = 0


class PeerLink:
    """Messages to one peer (see the module docstring).

    Args:
        peer_id: the peer's node id.
        channel: a channel to the peer's cluster port (the link closes it).
        metadata: the identity metadata of every call.
        inbox: where send failures are reported (``None`` until bound).
        queue_messages: messages queued at most.
        max_batch_bytes: most bytes of messages in one request (at least one message).
        chunk_bytes: size of a snapshot's data chunks.
        rng: the back-off jitter's source.
        snapshot_data: what a snapshot's stream carries (default: its data);
            may raise ``SnapshotUnavailable`` (then the transfer is reported failed).
    """

    def __init__(self, peer_id: str, channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]],
                 inbox: Callable[[], Inbox | None], *, queue_messages: int, max_batch_bytes: int,
                 chunk_bytes: int, rng: random.Random,
                 snapshot_data: Callable[[Snapshot], bytes] | None = None) -> None:
        self.peer_id = peer_id
        self._channel = channel
        self._stub = raft_pb2_grpc.PeerServiceStub(channel)  # type: ignore[no-untyped-call]
        # Exchange requests are encoded by convert.encode_batch: sent as they are.
        self._exchange: _Exchange = channel.stream_unary(
            EXCHANGE, request_serializer=None, response_deserializer=raft_pb2.ExchangeResponse.FromString)
        self._metadata = tuple(metadata)
        self._inbox = inbox
        self._queue: collections.deque[Message] = collections.deque()
        self._queue_messages = queue_messages
        self._max_batch_bytes = max_batch_bytes
        self._chunk_bytes = chunk_bytes
        self._snapshot_data = snapshot_data or _own_data
        self._rng = rng
        self._pending = asyncio.Event()
        self._down = False
        self._wrote = False
        self._switch = False
        self._writing = 0
        self._task: asyncio.Task[None] | None = None
        self._snapshot: asyncio.Task[None] | None = None
        self.stats = LinkStats()

    @property
    def channel(self) -> grpc.aio.Channel:
        """The channel to the peer (forwarded requests share it)."""
        return self._channel

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The identity metadata of every call to the peer."""
        return self._metadata

    @property
    def connected(self) -> bool:
        """Whether a stream is open and its last write went through."""
        return self._task is not None and not self._down and self.stats.streams > self.stats.failures

    def start(self) -> None:
        """Start the task that keeps the stream open and writes to it."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"peer-link-{self.peer_id}")

    async def stop(self) -> None:
        """End the stream and any snapshot transfer, close the channel."""
        for task in (self._task, self._snapshot):
            if task is not None:
                task.cancel()
        for task in (self._task, self._snapshot):
            if task is not None:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        await self._channel.close()

    def use_channel(self, channel: grpc.aio.Channel) -> grpc.aio.Channel:
        """Open the next streams on ``channel``; the old one is returned, for the caller to close.

        The open Exchange stream ends at once, cleanly, and the next one is
        opened on ``channel``; a snapshot transfer under way goes on.
        """
        old, self._channel = self._channel, channel
        self._stub = raft_pb2_grpc.PeerServiceStub(channel)  # type: ignore[no-untyped-call]
        self._exchange = channel.stream_unary(
            EXCHANGE, request_serializer=None, response_deserializer=raft_pb2.ExchangeResponse.FromString)
        self._switch = True
        self._pending.set()
        return old

    def enqueue(self, message: Message) -> None:
        """Queue ``message`` for the peer; drop and report it when that cannot be done at once."""
        if type(message) is InstallSnapshot:
            self._start_snapshot(message)
            return
        if self._down:
            self._drop(1, "link_down")
        elif len(self._queue) >= self._queue_messages:
            self._drop(1, "queue_full")
        else:
            self._queue.append(message)
            self._pending.set()

    # ------------------------------------------------------------------

    def _drop(self, count: int, reason: str) -> None:
        self.stats.dropped[reason] += count
        inbox = self._inbox()
        if inbox is not None:
            inbox.report_unreachable(self.peer_id)

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            self._wrote = False
            try:
                await self._stream()
                continue  # ended for a new channel: nothing lost, go on at once
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError) as error:
                self.stats.failures += 1
                log.debug("link to %s failed: %s", self.peer_id, _describe(error))
            queued = len(self._queue) + self._writing
            self._writing = 0
            self._queue.clear()
            self._pending.clear()
            self._down = True
            self._drop(queued, "link_down")
            if self._wrote:
                backoff = BACKOFF_FIRST  # it worked until now: try again soon
            await asyncio.sleep(backoff * (0.5 + self._rng.random()))
            backoff = min(backoff * 2, BACKOFF_MAX)
            self._down = False

    async def _stream(self) -> None:
        self._switch = False
        call = self._exchange(metadata=self._metadata)
        self.stats.streams += 1
        queue, pending, stats = self._queue, self._pending, self.stats
        try:
            while True:
                await pending.wait()
                if self._switch:
                    await call.done_writing()
                    await call  # the peer answers once it has read every request
                    return
                if not queue:  # woken for a switch that an earlier stream took
                    pending.clear()
                    continue
                if call.done():
                    await call  # raises the status the peer ended the stream with
                    raise asyncio.InvalidStateError("the peer ended the stream")
                batch = self._take(queue)
                self._writing = len(batch)  # lost with the stream if a write fails
                if not queue:
                    pending.clear()
                group = batch[0].group_id
                start = 0
                for number, message in enumerate(batch):
                    if message.group_id != group:
                        await call.write(encode_batch(group, batch[start:number]))
                        stats.sent_requests += 1
                        group, start = message.group_id, number
                await call.write(encode_batch(group, batch[start:]))
                stats.sent_requests += 1
                stats.sent_messages += len(batch)
                self._writing = 0
                self._wrote = True
        finally:
            call.cancel()

    def _take(self, queue: collections.deque[Message]) -> list[Message]:
        """The oldest queued messages, up to ``max_batch_bytes`` (at least one)."""
        budget = self._max_batch_bytes
        batch = [queue.popleft()]
        used = message_size(batch[0])
        while queue:
            size = message_size(queue[0])
            if used + size > budget:
                break
            used += size
            batch.append(queue.popleft())
        return batch

    def _start_snapshot(self, message: InstallSnapshot) -> None:
        if self._snapshot is not None and not self._snapshot.done():
            self.stats.dropped["snapshot_busy"] += 1
            inbox = self._inbox()
            if inbox is not None:
                inbox.report_snapshot(self.peer_id, False)
            return
        self._snapshot = asyncio.get_running_loop().create_task(
            self._send_snapshot(message), name=f"peer-snapshot-{self.peer_id}")

    async def _send_snapshot(self, message: InstallSnapshot) -> None:
        ok = False
        try:
            data = self._snapshot_data(message.snapshot)
            await self._stub.InstallSnapshot(snapshot_requests(message, self._chunk_bytes, data),
                                             metadata=self._metadata, timeout=SNAPSHOT_TIMEOUT)
            ok = True
        except SnapshotUnavailable as error:  # the core tries again (a newer one, or later)
            log.debug("snapshot at %d to %s not sent: %s", message.snapshot.index, self.peer_id, error)
        except (grpc.aio.AioRpcError, grpc.aio.UsageError) as error:
            log.info("snapshot at %d to %s failed: %s", message.snapshot.index, self.peer_id,
                     _describe(error))
        if ok:
            self.stats.snapshots_sent += 1
        else:
            self.stats.snapshots_failed += 1
        inbox = self._inbox()
        if inbox is not None:
            inbox.report_snapshot(self.peer_id, ok)


def _own_data(snapshot: Snapshot) -> bytes:
    return snapshot.data


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return repr(error)
