"""eventstream.v1.PublishService on grpc.aio.

Requests arrive as bytes. The stager walks each one once (validating every
event and copying the accepted ones into one buffer, see
:mod:`..queue.staging`); an invalid event gets its own error, the rest go
on. The accepted events are queued in their lanes all or none, and the
answer is written once they are committed. PublishStream pipelines: it keeps
reading while earlier requests commit, and answers in request order.

Responses are bytes too: the write path encodes every PublishResult already
framed for its response message, so a request whose events all went to one
lane is answered by the buffer the write path produced.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import grpc

from ..broker.broker import Broker
from ..broker.lanes import Submission
from ..broker.priority import Lane
from ..broker.wire import varint
from ..config.model import LimitsConfig
from ..errors import EventStreamError
from ..observability.metrics import Metrics
from ..queue import MalformedInput
from ..queue.staging import R_BODY_LEN, R_BODY_OFF, R_INDEX, R_REASON, ROW_BYTES, ROW_FIELDS, Accepted, NativeStager
from .convert import EventValidator, check_batch_size, error_result
from .status import handles_errors

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
        accepted: the request as the stager saw it.
        tag: the tag byte wrapping each PublishResult in the response (0: none).
    """

    __slots__ = ("accepted", "tag", "refusals", "submissions", "first_error")

    def __init__(self, accepted: Accepted, tag: int) -> None:
        self.accepted = accepted
        self.tag = tag
        self.refusals: dict[int, bytes] = {}   # request index -> framed PublishResult
        self.submissions: list[Submission] = []
        self.first_error: EventStreamError | None = None

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
            results.update(zip(_indices(submission.rows), _split(encoded, self.tag)))
        return b"".join([results[index] for index in sorted(results)])

    def fail(self, error: EventStreamError) -> None:
        """Mark every queued event as refused with ``error``."""
        for submission in self.submissions:
            for index in _indices(submission.rows):
                self.refuse(index, error)
        self.submissions = []


def _indices(rows: bytes) -> list[int]:
    """Request indexes of the events of ``rows``."""
    return memoryview(rows).cast("I")[R_INDEX::ROW_FIELDS].tolist()


