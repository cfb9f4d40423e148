"""eventstream.v1.PublishService on grpc.aio.

Requests arrive as bytes. The event encoder accepts each one in one walk
(validating every event and copying the accepted ones into one buffer, see
:mod:`..native.events`); an invalid event gets its own error, the rest go
on. The accepted events are queued in their lanes all or none, and the
answer is written once they are committed. PublishStream pipelines: it keeps
reading while earlier requests commit, and answers in request order.

Responses are bytes too: the write path encodes every PublishResult already
framed for its response message, so a request whose events all went to one
lane is answered by the buffer the write path produced.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import Protocol

import grpc

from ..broker.broker import Broker
from ..broker.lanes import Submission, submissions_of
from ..broker.wire import field_spans, varint
from ..config.model import LimitsConfig
from ..errors import EventStreamError
from ..native import Accepted, EventEncoder, MalformedInput
from ..observability.metrics import Metrics
from ..security.access import ANONYMOUS, AccessControl, Principal
from .convert import EventValidator, check_batch_size, error_result
from .guard import Guard
from .status import LEADER_ADDRESS, LEADER_ID, error_from_status, handles_errors, status_details

log = logging.getLogger(__name__)

SERVICE = "eventstream.v1.PublishService"
# Requests of one PublishStream being committed at once; more waits (the
# client then feels HTTP/2 flow control).
STREAM_WINDOW = 64
_TRANSPORT = {"transport": "grpc"}

# Field numbers and tag bytes of the messages (publish.proto).
_EVENT = 1                    # PublishRequest.event, PublishBatchRequest.events
_STREAM_EVENTS = 2            # PublishStreamRequest.events
_STREAM_SEQUENCE = 1          # PublishStreamRequest.sequence
_BATCH_RESULTS = 0x0a         # PublishBatchResponse.results
_STREAM_RESULTS = 0x12        # PublishStreamResponse.results
_STREAM_SEQUENCE_TAG = b"\x08"  # PublishStreamResponse.sequence


class _Pending:
    """One request's events on their way: refusals so far and what is queued.

    Args:
        accepted: the request as the encoder accepted it.
        tag: the tag byte wrapping each PublishResult in the response (0: none).
    """

    __slots__ = ("accepted", "denied", "first_error", "forwarded", "refusals", "size",
                 "submissions", "tag")

    def __init__(self, accepted: Accepted, tag: int, size: int) -> None:
        self.accepted = accepted
        self.tag = tag
        self.size = size
        """Bytes of the request (what a byte rate quota charges)."""
        self.refusals: dict[int, bytes] = {}   # request index -> framed PublishResult
        self.submissions: list[Submission] = []
        self.first_error: EventStreamError | None = None
        self.denied: EventStreamError | None = None
        """The first event refused by the caller's rules."""
        self.forwarded: asyncio.Task[bytes | None] | None = None
        """The leader's whole answer to this stream request, when a follower forwarded it."""

    def refuse(self, index: int, error: EventStreamError) -> None:
        """Record that event ``index`` was refused."""
        result = error_result(error).SerializeToString()
        self.refusals[index] = (bytes([self.tag]) + varint(len(result)) + result
                                if self.tag else result)
        if self.first_error is None:
            self.first_error = error

    async def finish(self) -> bytes:
        """Wait for the commit; return the framed PublishResults in request order."""
        if not self.refusals and len(self.submissions) == 1:
            return await self.submissions[0].future  # the common case: one buffer
        results = dict(self.refusals)
        for submission in self.submissions:
            encoded = await submission.future
            results.update(zip(submission.events.indexes(),
                               [encoded[a:end] for a, _, end in field_spans(encoded)]))
        return b"".join([results[index] for index in sorted(results)])

    def fail(self, error: EventStreamError) -> None:
        """Mark every queued event as refused with ``error``."""
        for submission in self.submissions:
            for index in submission.events.indexes():
                self.refuse(index, error)
        self.submissions = []


FORWARD_PUBLISH = 1
"""``eventstream.peer.v1.ForwardKind`` of a forwarded PublishRequest."""
FORWARD_PUBLISH_BATCH = 2
"""``eventstream.peer.v1.ForwardKind`` of a forwarded PublishBatchRequest."""
FORWARD_PUBLISH_STREAM = 3
"""``eventstream.peer.v1.ForwardKind`` of one forwarded PublishStreamRequest."""

_FORWARD_FIELDS = {FORWARD_PUBLISH: (_EVENT, 0), FORWARD_PUBLISH_BATCH: (_EVENT, 0),
                   FORWARD_PUBLISH_STREAM: (_STREAM_EVENTS, _STREAM_SEQUENCE)}
