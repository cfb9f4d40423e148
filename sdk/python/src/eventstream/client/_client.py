"""The blocking client."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc

from eventstream.v1 import cluster_pb2, publish_pb2

from . import _methods
from ._channel import ChannelOption, Pause, TLSConfig, sync_channel
from ._consume import GroupStart, consume_start
from ._consumer import Consumer
from ._errors import error_from_rpc
from ._events import Event, Priority, event_to_proto
from ._leader import MAX_CHANNELS, LeaderHint, PublishAttempts
from ._publisher import DEFAULT_WINDOW, Publisher
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
from ._subscription import Subscription
from ._subscription_state import StartPosition, subscribe_request
from ._token import TokenInterceptor

DEFAULT_TARGET = "127.0.0.1:9200"
DEFAULT_TIMEOUT = 10.0
"""Seconds a unary call may take, retries and waits included."""

Req = TypeVar("Req")
Resp = TypeVar("Resp")


PUBLISH, PUBLISH_BATCH = 0, 1
"""Indexes of the unary publish methods in :attr:`_Route.unary`."""


class _Route:
    """The publish methods on one channel (the target's, or a leader's)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.unary: tuple[grpc.UnaryUnaryMultiCallable[Any, Any], ...] = (
            channel.unary_unary(*_methods.PUBLISH), channel.unary_unary(*_methods.PUBLISH_BATCH))
        self.publish_stream = channel.stream_stream(*_methods.PUBLISH_STREAM)


