"""eventstream.v1.PublishService on grpc.aio.

Validates events (per event: an invalid one gets its own error, the rest go
on), queues them in their lanes all or none, and answers once they are
committed. PublishStream pipelines: it keeps reading while earlier requests
commit, and answers in request order.

Responses are written as bytes: the write path encodes each PublishAck, and
the response messages around them are framed here, so no message object is
built per event on the way out.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence

import grpc
from eventstream.v1 import common_pb2, publish_pb2

from ..broker.broker import Broker
from ..broker.lanes import Submission
from ..broker.priority import Lane, lane_of_frame_byte
from ..config.model import LimitsConfig
from ..errors import EventStreamError
from ..observability.metrics import Metrics
from ..broker.wire import varint
from .convert import EventValidator, check_batch_size, error_result
from .status import handles_errors

SERVICE = "eventstream.v1.PublishService"
# Requests of one PublishStream being committed at once; more waits (the
# client then feels HTTP/2 flow control).
STREAM_WINDOW = 64
_TRANSPORT = {"transport": "grpc"}


# Field tags of the response messages (publish.proto).
_RESULT_ACK = b"\x0a"         # PublishResult.ack
_RESPONSE_ACK = b"\x0a"       # PublishResponse.ack
_BATCH_RESULTS = b"\x0a"      # PublishBatchResponse.results
_STREAM_SEQUENCE = b"\x08"    # PublishStreamResponse.sequence
_STREAM_RESULTS = b"\x12"     # PublishStreamResponse.results


def _framed(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


class _Pending:
    """One request's events on their way: encoded results so far and what is queued."""

    __slots__ = ("results", "submissions", "indices", "first_error")

    def __init__(self, size: int) -> None:
        self.results: list[bytes | None] = [None] * size
        self.submissions: list[Submission] = []
        self.indices: list[list[int]] = []
        self.first_error: EventStreamError | None = None

    def refuse(self, index: int, error: EventStreamError) -> None:
        """Record that event ``index`` was refused."""
        self.results[index] = error_result(error).SerializeToString()
        if self.first_error is None:
            self.first_error = error

    async def finish(self) -> list[bytes]:
        """Wait for the commit; return one encoded PublishResult per event."""
        results = self.results
        for submission, indices in zip(self.submissions, self.indices):
            acks = await submission.future
            for index, ack in zip(indices, acks):
                results[index] = _framed(_RESULT_ACK, ack)
        return results  # type: ignore[return-value]

    def fail(self, error: EventStreamError) -> None:
        """Mark every queued event as refused with ``error``."""
        for indices in self.indices:
            for index in indices:
                self.refuse(index, error)
        self.submissions, self.indices = [], []


class PublishServicer:
    """Handlers of PublishService.

    Args:
        broker: where events go.
        limits: request limits.
        metrics: the server's metrics.
    """

    def __init__(self, broker: Broker, limits: LimitsConfig, metrics: Metrics) -> None:
        self._broker = broker
        self._limits = limits
        self._validator = EventValidator(limits)
        self._metrics = metrics
        self.publish = handles_errors("Publish", metrics)(self._publish)
        self.publish_batch = handles_errors("PublishBatch", metrics)(self._publish_batch)
        self.publish_stream = handles_errors("PublishStream", metrics)(self._publish_stream)

    def handlers(self) -> grpc.GenericRpcHandler:
        """The method handlers for grpc.aio's server."""
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Publish": grpc.unary_unary_rpc_method_handler(
                self.publish, publish_pb2.PublishRequest.FromString, None),
            "PublishBatch": grpc.unary_unary_rpc_method_handler(
                self.publish_batch, publish_pb2.PublishBatchRequest.FromString, None),
            "PublishStream": grpc.stream_stream_rpc_method_handler(
                self.publish_stream, publish_pb2.PublishStreamRequest.FromString, None),
        })

    def _prepare(self, events: Sequence[common_pb2.Event], prefix: str) -> _Pending:
        """Validate events and build their submissions (not yet queued)."""
        pending = _Pending(len(events))
        lanes: dict[Lane, tuple[list, list[int]]] = {}
        reasons: Counter[str] = Counter()
        accept = self._validator.accept
        for index, event in enumerate(events):
            try:
                accepted = accept(event)
            except EventStreamError as error:
                # The path to the event is built only for refused ones.
                pending.refuse(index, error.at(f"{prefix}[{index}].") if prefix else error)
                reasons[error.reason] += 1
                continue
            lane = lane_of_frame_byte(accepted[3])
            slot = lanes.get(lane)
            if slot is None:
                slot = lanes[lane] = ([], [])
            slot[0].append(accepted)
            slot[1].append(index)
        self._metrics.received.add(len(events), _TRANSPORT)
        for reason, count in reasons.items():
            self._metrics.rejected.add(count, {"transport": "grpc", "reason": reason})
        loop = asyncio.get_running_loop()
        now = time.time_ns()
        for lane, (accepted_events, indices) in lanes.items():
            pending.submissions.append(Submission(lane, accepted_events, loop.create_future(), now))
            pending.indices.append(indices)
        return pending

    def _queue(self, pending: _Pending) -> None:
        """Queue a request's submissions, counting a refusal per event."""
        try:
            self._broker.publish(pending.submissions)
        except EventStreamError as error:
            refused = sum(len(indices) for indices in pending.indices)
            self._metrics.rejected.add(refused, {"transport": "grpc", "reason": error.reason})
            raise

    async def _publish(self, request: publish_pb2.PublishRequest,
                       context: grpc.aio.ServicerContext) -> bytes:
        self._broker.check_accepting()
        if not request.HasField("event"):
            self._metrics.rejected.add(1, {"transport": "grpc", "reason": "EVENT_MISSING"})
            raise EventStreamError("EVENT_MISSING", "event: is required", field="event")
        pending = self._prepare([request.event], "")
        if pending.first_error is not None:
            raise pending.first_error.at("event.")
        self._queue(pending)
        acks = await pending.submissions[0].future
        return _framed(_RESPONSE_ACK, acks[0])

    async def _publish_batch(self, request: publish_pb2.PublishBatchRequest,
                             context: grpc.aio.ServicerContext) -> bytes:
        self._broker.check_accepting()
        check_batch_size(len(request.events), self._limits)
        pending = self._prepare(request.events, "events")
        self._queue(pending)
        return b"".join([_framed(_BATCH_RESULTS, result) for result in await pending.finish()])

    async def _publish_stream(self, requests: AsyncIterator[publish_pb2.PublishStreamRequest],
                              context: grpc.aio.ServicerContext) -> None:
        self._broker.check_accepting()
        window: asyncio.Queue[tuple[int, _Pending] | None] = asyncio.Queue(STREAM_WINDOW)

        async def answer() -> None:
            while (item := await window.get()) is not None:
                sequence, pending = item
                results = await pending.finish()
                await context.write(b"".join([
                    _STREAM_SEQUENCE, varint(sequence),
                    *[_framed(_STREAM_RESULTS, result) for result in results]]))

        refusal: EventStreamError | None = None
        async with asyncio.TaskGroup() as group:
            group.create_task(answer())
            try:
                async for request in requests:
                    check_batch_size(len(request.events), self._limits)
                    pending = self._prepare(request.events, "events")
                    try:
                        self._queue(pending)
                    except EventStreamError as error:
                        if error.reason != "LANE_FULL":
                            raise
                        pending.fail(error)  # the client may retry these events
                    await window.put((request.sequence, pending))
            except EventStreamError as error:
                refusal = error  # answer what was accepted, then end with the status
            finally:
                await window.put(None)
        if refusal is not None:
            raise refusal
