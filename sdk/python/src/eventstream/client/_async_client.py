"""The asyncio client (grpc.aio)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc

from eventstream.v1 import cluster_pb2, publish_pb2

from . import _methods
from ._channel import ChannelOption, TLSConfig, async_channel
from ._client import DEFAULT_TARGET, DEFAULT_TIMEOUT, PUBLISH, PUBLISH_BATCH
from ._consume import GroupStart, consume_start
from ._consumer import AsyncConsumer
from ._errors import error_from_rpc
from ._events import Event, Priority, event_to_proto
from ._leader import MAX_CHANNELS, LeaderHint, PublishAttempts
from ._publisher import DEFAULT_WINDOW, AsyncPublisher
from ._results import (
    ClusterStatus,
    MembershipResult,
    PublishAck,
    PublishResult,
    ack_from_proto,
    membership_from_proto,
    result_from_proto,
    status_from_proto,
)
from ._retry import NO_RETRY, RetryBudget, RetryPolicy
from ._subscription import AsyncSubscription
from ._subscription_state import StartPosition, subscribe_request
from ._token import AsyncTokenInterceptor

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class _AsyncRoute:
    """The publish methods on one grpc.aio channel (the target's, or a leader's)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.unary: tuple[grpc.aio.UnaryUnaryMultiCallable[Any, Any], ...] = (
            channel.unary_unary(*_methods.PUBLISH), channel.unary_unary(*_methods.PUBLISH_BATCH))
        self.publish_stream = channel.stream_stream(*_methods.PUBLISH_STREAM)