"""Per kind of forwarded request: the events' field number and the varint field beside them."""

Answer = tuple[bytes, int, str, bytes]
"""A forwarded request's answer: (response bytes, status code (0: OK), message, details)."""


class Forwarder(Protocol):
    """Sends a request a follower received to the leader (``cluster.replicated.ClusterMember``)."""

    def follows(self) -> bool:
        """Whether writes go to another node now (this one does not lead)."""
        ...

    async def forward(self, kind: int, request: bytes) -> Answer | None:
        """The leader's answer, or None when this node leads.

        Raises:
            EventStreamError: UNAVAILABLE when no leader is known or reachable.
        """
        ...

    def leader_hint(self) -> tuple[str, str]:
        """The leader's node id and public gRPC address ("" when unknown)."""
        ...


class PublishServicer:
    """Handlers of PublishService.

    Args:
        broker: where events go.
        encoder: accepts (validates and copies) the events of a request.
        limits: request limits.
        metrics: the server's metrics.
        guard: who calls, and what they may publish.
        forwarder: on a member of a replicated cluster, forwards Publish and
            PublishBatch to the leader while this node follows.
    """

    def __init__(self, broker: Broker, encoder: EventEncoder, limits: LimitsConfig,
                 metrics: Metrics, guard: Guard, forwarder: Forwarder | None = None) -> None:
        self._broker = broker
        self._forwarder = forwarder
        self._limits = limits
        self._validator = EventValidator(limits)
        self._encoder = encoder
        self._metrics = metrics
        self._access: AccessControl = guard.access
        self.publish = handles_errors("Publish", metrics)(guard.authenticated(self._publish))
        self.publish_batch = handles_errors("PublishBatch", metrics)(
            guard.authenticated(self._publish_batch))
        self.publish_stream = handles_errors("PublishStream", metrics)(
            guard.authenticated(self._publish_stream))

    def handlers(self) -> grpc.GenericRpcHandler:
        """The method handlers for grpc.aio's server (requests and responses as bytes)."""
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Publish": grpc.unary_unary_rpc_method_handler(self.publish, None, None),
            "PublishBatch": grpc.unary_unary_rpc_method_handler(self.publish_batch, None, None),
            "PublishStream": grpc.stream_stream_rpc_method_handler(
                self.publish_stream, None, None),
        })

    def _prepare(self, msg: bytes, principal: Principal, field: int, tag: int, prefix: str,
                 varint_field: int = 0) -> _Pending:
        """Validate a request's events and build their submissions (not yet queued).

        Events ``principal`` may not publish are refused one by one
        (PERMISSION_DENIED naming the topic), like invalid ones.

        Raises:
            EventStreamError: REQUEST_MALFORMED, or BATCH_TOO_LARGE.
        """
        try:
            accepted = self._encoder.accept(msg, field, varint_field)
        except MalformedInput:
            self._metrics.rejected.add(1, {"transport": "grpc", "reason": "REQUEST_MALFORMED"})
            raise EventStreamError("REQUEST_MALFORMED",
                                   "request: not a valid protobuf message") from None
        if prefix:
            check_batch_size(accepted.count, self._limits)
        pending = _Pending(accepted, tag, len(msg))
        self._metrics.received.add(accepted.count, _TRANSPORT)
        if accepted.refused:
            self._refuse(msg, pending, prefix)
        verdicts = self._access.publish_verdicts(principal, accepted)
        if verdicts is not None:
            self._deny(pending, verdicts, prefix)
            accepted = accepted.select(verdicts)
        pending.submissions = submissions_of(accepted, tag)
        return pending

    def _deny(self, pending: _Pending, verdicts: bytes, prefix: str) -> None:
        """Record PERMISSION_DENIED for each event refused by the rules (the slow path)."""
        accepted = pending.accepted
        denied = 0
        for row, allowed in enumerate(verdicts):
            if allowed:
                continue
            index = accepted.good_position(row)
            topic = accepted.good_topic(row).decode()
            field = f"{prefix}[{index}].topic" if prefix else "event.topic"
            error = EventStreamError(
                "PERMISSION_DENIED", f"{field}: publishing to {topic!r} is not allowed", field=field)
            pending.refuse(index, error)
            pending.denied = pending.denied or error
            denied += 1
        self._metrics.rejected.add(denied, {"transport": "grpc", "reason": "PERMISSION_DENIED"})

    def _refuse(self, msg: bytes, pending: _Pending, prefix: str) -> None:
        """Record the error of every refused event (the slow path)."""
        reasons: Counter[str] = Counter()
        for refused in pending.accepted.refusals():
            index, start = refused.position, refused.start
            error = self._validator.refusal(refused.code, msg[start:start + refused.length])
            # The path to the event is built only for refused ones.
            pending.refuse(index, error.at(f"{prefix}[{index}].") if prefix else error)
            reasons[error.reason] += 1
        for reason, count in reasons.items():
            self._metrics.rejected.add(count, {"transport": "grpc", "reason": reason})

    def _queue(self, pending: _Pending, principal: Principal) -> None:
        """Charge a request's submissions to the caller's quota and queue them.

        Raises:
            EventStreamError: QUOTA_EXCEEDED, LANE_FULL, ...: nothing was
                queued (counted as refusals of every event).
        """
        try:
            events = sum(submission.count for submission in pending.submissions)
            if events:
                self._access.take_publish(principal, events, pending.size)
            self._broker.publish(pending.submissions)
        except EventStreamError as error:
            refused = sum(submission.count for submission in pending.submissions)
            self._metrics.rejected.add(refused, {"transport": "grpc", "reason": error.reason})
            raise

    async def serve_forwarded(self, kind: int, request: bytes) -> Answer:
        """Serve a request a follower forwarded (this node leads, or answers NOT_LEADER)."""
        try:
            self._broker.check_accepting()
            if kind == FORWARD_PUBLISH:
                return await self._publish_here(request, ANONYMOUS), 0, "", b""
            if kind == FORWARD_PUBLISH_STREAM:
                return await self._stream_request_here(request), 0, "", b""
            return await self._publish_batch_here(request, ANONYMOUS), 0, "", b""
        except EventStreamError as error:
            return b"", error.code, error.message, status_details(error)
        except Exception:  # the follower's client gets what a direct call would get
            log.exception("a forwarded request failed")
            internal = EventStreamError("INTERNAL", "internal error serving a forwarded request")
            return b"", internal.code, internal.message, status_details(internal)

    async def _relayed(self, kind: int, request: bytes, principal: Principal,
                       prepared: _Pending | None = None) -> bytes | None:
        """The leader's answer to ``request`` when this node follows (None when it leads).

        The follower decides what ``principal`` may publish and charges its
        quota; the leader serves what a member forwarded as it comes.
        ``prepared``: the request as this node already prepared it for
        ``principal`` (a stream's), so it is not accepted twice.

        Raises:
            EventStreamError: the leader's error, PERMISSION_DENIED or
                QUOTA_EXCEEDED here, or UNAVAILABLE without a leader.
        """
        if self._forwarder is None:
            return None
        if self._access.enabled and self._forwarder.follows():
            self._authorize_forward(kind, request, principal, prepared)
        answer = await self._forwarder.forward(kind, request)
        if answer is None:
            return None
        response, code, message, details = answer
        if code:
            raise error_from_status(code, message, details)
        return response

    def _authorize_forward(self, kind: int, request: bytes, principal: Principal,
                           prepared: _Pending | None) -> None:
        """Refuse a whole request to forward if ``principal`` may not publish one of its events.

        Only the rules and the quota are checked here: the leader validates
        the events and counts what it receives and refuses.

        Raises:
            EventStreamError: PERMISSION_DENIED naming the first denied
                topic, or QUOTA_EXCEEDED.
        """
        if prepared is not None:
            if prepared.denied is not None:
                raise prepared.denied
            accepted, size = prepared.accepted, prepared.size
        else:
            field, varint_field = _FORWARD_FIELDS[kind]
            try:
                accepted = self._encoder.accept(request, field, varint_field)
            except MalformedInput:
                return  # the leader refuses it (REQUEST_MALFORMED) and counts it
            size = len(request)
            verdicts = self._access.publish_verdicts(principal, accepted)
            if verdicts is not None and 0 in verdicts:
                row = verdicts.index(0)
                path = "event" if kind == FORWARD_PUBLISH else \
                    f"events[{accepted.good_position(row)}]"
                topic = accepted.good_topic(row).decode()
                self._metrics.rejected.add(accepted.count, {"transport": "grpc",
                                                            "reason": "PERMISSION_DENIED"})
                raise EventStreamError("PERMISSION_DENIED", f"{path}.topic: publishing to "
                                       f"{topic!r} is not allowed", field=f"{path}.topic")
        if accepted.count:
            self._access.take_publish(principal, accepted.count, size)

    async def _publish(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                       principal: Principal) -> bytes:
        self._broker.check_accepting()
        relayed = await self._relayed(FORWARD_PUBLISH, request, principal)
        if relayed is None:
            return await self._publish_here(request, principal)
        self._hint_leader(context)
        return relayed

    async def _publish_here(self, request: bytes, principal: Principal) -> bytes:
        pending = self._prepare(request, principal, _EVENT, 0, "")
        if pending.accepted.count != 1:
            self._metrics.rejected.add(1, {"transport": "grpc", "reason": "EVENT_MISSING"})
            raise EventStreamError("EVENT_MISSING", "event: is required", field="event")
        if pending.first_error is not None:
            error = pending.first_error
            raise error if error.reason == "PERMISSION_DENIED" else error.at("event.")
        self._queue(pending, principal)
        return await pending.submissions[0].future  # a PublishResult{ack} is a PublishResponse{ack}

    async def _publish_batch(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                             principal: Principal) -> bytes:
        self._broker.check_accepting()
        relayed = await self._relayed(FORWARD_PUBLISH_BATCH, request, principal)
        if relayed is None:
            return await self._publish_batch_here(request, principal)
        self._hint_leader(context)
        return relayed

    def _hint_leader(self, context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        """Name the leader in the trailers of a forwarded answer, so a client may go there."""
        assert self._forwarder is not None
        leader, address = self._forwarder.leader_hint()
        if address:
            context.set_trailing_metadata(((LEADER_ID, leader), (LEADER_ADDRESS, address)))

    async def _publish_batch_here(self, request: bytes, principal: Principal) -> bytes:
        pending = self._prepare(request, principal, _EVENT, _BATCH_RESULTS, "events")
        self._queue(pending, principal)
        return await pending.finish()

    async def _stream_request_here(self, request: bytes) -> bytes:
        """One PublishStream request a follower forwarded: its whole response's bytes."""
        pending = self._prepare(request, ANONYMOUS, _STREAM_EVENTS, _STREAM_RESULTS, "events",
                                _STREAM_SEQUENCE)
        try:
            self._queue(pending, ANONYMOUS)
        except EventStreamError as error:
            if error.reason != "LANE_FULL":
                raise
            pending.fail(error)
        return _STREAM_SEQUENCE_TAG + varint(pending.accepted.varint) + await pending.finish()

    async def _publish_stream(self, requests: AsyncIterator[bytes],
                              context: grpc.aio.ServicerContext[bytes, bytes],
                              principal: Principal) -> None:
        self._broker.check_accepting()
        quota = principal.quota
        if quota is not None:
            exceeded = quota.open_stream()
            if exceeded is not None:
                raise self._access.exceeded(principal, exceeded)
        try:
            await self._serve_stream(requests, context, principal)
        finally:
            if quota is not None:
                quota.close_stream()

    async def _serve_stream(self, requests: AsyncIterator[bytes],
                            context: grpc.aio.ServicerContext[bytes, bytes],
                            principal: Principal) -> None:
        window: asyncio.Queue[_Pending | None] = asyncio.Queue(STREAM_WINDOW)

        async def answer() -> None:
            while (pending := await window.get()) is not None:
                if pending.forwarded is not None:
                    try:
                        relayed = await pending.forwarded
                        if relayed is not None:
                            await context.write(relayed)
                            continue
                        self._queue(pending, principal)  # this node leads by now: served here
                    except EventStreamError as error:
                        pending.fail(error)  # the client may retry these events
                results = await pending.finish()
                await context.write(
                    _STREAM_SEQUENCE_TAG + varint(pending.accepted.varint) + results)

        refusal: EventStreamError | None = None
        async with asyncio.TaskGroup() as group:
            group.create_task(answer())
            try:
                async for request in requests:
                    pending = self._prepare(request, principal, _STREAM_EVENTS, _STREAM_RESULTS,
                                            "events", _STREAM_SEQUENCE)
                    if self._forwarder is not None and self._forwarder.follows() \
                            and pending.submissions:
                        pending.forwarded = asyncio.ensure_future(
                            self._relayed(FORWARD_PUBLISH_STREAM, request, principal, pending))
                        await window.put(pending)
                        continue
                    try:
                        self._queue(pending, principal)
                    except EventStreamError as error:
                        if error.reason not in ("LANE_FULL", "QUOTA_EXCEEDED"):
                            raise
                        pending.fail(error)  # the client may retry these events
                    await window.put(pending)
            except EventStreamError as error:
                refusal = error  # answer what was accepted, then end with the status
            finally:
                await window.put(None)
        if refusal is not None:
            raise refusal
