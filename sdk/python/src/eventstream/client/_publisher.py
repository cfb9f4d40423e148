"""Pipelined publishing over one PublishStream: send without waiting, acks in order.

The server answers requests in order, echoing each request's sequence; a
:class:`_Pipeline` matches answers to the futures of the requests, for the
blocking :class:`Publisher` (a reader thread) and the :class:`AsyncPublisher`
(a reader task) alike. A stream is not retried as a whole: each future gets
its events' results (or the stream's error), and the caller decides.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol

import grpc

from eventstream.v1 import publish_pb2

from ._errors import EventStreamError, UnavailableError, error_from_rpc, make_error
from ._events import Event, event_to_proto
from ._results import PublishAck, PublishResult, result_from_proto

DEFAULT_WINDOW = 64
"""Requests sent but not yet answered, at most, per stream."""


class _Settable(Protocol):
    def done(self) -> bool: ...
    def set_result(self, result: Any, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


class _Pipeline:
    """Requests in flight, in order: (sequence, future, whether one event was sent)."""

    def __init__(self) -> None:
        self._sequence = 0
        self._waiting: collections.deque[tuple[int, _Settable, bool]] = collections.deque()

    def request(self, events: Iterable[Event], future: _Settable,
                single: bool) -> publish_pb2.PublishStreamRequest:
        """Register ``future`` and build its request (events get ids here)."""
        self._sequence += 1
        self._waiting.append((self._sequence, future, single))
        return publish_pb2.PublishStreamRequest(
            sequence=self._sequence, events=[event_to_proto(event) for event in events])

    def resolve(self, response: publish_pb2.PublishStreamResponse) -> None:
        """Complete the oldest request's future with ``response``."""
        sequence, future, single = self._waiting.popleft()
        if response.sequence != sequence:  # the server broke its ordering promise
            error = UnavailableError(grpc.StatusCode.UNAVAILABLE,
                                     f"answer for sequence {response.sequence}, "
                                     f"expected {sequence}")
            self._waiting.appendleft((sequence, future, single))
            self.fail(error)
            return
        if future.done():
            return  # the caller cancelled it
        results = [result_from_proto(result) for result in response.results]
        if not single:
            future.set_result(results)
        elif results[0].ack is not None:
            future.set_result(results[0].ack)
        else:
            assert results[0].error is not None
            future.set_exception(results[0].error)

    def fail(self, error: EventStreamError) -> int:
        """Fail every waiting future with ``error``; return how many there were."""
        count = len(self._waiting)
        while self._waiting:
            future = self._waiting.popleft()[1]
            if not future.done():
                future.set_exception(error)
        return count


def _ended_early() -> UnavailableError:
    return UnavailableError(grpc.StatusCode.UNAVAILABLE,
                            "the publish stream ended before every request was answered")


