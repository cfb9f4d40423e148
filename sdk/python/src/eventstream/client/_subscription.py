"""Subscriptions as iterators that resume after a disconnect.

A subscription yields events one by one from the server's batches. When the
stream fails with a retryable status (the connection dropped, the server is
draining) it subscribes again, after a jittered backoff, from the next
offset of every partition it has delivered from (see :class:`ResumeState`),
so nothing is lost or repeated. Other statuses, and a run of failed
reconnects longer than the retry policy allows, end the iteration with the
typed error. The server sends the stream's headers once the subscription is
in place; that ends a run of failures, even when no event comes for a while.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Protocol

import grpc

from eventstream.v1 import subscribe_pb2

from ._channel import Pause
from ._errors import error_from_rpc
from ._events import ReceivedEvent, event_from_proto
from ._retry import RetryBudget, RetryPolicy
from ._subscription_state import ResumeState


class _Call(Protocol):
    """What a blocking Subscribe call offers (grpc's call iterator)."""

    def __next__(self) -> subscribe_pb2.SubscribeResponse: ...
    def initial_metadata(self) -> object: ...
    def is_active(self) -> bool: ...
    def cancel(self) -> bool: ...


class _Buffer:
    """Events received and not yet yielded, minus those delivered before a reconnect."""

    def __init__(self, first: subscribe_pb2.SubscribeRequest, retry: RetryPolicy) -> None:
        self.state = ResumeState(first)
        self.events: collections.deque[ReceivedEvent] = collections.deque()
        self.budget = RetryBudget(retry, None)
        self.closed = False

    def accepted(self) -> None:
        """The server accepted the stream: a run of failed attempts is over."""
        self.budget.reset()

    def add(self, response: subscribe_pb2.SubscribeResponse) -> None:
        self.budget.reset()
        for message in response.events:
            if self.state.admit(message):
                self.events.append(event_from_proto(message))

    def wait_after(self, rpc_error: grpc.RpcError) -> float:
        """Seconds to wait before resubscribing; raises the typed error to give up."""
        error = error_from_rpc(rpc_error)
        self.budget.remaining()  # counts the failed attempt
        wait = self.budget.wait_after(error)
        if wait is None:
            self.closed = True
            raise error from rpc_error
        return wait


class Subscription:
    """A blocking iterator of :class:`ReceivedEvent` that resumes after disconnects.

    Made by :meth:`Client.subscribe`. :meth:`close` (from any thread, or by
    leaving the ``with`` block) ends the iteration.

    Example:
        >>> with client.subscribe("orders/#", start="earliest") as events:
        ...     for event in events:
        ...         print(event.partition, event.offset, event.text)
    """

    def __init__(self, rpc: Callable[[subscribe_pb2.SubscribeRequest], _Call],
                 first: subscribe_pb2.SubscribeRequest, retry: RetryPolicy, pause: Pause) -> None:
        self._rpc = rpc
        self._pause = pause
        self._buffer = _Buffer(first, retry)
        self._call: _Call | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()  # wakes a backoff wait on close()

    @property
    def positions(self) -> dict[int, int]:
        """``{partition: next offset}`` of every partition delivered from so far."""
        return self._buffer.state.positions

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> ReceivedEvent:
        buffer = self._buffer
        while not buffer.events:
            with self._lock:
                if buffer.closed:
                    raise StopIteration
                call = self._call
                fresh = call is None
                if call is None:
                    call = self._call = self._rpc(buffer.state.request())
            try:
                if fresh:
                    call.initial_metadata()  # returns at the headers, or when the call ends
                    if call.is_active():
                        buffer.accepted()
                buffer.add(next(call))
            except StopIteration:
                self.close()  # the server ended the stream without an error
            except grpc.RpcError as rpc_error:
                with self._lock:
                    self._call = None
                    if buffer.closed:
                        raise StopIteration from None
                self._pause(buffer.wait_after(rpc_error), self._closing)
        return buffer.events.popleft()

    def close(self) -> None:
        """End the subscription; a blocked iteration stops."""
        with self._lock:
            self._buffer.closed = True
            self._closing.set()
            if self._call is not None:
                self._call.cancel()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


async def _accepted(call: grpc.aio.UnaryStreamCall[subscribe_pb2.SubscribeRequest,
                                                    subscribe_pb2.SubscribeResponse]) -> bool:
    """Wait for the stream's headers or its end; True when the headers came first."""
    # grpc.aio's initial_metadata() never returns when the call fails before
    # the headers (e.g. connection refused), so it races the call's status.
    headers = asyncio.ensure_future(call.initial_metadata())
    ended = asyncio.ensure_future(call.code())
    try:
        await asyncio.wait((headers, ended), return_when=asyncio.FIRST_COMPLETED)
    finally:
        headers.cancel()
        ended.cancel()
    return not call.done()


class AsyncSubscription:
    """An async iterator of :class:`ReceivedEvent` that resumes after disconnects.

    Made by :meth:`AsyncClient.subscribe`. :meth:`close` (or leaving the
    ``async with`` block) ends the iteration.

    Example:
        >>> async with client.subscribe("sensors/*", min_priority="high") as events:
        ...     async for event in events:
        ...         print(event.topic, event.payload)
    """

    def __init__(self, rpc: grpc.aio.UnaryStreamMultiCallable[
                     subscribe_pb2.SubscribeRequest, subscribe_pb2.SubscribeResponse],
                 first: subscribe_pb2.SubscribeRequest, retry: RetryPolicy) -> None:
        self._rpc = rpc
        self._buffer = _Buffer(first, retry)
        self._call: grpc.aio.UnaryStreamCall[subscribe_pb2.SubscribeRequest,
                                             subscribe_pb2.SubscribeResponse] | None = None

    @property
    def positions(self) -> dict[int, int]:
        """``{partition: next offset}`` of every partition delivered from so far."""
        return self._buffer.state.positions

    def __aiter__(self) -> AsyncIterator[ReceivedEvent]:
        return self

    async def __anext__(self) -> ReceivedEvent:
        buffer = self._buffer
        while not buffer.events:
            if buffer.closed:
                raise StopAsyncIteration
            if self._call is None:
                self._call = self._rpc(buffer.state.request())
                if await _accepted(self._call):
                    buffer.accepted()
            try:
                if self._call is None:  # closed while waiting for the headers
                    continue
                response = await self._call.read()
            except grpc.RpcError as rpc_error:
                self._call = None
                await asyncio.sleep(buffer.wait_after(rpc_error))
                continue
            except asyncio.CancelledError:
                if buffer.closed:  # close() cancelled the call under us
                    raise StopAsyncIteration from None
                raise
            if response is grpc.aio.EOF:
                self.close()  # the server ended the stream without an error
            else:
                assert isinstance(response, subscribe_pb2.SubscribeResponse)
                buffer.add(response)
        return buffer.events.popleft()

    def close(self) -> None:
        """End the subscription."""
        self._buffer.closed = True
        if self._call is not None:
            self._call.cancel()
            self._call = None

    async def __aenter__(self) -> AsyncSubscription:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self.close()