class Client:
    """A blocking EventStream client on one gRPC channel; safe to share between threads.

    Args:
        target: ``host:port`` of a node's gRPC port.
        tls: TLS settings; None for a plaintext channel.
        token: a bearer token sent with every call (``authorization: Bearer
            <token>``) to a server with authentication on; None sends none.
        timeout: default seconds for unary calls, retries included (each
            method takes ``timeout=`` to override it).
        retry: when to retry; see :class:`RetryPolicy`.
        interceptors: gRPC client interceptors (``grpc.UnaryUnaryClientInterceptor`` ...).
        options: extra gRPC channel options, e.g. ``[("grpc.keepalive_time_ms", 60000)]``.
        prefer_leader: send publishes to the leader of a replicated cluster
            once a node named it in the trailers of a publish it forwarded
            (saving that node's hop). Whatever this says, a ``NOT_LEADER``
            error naming the leader's address sends publishes there, and
            UNAVAILABLE from that leader sends them back to ``target``.
            Subscriptions and consumers stay on ``target``.

    Example:
        >>> with Client("127.0.0.1:9200") as client:
        ...     ack = client.publish(Event("sensors/room-1", b"21.5", priority="high"))
        ...     print(ack.partition, ack.offset)
    """

    def __init__(self, target: str = DEFAULT_TARGET, *, tls: TLSConfig | None = None,
                 token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen: one shared default is safe
                 interceptors: Sequence[Any] = (), options: Sequence[ChannelOption] = (),
                 prefer_leader: bool = False) -> None:
        channel = sync_channel(target, tls, options)
        self._pause = Pause(channel)
        if token is not None:
            interceptors = [TokenInterceptor(token), *interceptors]
        self._interceptors = list(interceptors)
        self._tls, self._options = tls, options
        self._channel = grpc.intercept_channel(channel, *interceptors) if interceptors else channel
        self._timeout = timeout
        self._retry = retry
        self._hint = LeaderHint(target, prefer_leader)
        self._routes: dict[str, _Route] = {target: _Route(self._channel)}
        self._routes_lock = threading.Lock()
        self._subscribe = self._channel.unary_stream(*_methods.SUBSCRIBE)
        self._consume = self._channel.stream_stream(*_methods.CONSUME)
        self._cluster_status = self._channel.unary_unary(*_methods.CLUSTER_STATUS)
        self._add_member = self._channel.unary_unary(*_methods.ADD_MEMBER)
        self._promote_learner = self._channel.unary_unary(*_methods.PROMOTE_LEARNER)
        self._remove_member = self._channel.unary_unary(*_methods.REMOVE_MEMBER)
        self._transfer_leadership = self._channel.unary_unary(*_methods.TRANSFER_LEADERSHIP)

    @property
    def channel(self) -> grpc.Channel:
        """The underlying channel, for the generated stubs of ``eventstream.v1`` if needed."""
        return self._channel

    def publish(self, event: Event, *, timeout: float | None = None) -> PublishAck:
        """Publish one event and wait until it is committed.

        Retried on UNAVAILABLE and RESOURCE_EXHAUSTED; safe, because the event
        carries an id (filled in when empty) that the server de-duplicates.

        Raises:
            EventStreamError: the typed error, e.g. InvalidArgumentError naming the field.

        Example:
            >>> client.publish(Event("orders/created", b'{"id": 7}', key="customer-7")).offset
            0
        """
        request = publish_pb2.PublishRequest(event=event_to_proto(event))
        return ack_from_proto(self._publish_call(PUBLISH, request, timeout).ack)

    def publish_batch(self, events: Iterable[Event], *,
                      timeout: float | None = None) -> list[PublishResult]:
        """Publish events in one call; one result (ack or error) per event, in order.

        A bad event gets its own error and the others go on. Retried as a whole
        on UNAVAILABLE and RESOURCE_EXHAUSTED (ids keep that safe).

        Raises:
            EventStreamError: the call as a whole failed (e.g. too many events).

        Example:
            >>> results = client.publish_batch([Event("a/1", b"x"), Event("a/*", b"y")])
            >>> [result.ok for result in results]
            [True, False]
        """
        request = publish_pb2.PublishBatchRequest(events=[event_to_proto(e) for e in events])
        response = self._publish_call(PUBLISH_BATCH, request, timeout)
        return [result_from_proto(result) for result in response.results]

    def publish_stream(self, *, window: int = DEFAULT_WINDOW) -> Publisher:
        """Open a pipelined publish stream (see :class:`Publisher`).

        Example:
            >>> with client.publish_stream() as stream:
            ...     future = stream.send(Event("logs/app", "started"))
            >>> future.result().offset
            0
        """
        return Publisher(self._route(self._hint.address).publish_stream, window)

    @property
    def publish_target(self) -> str:
        """Where publishes go now: the target, or the leader it named."""
        return self._hint.address

    def subscribe(self, *patterns: str, min_priority: Priority | str | None = None,
                  start: StartPosition = "latest", max_batch_events: int = 0,
                  retry: RetryPolicy | None = None) -> Subscription:
        """Subscribe to events whose topics match any pattern.

        The call starts with the first iteration: with ``start="latest"``,
        events published before that are not delivered.

        Args:
            patterns: ``*`` matches one level, ``#`` (last) the rest, e.g. ``"orders/#"``.
            min_priority: deliver only events of at least this priority.
            start: ``"latest"``, ``"earliest"``, a datetime, or ``{partition: offset}``.
            max_batch_events: most events per server batch (0: the server's default).
            retry: reconnect policy (a run of failed reconnects); the client's by default.

        Raises:
            ValueError: ``start`` or ``min_priority`` is not understood.

        Example:
            >>> for event in client.subscribe("sensors/#", start="earliest"):
            ...     print(event.topic, event.offset)
        """
        request = subscribe_request(patterns, min_priority, start, max_batch_events)
        return Subscription(self._subscribe, request, retry or self._retry, self._pause)

    def consume(self, group: str, *patterns: str, min_priority: Priority | str | None = None,
                start: GroupStart = "latest", max_in_flight: int | None = None,
                ack_deadline_seconds: int | None = None, max_deliveries: int | None = None,
                retry: RetryPolicy | None = None) -> Consumer:
        """Join consumer group ``group`` as one more member (see :class:`Consumer`).

        The group's members share its partitions; every event delivered must
        be acked (done) or nacked (deliver again). Unanswered events come back
        after the ack deadline; after ``max_deliveries`` deliveries an event
        goes to the topic ``dead-letter/<group>``. Delivery is at-least-once:
        make the handling idempotent, keyed by ``event.id``. On UNAVAILABLE
        the consumer joins again with jittered backoff; answers not yet sent
        then are lost and those events are delivered again.

        Args:
            group: the group's name (letters, digits, ``-``, ``_``, ``.``).
            patterns: topic patterns, the same for every member of the group.
            min_priority: deliver only events of at least this priority
                (the others count as acked).
            start: where a new group starts, ``"latest"`` or ``"earliest"``;
                an existing group goes on from its committed offsets.
            max_in_flight: most unacknowledged events this member holds
                (None: the server's default, which is also the upper bound).
            ack_deadline_seconds: seconds before an unanswered event is
                delivered again (None: the server's default).
            max_deliveries: deliveries before dead-lettering (None: the server's default).
            retry: rejoin policy (a run of failed joins); the client's by default.

        ``min_priority``, ``ack_deadline_seconds`` and ``max_deliveries`` are
        the group's: the member that creates the group sets them and the
        server ignores other members' values.

        Raises:
            ValueError: an argument is out of range or not understood.

        Example:
            >>> with client.consume("billing", "orders/#", start="earliest") as consumer:
            ...     for event in consumer:
            ...         print(consumer.assignment, event.partition, event.offset)
            ...         event.ack()
        """
        request = consume_start(group, patterns, min_priority, start, max_in_flight,
                                ack_deadline_seconds, max_deliveries)
        return Consumer(self._consume, request, retry or self._retry, self._timeout,
                        self._pause)

    def cluster_status(self, *, timeout: float | None = None) -> ClusterStatus:
        """The state of the cluster as the node answering sees it."""
        request = cluster_pb2.GetClusterStatusRequest()
        return status_from_proto(self._call(self._cluster_status, request, timeout))

    # Administrative calls: the ``admin`` permission, on the leader (a follower
    # answers NOT_LEADER naming it). Never retried: a change is not idempotent.

    def add_member(self, node_id: str, address: str, *,
                   timeout: float | None = None) -> MembershipResult:
        """Add node ``node_id``, whose cluster port is ``address`` (``host:port``), as a learner.

        The node (started with ``cluster.join: true``) then receives the log
        and serves readers; it votes once promoted (:meth:`promote_learner`).
        """
        request = cluster_pb2.AddMemberRequest(node_id=node_id, address=address)
        response = self._call(self._add_member, request, timeout, NO_RETRY)
        return membership_from_proto(response)

    def promote_learner(self, node_id: str, *, max_lag: int = 0,
                        timeout: float | None = None) -> MembershipResult:
        """Make learner ``node_id`` a voter; refused while it is more than ``max_lag`` entries behind."""
        request = cluster_pb2.PromoteLearnerRequest(node_id=node_id, max_lag=max_lag)
        response = self._call(self._promote_learner, request, timeout, NO_RETRY)
        return membership_from_proto(response)

    def remove_member(self, node_id: str, *, timeout: float | None = None) -> MembershipResult:
        """Remove voter or learner ``node_id`` from the cluster."""
        request = cluster_pb2.RemoveMemberRequest(node_id=node_id)
        response = self._call(self._remove_member, request, timeout, NO_RETRY)
        return membership_from_proto(response)

    def transfer_leadership(self, node_id: str = "", *, timeout: float | None = None) -> str:
        """Hand leadership to voter ``node_id`` (empty: the most up-to-date one); the new leader."""
        request = cluster_pb2.TransferLeadershipRequest(node_id=node_id)
        return (self._call(self._transfer_leadership, request, timeout, NO_RETRY)).leader_id

    def _call(self, rpc: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req,
              timeout: float | None, retry: RetryPolicy | None = None) -> Resp:
        budget = RetryBudget(retry or self._retry, self._timeout if timeout is None else timeout)
        while True:
            try:
                return rpc(request, timeout=budget.remaining())
            except grpc.RpcError as rpc_error:
                error = error_from_rpc(rpc_error)
                wait = budget.wait_after(error)
                if wait is None:
                    raise error from rpc_error
            self._pause(wait)

    def _publish_call(self, method: int, request: Any, timeout: float | None) -> Any:
        """A publish with retries, sent where :class:`LeaderHint` says (see ``prefer_leader``)."""
        attempts = PublishAttempts(
            self._hint, RetryBudget(self._retry, self._timeout if timeout is None else timeout))
        while True:
            address, remaining = attempts.next()
            try:
                response, call = self._route(address).unary[method].with_call(
                    request, timeout=remaining)
            except grpc.RpcError as rpc_error:
                wait = attempts.failed(rpc_error)
                if wait:
                    self._pause(wait)
                continue
            attempts.answered(call.trailing_metadata())
            return response

    def _route(self, address: str) -> _Route:
        """The publish methods on a channel to ``address`` (opened the first time)."""
        with self._routes_lock:
            route = self._routes.get(address)
            if route is None:
                if len(self._routes) > MAX_CHANNELS:
                    oldest = next(a for a in self._routes if a != self._hint.target)
                    self._routes.pop(oldest).channel.close()
                channel = sync_channel(address, self._tls, self._options)
                if self._interceptors:
                    channel = grpc.intercept_channel(channel, *self._interceptors)
                route = self._routes[address] = _Route(channel)
            return route

    def close(self) -> None:
        """Close the channels (open subscriptions and streams end)."""
        with self._routes_lock:
            routes, self._routes = list(self._routes.values()), {}
        for route in routes:
            route.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
