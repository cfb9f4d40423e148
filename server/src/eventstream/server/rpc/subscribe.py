"""eventstream.v1.SubscribeService on grpc.aio.

Deliveries are written as raw bytes: a SubscribeResponse is the concatenation
of stored records, each already framed as its ``events`` field, so no event is
decoded or re-encoded on the way out.
"""

from __future__ import annotations

import grpc

from eventstream.v1 import subscribe_pb2

from ..broker import priority
from ..broker.broker import Broker
from ..broker.subscriptions import SubscriptionClosed
from ..broker.topics import TopicFilter
from ..config.model import LimitsConfig
from ..errors import EventStreamError, invalid
from ..observability.metrics import Metrics
from ..security.access import Principal
from .consume import ConsumeServicer
from .convert import StringFields, parse_request
from .guard import Guard
from .status import handles_errors

SERVICE = "eventstream.v1.SubscribeService"
_TRANSPORT = {"transport": "grpc"}
_STRINGS: StringFields = {1: ("patterns[]", "PATTERN_INVALID")}


class SubscribeServicer:
    """Handlers of SubscribeService.

    Args:
        broker: where subscriptions read from.
        limits: request limits.
        metrics: the server's metrics.
        consume: the consumer-group method (Consume).
        guard: who calls, and what they may read.
    """

    def __init__(self, broker: Broker, limits: LimitsConfig, metrics: Metrics,
                 consume: ConsumeServicer, guard: Guard) -> None:
        self._broker = broker
        self._consume = consume
        self._limits = limits
        self._metrics = metrics
        self._guard = guard
        self.subscribe = handles_errors("Subscribe", metrics)(guard.authenticated(self._subscribe))

    def handlers(self) -> grpc.GenericRpcHandler:
        """The method handlers for grpc.aio's server (requests and responses as bytes)."""
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Subscribe": grpc.unary_stream_rpc_method_handler(self.subscribe, None, None),
            "Consume": self._consume.method_handler(),
        })

    def _cursors(self, request: subscribe_pb2.SubscribeRequest) -> list[int]:
        broker = self._broker
        start = request.start_from
        if start in (subscribe_pb2.START_FROM_UNSPECIFIED, subscribe_pb2.START_FROM_LATEST):
            return broker.cursors_latest()
        if start == subscribe_pb2.START_FROM_EARLIEST:
            return broker.cursors_earliest()
        if start == subscribe_pb2.START_FROM_TIME:
            if not request.HasField("start_time"):
                raise invalid("START_POSITION_INVALID", "start_time",
                              "is required with START_FROM_TIME")
            return broker.cursors_at_time(request.start_time.ToNanoseconds())
        if start == subscribe_pb2.START_FROM_OFFSETS:
            cursors = broker.cursors_latest()
            earliest = broker.cursors_earliest()
            for index, position in enumerate(request.start_offsets):
                field = f"start_offsets[{index}]"
                if position.partition >= len(cursors):
                    raise invalid("START_POSITION_INVALID", f"{field}.partition",
                                  f"partition {position.partition} does not exist "
                                  f"(there are {len(cursors)})")
                if position.offset > cursors[position.partition]:
                    raise EventStreamError(
                        "OFFSET_OUT_OF_RANGE",
                        f"{field}.offset: {position.offset} is past the end of partition "
                        f"{position.partition} (its end offset, the next to be written, is "
                        f"{cursors[position.partition]})", field=f"{field}.offset")
                if position.offset < earliest[position.partition]:
                    raise EventStreamError(
                        "OFFSET_OUT_OF_RANGE",
                        f"{field}.offset: {position.offset} is no longer retained in partition "
                        f"{position.partition} (oldest is {earliest[position.partition]})",
                        field=f"{field}.offset")
                cursors[position.partition] = position.offset
            return cursors
        raise invalid("START_POSITION_INVALID", "start_from", f"unknown start position {start}")

    async def _subscribe(self, data: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                         principal: Principal) -> None:
        self._broker.check_accepting()
        request = parse_request(subscribe_pb2.SubscribeRequest, data, _STRINGS)
        if len(request.patterns) > self._limits.max_patterns:
            raise invalid("PATTERN_INVALID", "patterns",
                          f"at most {self._limits.max_patterns} patterns per subscription")
        topic_filter = TopicFilter(request.patterns, max_bytes=self._limits.max_topic_bytes)
        self._guard.check_read(principal, "subscribe", request.patterns, "patterns")
        minimum = request.min_priority
        if minimum not in priority.PROTO_VALUES:
            raise invalid("PRIORITY_UNKNOWN", "min_priority", f"unknown priority {minimum}")
        # UNSPECIFIED here means no filter, not MEDIUM.
        min_byte = priority.frame_byte(minimum) if minimum else 0
        cursors = self._cursors(request)
        with self._guard.subscription_slot(principal):
            await self._deliver(context, topic_filter, min_byte, cursors, request.max_batch_events)

    async def _deliver(self, context: grpc.aio.ServicerContext[bytes, bytes],
                       topic_filter: TopicFilter, min_byte: int, cursors: list[int],
                       max_batch_events: int) -> None:
        subscription = self._broker.subscribe(topic_filter, min_byte, cursors, max_batch_events)
        # Headers now tell the client its subscription is in place (events
        # committed from here on reach it), even if none comes for a while.
        await context.send_initial_metadata(())
        self._metrics.subscribers.add(1)
        try:
            while True:
                data, count = await subscription.next_batch()
                await context.write(data)
                self._metrics.delivered.add(count, _TRANSPORT)
        except SubscriptionClosed:
            raise EventStreamError("SHUTTING_DOWN",
                                   "the server is shutting down; subscribe again elsewhere "
                                   "or later, from the last offset received") from None
        finally:
            self._broker.unsubscribe(subscription)
            self._metrics.subscribers.add(-1)