class AsyncClient:
    """An asyncio EventStream client on one grpc.aio channel.

    Same arguments and methods as :class:`Client`, as coroutines; create it
    inside the event loop that uses it.

    Args:
        target: ``host:port`` of a node's gRPC port.
        tls: TLS settings; None for a plaintext channel.
        token: a bearer token sent with every call (``authorization: Bearer
            <token>``) to a server with authentication on; None sends none.
        timeout: default seconds for unary calls, retries included.
        retry: when to retry; see :class:`RetryPolicy`.
        interceptors: ``grpc.aio`` client interceptors.
        options: extra gRPC channel options.
        prefer_leader: send publishes to the leader a node names (see :class:`Client`).

    Example:
        >>> async with AsyncClient("127.0.0.1:9200") as client:
        ...     ack = await client.publish(Event("sensors/room-1", b"21.5"))
        ...     async for event in client.subscribe("sensors/#", start="earliest"):
        ...         print(event.offset, event.payload)
    """

    def __init__(self, target: str = DEFAULT_TARGET, *, tls: TLSConfig | None = None,
                 token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen: one shared default is safe
                 interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
                 options: Sequence[ChannelOption] = (), prefer_leader: bool = False) -> None:
        if token is not None:
            interceptors = [AsyncTokenInterceptor(token), *interceptors]
        self._interceptors = list(interceptors)
        self._tls, self._options = tls, options
        self._channel = async_channel(target, tls, options, interceptors)
        self._timeout = timeout
        self._retry = retry
        self._hint = LeaderHint(target, prefer_leader)
        self._routes: dict[str, _AsyncRoute] = {target: _AsyncRoute(self._channel)}
        self._closing: set[asyncio.Task[None]] = set()
        self._subscribe = self._channel.unary_stream(*_methods.SUBSCRIBE)
        self._consume = self._channel.stream_stream(*_methods.CONSUME)
        self._cluster_status = self._channel.unary_unary(*_methods.CLUSTER_STATUS)
        self._add_member = self._channel.unary_unary(*_methods.ADD_MEMBER)
        self._promote_learner = self._channel.unary_unary(*_methods.PROMOTE_LEARNER)
        self._remove_member = self._channel.unary_unary(*_methods.REMOVE_MEMBER)
        self._transfer_leadership = self._channel.unary_unary(*_methods.TRANSFER_LEADERSHIP)

    @property
    def channel(self) -> grpc.aio.Channel:
        """The underlying channel, for the generated stubs of ``eventstream.v1`` if needed."""
        return self._channel

    async def publish(self, event: Event, *, timeout: float | None = None) -> PublishAck:
        """Publish one event and wait until it is committed (see :meth:`Client.publish`).

        Example:
            >>> ack = await client.publish(Event("orders/created", b"{}", key="c-7"))
        """
        request = publish_pb2.PublishRequest(event=event_to_proto(event))
        return ack_from_proto((await self._publish_call(PUBLISH, request, timeout)).ack)

    async def publish_batch(self, events: Iterable[Event], *,
                            timeout: float | None = None) -> list[PublishResult]:
        """Publish events in one call; one result per event (see :meth:`Client.publish_batch`).

        Example:
            >>> results = await client.publish_batch([Event("a/1", b"x"), Event("a/2", b"y")])
        """
        request = publish_pb2.PublishBatchRequest(events=[event_to_proto(e) for e in events])
        response = await self._publish_call(PUBLISH_BATCH, request, timeout)
        return [result_from_proto(result) for result in response.results]

    def publish_stream(self, *, window: int = DEFAULT_WINDOW) -> AsyncPublisher:
        """Open a pipelined publish stream (see :class:`AsyncPublisher`).

        Example:
            >>> async with client.publish_stream() as stream:
            ...     pending = await stream.send(Event("logs/app", "started"))
            ...     ack = await pending
        """
        return AsyncPublisher(self._route(self._hint.address).publish_stream, window)

    @property
    def publish_target(self) -> str:
        """Where publishes go now: the target, or the leader it named."""
        return self._hint.address

    def subscribe(self, *patterns: str, min_priority: Priority | str | None = None,
                  start: StartPosition = "latest", max_batch_events: int = 0,
                  retry: RetryPolicy | None = None) -> AsyncSubscription:
        """Subscribe to events whose topics match any pattern (see :meth:`Client.subscribe`).

        The call starts with the first iteration.

        Example:
            >>> async for event in client.subscribe("orders/#", start={0: 42, 1: 7}):
            ...     print(event.partition, event.offset)
        """
        request = subscribe_request(patterns, min_priority, start, max_batch_events)
        return AsyncSubscription(self._subscribe, request, retry or self._retry)

    def consume(self, group: str, *patterns: str, min_priority: Priority | str | None = None,
                start: GroupStart = "latest", max_in_flight: int | None = None,
                ack_deadline_seconds: int | None = None, max_deliveries: int | None = None,
                retry: RetryPolicy | None = None) -> AsyncConsumer:
        """Join consumer group ``group`` as one more member (see :meth:`Client.consume`).

        Example:
            >>> async with client.consume("billing", "orders/#") as consumer:
            ...     async for event in consumer:
            ...         await handle(event)      # idempotent, keyed by event.id
            ...         event.ack()
        """
        request = consume_start(group, patterns, min_priority, start, max_in_flight,
                                ack_deadline_seconds, max_deliveries)
        return AsyncConsumer(self._consume, request, retry or self._retry, self._timeout)

    async def cluster_status(self, *, timeout: float | None = None) -> ClusterStatus:
        """The state of the cluster as the node answering sees it."""
        request = cluster_pb2.GetClusterStatusRequest()
        return status_from_proto(await self._call(self._cluster_status, request, timeout))

    # Administrative calls: the ``admin`` permission, on the leader (a follower
    # answers NOT_LEADER naming it). Never retried: a change is not idempotent.

    async def add_member(self, node_id: str, address: str, *,
                   timeout: float | None = None) -> MembershipResult:
        """Add node ``node_id``, whose cluster port is ``address`` (``host:port``), as a learner.

        The node (started with ``cluster.join: true``) then receives the log
        and serves readers; it votes once promoted (:meth:`promote_learner`).
        """
        request = cluster_pb2.AddMemberRequest(node_id=node_id, address=address)
        response = await self._call(self._add_member, request, timeout, NO_RETRY)
        return membership_from_proto(response)

    async def promote_learner(self, node_id: str, *, max_lag: int = 0,
                        timeout: float | None = None) -> MembershipResult:
        """Make learner ``node_id`` a voter; refused while it is more than ``max_lag`` entries behind."""
        request = cluster_pb2.PromoteLearnerRequest(node_id=node_id, max_lag=max_lag)
        response = await self._call(self._promote_learner, request, timeout, NO_RETRY)
        return membership_from_proto(response)

    async def remove_member(self, node_id: str, *, timeout: float | None = None) -> MembershipResult:
        """Remove voter or learner ``node_id`` from the cluster."""
        request = cluster_pb2.RemoveMemberRequest(node_id=node_id)
        response = await self._call(self._remove_member, request, timeout, NO_RETRY)
        return membership_from_proto(response)

    async def transfer_leadership(self, node_id: str = "", *, timeout: float | None = None) -> str:
        """Hand leadership to voter ``node_id`` (empty: the most up-to-date one); the new leader."""
        request = cluster_pb2.TransferLeadershipRequest(node_id=node_id)
        return (await self._call(self._transfer_leadership, request, timeout, NO_RETRY)).leader_id

    async def _call(self, rpc: grpc.aio.UnaryUnaryMultiCallable[Req, Resp], request: Req,
                    timeout: float | None, retry: RetryPolicy | None = None) -> Resp:
        budget = RetryBudget(retry or self._retry, self._timeout if timeout is None else timeout)
        while True:
            try:
                return await rpc(request, timeout=budget.remaining())
            except grpc.RpcError as rpc_error:
                error = error_from_rpc(rpc_error)
                wait = budget.wait_after(error)
                if wait is None:
                    raise error from rpc_error
            await asyncio.sleep(wait)

    async def _publish_call(self, method: int, request: Any, timeout: float | None) -> Any:
        """A publish with retries, sent where :class:`LeaderHint` says (see ``prefer_leader``)."""
        attempts = PublishAttempts(
            self._hint, RetryBudget(self._retry, self._timeout if timeout is None else timeout))
        while True:
            address, remaining = attempts.next()
            call = self._route(address).unary[method](request, timeout=remaining)
            try:
                response = await call
            except grpc.RpcError as rpc_error:
                wait = attempts.failed(rpc_error)
                if wait:
                    await asyncio.sleep(wait)
                continue
            attempts.answered(await call.trailing_metadata())
            return response

    def _route(self, address: str) -> _AsyncRoute:
        """The publish methods on a channel to ``address`` (opened the first time)."""
        route = self._routes.get(address)
        if route is None:
            if len(self._routes) > MAX_CHANNELS:
                oldest = next(a for a in self._routes if a != self._hint.target)
                closing = asyncio.get_running_loop().create_task(
                    self._routes.pop(oldest).channel.close())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
            channel = async_channel(address, self._tls, self._options, self._interceptors)
            route = self._routes[address] = _AsyncRoute(channel)
        return route

    async def close(self) -> None:
        """Close the channels (open subscriptions and streams end)."""
        routes, self._routes = list(self._routes.values()), {}
        for route in routes:
            await route.channel.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()