def _split(encoded: bytes, tag: int) -> list[bytes]:
    """Cut concatenated PublishResults (wrapped in ``tag`` when not 0) apart."""
    parts, pos = [], 0
    while pos < len(encoded):
        start = pos
        pos += 1  # the tag byte: field 1 (PublishResult.ack) or ``tag``
        length = shift = 0
        while True:
            byte = encoded[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        pos += length
        parts.append(encoded[start:pos])
    return parts


class PublishServicer:
    """Handlers of PublishService.

    Args:
        broker: where events go.
        stager: validates and copies the events of a request.
        limits: request limits.
        metrics: the server's metrics.
    """

    def __init__(self, broker: Broker, stager: NativeStager, limits: LimitsConfig,
                 metrics: Metrics) -> None:
        self._broker = broker
        self._limits = limits
        self._validator = EventValidator(limits)
        self._stager = stager
        self._metrics = metrics
        self.publish = handles_errors("Publish", metrics)(self._publish)
        self.publish_batch = handles_errors("PublishBatch", metrics)(self._publish_batch)
        self.publish_stream = handles_errors("PublishStream", metrics)(self._publish_stream)

    def handlers(self) -> grpc.GenericRpcHandler:
        """The method handlers for grpc.aio's server (requests and responses as bytes)."""
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Publish": grpc.unary_unary_rpc_method_handler(self.publish, None, None),
            "PublishBatch": grpc.unary_unary_rpc_method_handler(self.publish_batch, None, None),
            "PublishStream": grpc.stream_stream_rpc_method_handler(
                self.publish_stream, None, None),
        })

    def _prepare(self, msg: bytes, field: int, tag: int, prefix: str,
                 varint_field: int = 0) -> _Pending:
        """Validate a request's events and build their submissions (not yet queued).

        Raises:
            EventStreamError: REQUEST_MALFORMED, or BATCH_TOO_LARGE.
        """
        try:
            accepted = self._stager.accept(msg, field, varint_field)
        except MalformedInput:
            self._metrics.rejected.add(1, {"transport": "grpc", "reason": "REQUEST_MALFORMED"})
            raise EventStreamError("REQUEST_MALFORMED",
                                   "request: not a valid protobuf message") from None
        if prefix:
            check_batch_size(accepted.count, self._limits)
        pending = _Pending(accepted, tag)
        self._metrics.received.add(accepted.count, _TRANSPORT)
        if accepted.refused:
            self._refuse(msg, pending, prefix)
        loop = asyncio.get_running_loop()
        now = time.time_ns()
        first = 0
        for lane, count in ((Lane.REALTIME, accepted.realtime), (Lane.BATCH, accepted.batch)):
            if count:
                rows = accepted.rows[first * ROW_BYTES:(first + count) * ROW_BYTES]
                pending.submissions.append(Submission(
                    lane, accepted.bodies, rows, count, loop.create_future(), now, tag))
                first += count
        return pending

    def _refuse(self, msg: bytes, pending: _Pending, prefix: str) -> None:
        """Record the error of every refused event (the slow path)."""
        accepted = pending.accepted
        rows = memoryview(accepted.rows).cast("I")
        reasons: Counter[str] = Counter()
        for row in range(accepted.realtime + accepted.batch, accepted.count):
            base = row * ROW_FIELDS
            index, start = rows[base + R_INDEX], rows[base + R_BODY_OFF]
            error = self._validator.refusal(rows[base + R_REASON],
                                            msg[start:start + rows[base + R_BODY_LEN]])
            # The path to the event is built only for refused ones.
            pending.refuse(index, error.at(f"{prefix}[{index}].") if prefix else error)
            reasons[error.reason] += 1
        for reason, count in reasons.items():
            self._metrics.rejected.add(count, {"transport": "grpc", "reason": reason})

    def _queue(self, pending: _Pending) -> None:
        """Queue a request's submissions, counting a refusal per event."""
        try:
            self._broker.publish(pending.submissions)
        except EventStreamError as error:
            refused = sum(submission.count for submission in pending.submissions)
            self._metrics.rejected.add(refused, {"transport": "grpc", "reason": error.reason})
            raise

    async def _publish(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self._broker.check_accepting()
        pending = self._prepare(request, _EVENT, 0, "")
        if pending.accepted.count != 1:
            self._metrics.rejected.add(1, {"transport": "grpc", "reason": "EVENT_MISSING"})
            raise EventStreamError("EVENT_MISSING", "event: is required", field="event")
        if pending.first_error is not None:
            raise pending.first_error.at("event.")
        self._queue(pending)
        return await pending.submissions[0].future  # a PublishResult{ack} is a PublishResponse{ack}

    async def _publish_batch(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self._broker.check_accepting()
        pending = self._prepare(request, _EVENT, _BATCH_RESULTS, "events")
        self._queue(pending)
        return await pending.finish()

    async def _publish_stream(self, requests: AsyncIterator[bytes],
                              context: grpc.aio.ServicerContext) -> None:
        self._broker.check_accepting()
        window: asyncio.Queue[_Pending | None] = asyncio.Queue(STREAM_WINDOW)

        async def answer() -> None:
            while (pending := await window.get()) is not None:
                results = await pending.finish()
                await context.write(
                    _STREAM_SEQUENCE_TAG + varint(pending.accepted.varint) + results)

        refusal: EventStreamError | None = None
        async with asyncio.TaskGroup() as group:
            group.create_task(answer())
            try:
                async for request in requests:
                    pending = self._prepare(request, _STREAM_EVENTS, _STREAM_RESULTS, "events",
                                            _STREAM_SEQUENCE)
                    try:
                        self._queue(pending)
                    except EventStreamError as error:
                        if error.reason != "LANE_FULL":
                            raise
                        pending.fail(error)  # the client may retry these events
                    await window.put(pending)
            except EventStreamError as error:
                refusal = error  # answer what was accepted, then end with the status
            finally:
                await window.put(None)
        if refusal is not None:
            raise refusal