class Publisher:
    """A blocking publish stream with pipelined acknowledgements.

    :meth:`send` returns at once with a future (it blocks only while
    ``window`` requests are unanswered); futures complete in send order.
    Made by :meth:`Client.publish_stream`; use it as a context manager, which
    waits for every answer on exit.

    Example:
        >>> with client.publish_stream() as stream:
        ...     futures = [stream.send(Event("metrics/cpu", str(n))) for n in range(100)]
        >>> offsets = [future.result().offset for future in futures]
    """

    def __init__(self, rpc: grpc.StreamStreamMultiCallable[publish_pb2.PublishStreamRequest,
                                                           publish_pb2.PublishStreamResponse],
                 window: int = DEFAULT_WINDOW) -> None:
        self._requests: queue.SimpleQueue[publish_pb2.PublishStreamRequest | None] = (
            queue.SimpleQueue())
        self._pipeline = _Pipeline()
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(window)
        self._error: EventStreamError | None = None
        self._closed = False
        self._responses: Iterator[publish_pb2.PublishStreamResponse] = rpc(
            iter(self._requests.get, None))
        self._reader = threading.Thread(target=self._read, name="eventstream-publish-stream",
                                        daemon=True)
        self._reader.start()

    def send(self, event: Event) -> concurrent.futures.Future[PublishAck]:
        """Send one event; the future gives its ack or raises its :class:`EventStreamError`."""
        future: concurrent.futures.Future[PublishAck] = concurrent.futures.Future()
        self._send([event], future, True)
        return future

    def send_batch(self, events: Sequence[Event]) -> concurrent.futures.Future[list[PublishResult]]:
        """Send events in one request; the future gives one result per event."""
        future: concurrent.futures.Future[list[PublishResult]] = concurrent.futures.Future()
        self._send(events, future, False)
        return future

    def _send(self, events: Iterable[Event], future: _Settable, single: bool) -> None:
        self._slots.acquire()
        with self._lock:
            if self._error is not None or self._closed:
                self._slots.release()
                raise self._error or ValueError("the publish stream is closed")
            self._requests.put(self._pipeline.request(events, future, single))

    def _read(self) -> None:
        error: EventStreamError = _ended_early()
        try:
            for response in self._responses:
                with self._lock:
                    self._pipeline.resolve(response)
                self._slots.release()
        except grpc.RpcError as rpc_error:
            error = error_from_rpc(rpc_error)
        with self._lock:
            self._error = error
            for _ in range(self._pipeline.fail(error)):
                self._slots.release()

    def close(self) -> None:
        """Stop sending and wait until every request is answered (or failed)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._requests.put(None)
        self._reader.join()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class AsyncPublisher:
    """A grpc.aio publish stream with pipelined acknowledgements.

    ``await send(event)`` writes the request (waiting only while ``window``
    requests are unanswered) and returns a future of its ack; futures resolve
    in send order. Made by :meth:`AsyncClient.publish_stream`; use it with
    ``async with``, which waits for every answer on exit.

    Example:
        >>> async with client.publish_stream() as stream:
        ...     pending = [await stream.send(Event("metrics/cpu", str(n))) for n in range(100)]
        ...     acks = await asyncio.gather(*pending)
    """

    def __init__(self, rpc: grpc.aio.StreamStreamMultiCallable[
                     publish_pb2.PublishStreamRequest, publish_pb2.PublishStreamResponse],
                 window: int = DEFAULT_WINDOW) -> None:
        self._call = rpc()
        self._pipeline = _Pipeline()
        self._slots = asyncio.Semaphore(window)
        self._error: EventStreamError | None = None
        self._closed = False
        self._reader = asyncio.get_running_loop().create_task(
            self._read(), name="eventstream-publish-stream")

    async def send(self, event: Event) -> asyncio.Future[PublishAck]:
        """Send one event; the future gives its ack or raises its :class:`EventStreamError`."""
        future: asyncio.Future[PublishAck] = asyncio.get_running_loop().create_future()
        await self._send([event], future, True)
        return future

    async def send_batch(self, events: Sequence[Event]) -> asyncio.Future[list[PublishResult]]:
        """Send events in one request; the future gives one result per event."""
        future: asyncio.Future[list[PublishResult]] = asyncio.get_running_loop().create_future()
        await self._send(events, future, False)
        return future

    async def _send(self, events: Iterable[Event], future: _Settable, single: bool) -> None:
        await self._slots.acquire()
        if self._error is not None or self._closed:
            self._slots.release()
            raise self._error or ValueError("the publish stream is closed")
        request = self._pipeline.request(events, future, single)
        try:
            await self._call.write(request)
        except (grpc.RpcError, asyncio.InvalidStateError):
            pass  # the stream failed: the reader fails the future with the status

    async def _read(self) -> None:
        error: EventStreamError = _ended_early()
        try:
            async for response in self._call:
                self._pipeline.resolve(response)
                self._slots.release()
        except grpc.RpcError as rpc_error:
            error = error_from_rpc(rpc_error)
        except asyncio.CancelledError:
            if not self._call.cancelled():
                raise  # this task was cancelled, not the call
            error = make_error(grpc.StatusCode.CANCELLED, "the publish stream was cancelled")
        self._error = error
        for _ in range(self._pipeline.fail(error)):
            self._slots.release()

    async def close(self) -> None:
        """Stop sending and wait until every request is answered (or failed)."""
        if not self._closed:
            self._closed = True
            try:
                await self._call.done_writing()
            except (grpc.RpcError, asyncio.InvalidStateError):
                pass  # already failed: the reader has the status
        await self._reader

    async def __aenter__(self) -> AsyncPublisher:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if value is not None:
            self._call.cancel()
        await self.close()
