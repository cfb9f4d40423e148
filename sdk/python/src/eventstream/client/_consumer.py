"""Consumer-group members: iterators of events that are acked or nacked, and rejoin.

A consumer runs one Consume stream at a time in the background (a thread for
:class:`Consumer`, a task for :class:`AsyncConsumer`): it joins the group,
keeps the latest assignment, and hands the delivered events to the iterating
caller through a bounded buffer, so a slow caller slows the stream instead of
growing memory. Acks and nacks are queued and sent in batches, as
EventPositions requests, on the same stream.

When the stream fails with a retryable status (the connection dropped, the
server is draining) the consumer joins again after a jittered backoff. Events
received but not yet iterated, and answers not yet sent, are dropped then: the
server delivers every unacknowledged event of a member that left again (to
this consumer or another member). Delivery is at-least-once; handle events
idempotently, keyed by their ``id``.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from types import TracebackType

import grpc

from eventstream.v1 import subscribe_pb2

from ._channel import Pause
from ._consume import (
    Assignment,
    ConsumedEvent,
    Settle,
    assignment_from_proto,
    consumed_from_proto,
    drain,
    settle_requests,
)
from ._errors import EventStreamError, error_from_rpc
from ._events import ReceivedEvent
from ._retry import RetryBudget, RetryPolicy

DEFAULT_BUFFER = 1000
"""Events received and not yet iterated, at most (one response may overshoot it)."""

_Request = subscribe_pb2.ConsumeRequest
_Response = subscribe_pb2.ConsumeResponse


def _requests(start: _Request, pending: queue.SimpleQueue[Settle | None]) -> Iterator[_Request]:
    """The start, then the queued answers in batches, until ``None`` is queued."""
    yield start
    ended = False
    while not ended:
        settles, ended = drain(pending.get(), pending.get_nowait, queue.Empty)
        yield from settle_requests(settles)


async def _async_requests(start: _Request, pending: asyncio.Queue[Settle | None]
                          ) -> AsyncIterator[_Request]:
    """The start, then the queued answers in batches, until ``None`` is queued."""
    yield start
    ended = False
    while not ended:
        settles, ended = drain(await pending.get(), pending.get_nowait, asyncio.QueueEmpty)
        for request in settle_requests(settles):
            yield request


class _Rejoin:
    """Consecutive failed joins under the retry policy."""

    def __init__(self, retry: RetryPolicy) -> None:
        self._budget = RetryBudget(retry, None)

    def progressed(self) -> None:
        """The stream delivered something: forget earlier failures."""
        self._budget.reset()

    def wait_after(self, rpc_error: grpc.RpcError) -> tuple[float | None, EventStreamError]:
        """(seconds to wait before joining again or None to give up, the typed error)."""
        error = error_from_rpc(rpc_error)
        self._budget.remaining()  # counts the failed attempt
        return self._budget.wait_after(error), error


class _Member:
    """What both consumers share.

    Settings, the latest assignment, the queue of answers and the buffer of events not yet iterated.
    """

    def __init__(self, start: _Request, retry: RetryPolicy, close_timeout: float,
                 buffer: int) -> None:
        self._start = start
        self._rejoin = _Rejoin(retry)
        self._close_timeout = close_timeout
        self._buffer = buffer
        self._events: collections.deque[ConsumedEvent] = collections.deque()
        self._pending: queue.SimpleQueue[Settle | None] | asyncio.Queue[Settle | None] | None = (
            None)  # the current stream's answers; None between streams
        self._assignment: Assignment | None = None
        self._error: Exception | None = None
        self._closed = False
        self._ended = False

    @property
    def assignment(self) -> Assignment | None:
        """The partitions this member reads, as last announced; None before the first."""
        return self._assignment

    def ack(self, *events: ReceivedEvent) -> None:
        """Queue acks: the events are done and never delivered to the group again."""
        self._queue(True, events)

    def nack(self, *events: ReceivedEvent) -> None:
        """Queue nacks: the events are delivered again now (or dead-lettered)."""
        self._queue(False, events)

    def _queue(self, is_ack: bool, events: tuple[ReceivedEvent, ...]) -> None:
        pending = self._pending
        if pending is None:
            return  # between streams: the server delivers these again
        for event in events:
            pending.put_nowait((is_ack, event.partition, event.offset))


class Consumer(_Member):
    """A blocking consumer-group member: iterate events, ack or nack each one.

    Made by :meth:`Client.consume`; use it as a context manager. A background
    thread runs the stream and sends answers in batches; :meth:`ack` and
    :meth:`nack` (or ``event.ack()``) may be called from any thread, so events
    can be handed to a worker pool. Leaving the ``with`` block (or
    :meth:`close`) sends the answers still queued, leaves the group and waits
    for the server to end the stream, at most ``close_timeout`` seconds.

    Delivery is at-least-once: an event comes again after a nack, after the
    ack deadline, or when a rejoin lost its ack. Make the handling idempotent,
    keyed by ``event.id``.

    Example:
        >>> with client.consume("billing", "orders/#", start="earliest") as consumer:
        ...     for event in consumer:
        ...         charge(event.id, event.payload)   # idempotent by event id
        ...         event.ack()
    """

    def __init__(self, rpc: grpc.StreamStreamMultiCallable[_Request, _Response], start: _Request,
                 retry: RetryPolicy, close_timeout: float, pause: Pause,
                 buffer: int = DEFAULT_BUFFER) -> None:
        super().__init__(start, retry, close_timeout, buffer)
        self._rpc = rpc
        self._pause = pause
        self._changed = threading.Condition()
        self._call: Iterator[_Response] | None = None
        self._closing = threading.Event()  # wakes a backoff wait on close()
        self._reader = threading.Thread(target=self._run, name="eventstream-consume", daemon=True)
        self._reader.start()

    def __iter__(self) -> Consumer:
        return self

    def __next__(self) -> ConsumedEvent:
        with self._changed:
            while not self._events:
                if self._error is not None:
                    raise self._error
                if self._ended or self._closed:
                    raise StopIteration
                self._changed.wait()
            event = self._events.popleft()
            self._changed.notify_all()  # room in the buffer
            return event

    def _run(self) -> None:
        try:
            while self._join_and_read():
                pass
        except Exception as unexpected:  # surfaced to the iterating caller, not lost
            self._error = unexpected
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def _join_and_read(self) -> bool:
        """One stream, then the backoff before the next; False when there is none."""
        pending: queue.SimpleQueue[Settle | None] = queue.SimpleQueue()
        with self._changed:
            if self._closed:
                return False
            call = self._call = self._rpc(_requests(self._start, pending))
            self._pending = pending
        try:
            for response in call:
                self._rejoin.progressed()
                self._receive(response)
            return False  # the server ended the stream: after close(), or for good
        except grpc.RpcError as rpc_error:
            if self._closed:
                return False
            wait, error = self._rejoin.wait_after(rpc_error)
        finally:
            pending.put(None)  # ends this stream's request iterator
            with self._changed:
                self._pending = None
                self._events.clear()  # their member left: the server delivers them again
        if wait is None:
            with self._changed:
                self._error = error
            return False
        self._pause(wait, self._closing)
        return True

    def _receive(self, response: _Response) -> None:
        with self._changed:
            if response.HasField("assignment"):
                self._assignment = assignment_from_proto(response.assignment)
            if not response.events:
                return
            while len(self._events) >= self._buffer and not self._closed:
                self._changed.wait()
            if not self._closed:  # after close, the server delivers them to others
                self._events.extend(consumed_from_proto(m, self) for m in response.events)
                self._changed.notify_all()

    def close(self) -> None:
        """Send the queued answers, leave the group and end the iteration."""
        with self._changed:
            self._closed = True
            self._events.clear()
            self._changed.notify_all()
            pending, call = self._pending, self._call
        self._closing.set()
        if pending is not None:
            pending.put(None)  # the last answers, then the end of the requests
        self._reader.join(self._close_timeout)
        if self._reader.is_alive() and isinstance(call, grpc.Future):
            call.cancel()
            self._reader.join()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class AsyncConsumer(_Member):
    """An asyncio consumer-group member: ``async for`` events, ack or nack each one.

    Made by :meth:`AsyncClient.consume`; use it with ``async with``. A
    background task runs the stream and sends answers in batches; call
    :meth:`ack` and :meth:`nack` (or ``event.ack()``) from the event loop's
    thread. Leaving the block (or ``await close()``) sends the answers still
    queued, leaves the group and waits for the server to end the stream, at
    most ``close_timeout`` seconds. Delivery is at-least-once (see
    :class:`Consumer`).

    Example:
        >>> async with client.consume("billing", "orders/#") as consumer:
        ...     async for event in consumer:
        ...         await charge(event.id, event.payload)   # idempotent by event id
        ...         event.ack()
    """

    def __init__(self, rpc: grpc.aio.StreamStreamMultiCallable[_Request, _Response],
                 start: _Request, retry: RetryPolicy, close_timeout: float,
                 buffer: int = DEFAULT_BUFFER) -> None:
        super().__init__(start, retry, close_timeout, buffer)
        self._rpc = rpc
        self._changed = asyncio.Condition()
        self._call: grpc.aio.StreamStreamCall[_Request, _Response] | None = None
        self._closing = asyncio.Event()  # wakes a backoff wait on close()
        self._reader = asyncio.get_running_loop().create_task(self._run(),
                                                              name="eventstream-consume")

    def __aiter__(self) -> AsyncIterator[ConsumedEvent]:
        return self

    async def __anext__(self) -> ConsumedEvent:
        async with self._changed:
            while not self._events:
                if self._error is not None:
                    raise self._error
                if self._ended or self._closed:
                    raise StopAsyncIteration
                await self._changed.wait()
            event = self._events.popleft()
            self._changed.notify_all()  # room in the buffer
            return event

    async def _run(self) -> None:
        try:
            while await self._join_and_read():
                pass
        except Exception as unexpected:  # surfaced to the iterating caller, not lost
            self._error = unexpected
        finally:
            async with self._changed:
                self._ended = True
                self._changed.notify_all()

    async def _join_and_read(self) -> bool:
        """One stream, then the backoff before the next; False when there is none."""
        if self._closed:
            return False
        pending: asyncio.Queue[Settle | None] = asyncio.Queue()
        call = self._call = self._rpc(_async_requests(self._start, pending))
        self._pending = pending
        try:
            async for response in call:
                self._rejoin.progressed()
                await self._receive(response)
            return False  # the server ended the stream: after close(), or for good
        except grpc.RpcError as rpc_error:
            if self._closed:
                return False
            wait, error = self._rejoin.wait_after(rpc_error)
        except asyncio.CancelledError:
            if not call.cancelled():
                raise  # this task was cancelled, not the call
            return False
        finally:
            pending.put_nowait(None)  # ends this stream's request iterator
            self._pending = None
            self._events.clear()  # their member left: the server delivers them again
        if wait is None:
            self._error = error
            return False
        try:
            await asyncio.wait_for(self._closing.wait(), wait)
        except TimeoutError:
            pass  # waited out the backoff
        return True

    async def _receive(self, response: _Response) -> None:
        if response.HasField("assignment"):
            self._assignment = assignment_from_proto(response.assignment)
        if not response.events:
            return
        async with self._changed:
            while len(self._events) >= self._buffer and not self._closed:
                await self._changed.wait()
            if not self._closed:  # after close, the server delivers them to others
                self._events.extend(consumed_from_proto(m, self) for m in response.events)
                self._changed.notify_all()

    async def close(self) -> None:
        """Send the queued answers, leave the group and end the iteration."""
        self._closed = True
        self._closing.set()
        async with self._changed:
            self._events.clear()
            self._changed.notify_all()
        if self._pending is not None:
            self._pending.put_nowait(None)  # the last answers, then the end of the requests
        done, _ = await asyncio.wait({self._reader}, timeout=self._close_timeout)
        if not done:
            if self._call is not None:
                self._call.cancel()
            self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def __aenter__(self) -> AsyncConsumer:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()
