"""SubscribeService.Consume on grpc.aio: one member of a consumer group per stream.

The handler joins the group with the first request (a ConsumeStart), then
runs two loops until the stream ends: one applies the acks and nacks the
client sends, the other writes what the coordinator hands this member. Events
go out as bytes: a ConsumeResponse's ``events`` is field 1, like a
SubscribeResponse's, so stored records are concatenated as they are.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Sequence

import grpc

from eventstream.v1 import subscribe_pb2

from ..broker import priority
from ..broker.broker import Broker
from ..broker.group_state import GroupSettings
from ..broker.groups import GroupCoordinator, Member
from ..broker.topics import TopicFilter
from ..broker.wire import varint
from ..config.model import GroupsConfig, LimitsConfig
from ..errors import EventStreamError, invalid
from ..observability.metrics import Metrics
from ..security.access import Principal
from .consume_relay import ConsumeRelay
from .convert import StringFields, parse_request
from .guard import Guard
from .status import handles_errors

_TRANSPORT = {"transport": "grpc"}
_ASSIGNMENT = b"\x12"   # ConsumeResponse.assignment
_STRINGS: StringFields = {1: ("start", {1: ("group", "GROUP_INVALID"),
                                        2: ("patterns[]", "PATTERN_INVALID")})}


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a finished loop's outcome as seen (it ended with its member)."""
    if not task.cancelled():
        task.exception()


class ConsumeServicer:
    """The Consume handler.

    Args:
        broker: the node's broker (its phase ends streams on a drain).
        coordinator: the node's consumer groups.
        config: group defaults.
        limits: request limits.
        metrics: the server's metrics.
        guard: who calls, and which groups and topics they may consume.
        relay: on a member of a replicated cluster, runs the streams on the
            leader while this node follows (:mod:`.consume_relay`).
    """

    def __init__(self, broker: Broker, coordinator: GroupCoordinator, config: GroupsConfig,
                 limits: LimitsConfig, metrics: Metrics, guard: Guard,
                 relay: ConsumeRelay | None = None) -> None:
        self._broker = broker
        self._relay = relay
        self._coordinator = coordinator
        self._config = config
        self._limits = limits
        self._metrics = metrics
        self._guard = guard
        self.consume = handles_errors("Consume", metrics)(guard.authenticated(self._consume))

    def method_handler(self) -> grpc.RpcMethodHandler[bytes, bytes]:
        """The handler for SubscribeService's method table (requests and responses as bytes)."""
        return grpc.stream_stream_rpc_method_handler(self.consume, None, None)

    def _settings(self, start: subscribe_pb2.ConsumeStart) -> GroupSettings:
        if len(start.patterns) > self._limits.max_patterns:
            raise invalid("PATTERN_INVALID", "start.patterns",
                          f"at most {self._limits.max_patterns} patterns")
        # Checked here to name the field; the group keeps its own filter.
        TopicFilter(start.patterns, "start.patterns", self._limits.max_topic_bytes)
        if start.min_priority not in priority.PROTO_VALUES:
            raise invalid("PRIORITY_UNKNOWN", "start.min_priority",
                          f"unknown priority {start.min_priority}")
        if start.start_from not in (subscribe_pb2.START_FROM_UNSPECIFIED,
                                    subscribe_pb2.START_FROM_LATEST,
                                    subscribe_pb2.START_FROM_EARLIEST):
            raise invalid("START_POSITION_INVALID", "start.start_from",
                          "a group starts from LATEST or EARLIEST")
        config = self._config
        return GroupSettings(
            patterns=tuple(start.patterns),
            min_priority=priority.frame_byte(start.min_priority) if start.min_priority else 0,
            start_latest=start.start_from != subscribe_pb2.START_FROM_EARLIEST,
            max_in_flight=min(start.max_in_flight or config.max_in_flight, config.max_in_flight),
            ack_deadline_ns=int((start.ack_deadline_seconds or config.ack_deadline_seconds) * 1e9),
            max_deliveries=start.max_deliveries or config.max_deliveries)

    async def _consume(self, requests: AsyncIterator[bytes],
                       context: grpc.aio.ServicerContext[bytes, bytes],
                       principal: Principal) -> None:
        data, group, settings = await self._start(requests, principal)
        with self._guard.subscription_slot(principal):
            leader = None if self._relay is None else self._relay.leader()
            if leader is not None:
                assert self._relay is not None
                await self._relay.pipe(leader, principal.name, data, requests, context)
                return
            await self._member(group, settings, requests, context)

    async def serve_relayed(self, identity: str, requests: AsyncIterator[bytes],
                            context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        """Serve a member a follower relayed (``PeerService.RelayConsume``) on this leader.

        The follower authenticated it as ``identity`` and holds its
        subscription slot; its rules are checked again here, under this node's
        configuration. A node that does not lead (any more) answers NOT_LEADER.
        """
        serve = functools.partial(self._serve_relayed, identity)
        await handles_errors("Consume", self._metrics)(serve)(requests, context)

    async def _serve_relayed(self, identity: str, requests: AsyncIterator[bytes],
                             context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        if self._relay is not None and self._relay.follows():
            raise self._relay.not_leader("does not lead (any more) to serve the group")
        _, group, settings = await self._start(requests, self._guard.named(identity))
        await self._member(group, settings, requests, context)

    async def _start(self, requests: AsyncIterator[bytes], principal: Principal
                     ) -> tuple[bytes, str, GroupSettings]:
        """Read and check the first request: its bytes, the group and its settings."""
        self._broker.check_accepting()
        data = await anext(aiter(requests), None)
        first = None if data is None else parse_request(subscribe_pb2.ConsumeRequest, data,
                                                        _STRINGS)
        if data is None or first is None or first.WhichOneof("request") != "start":
            raise invalid("START_MISSING", "start", "the first request must be a ConsumeStart")
        settings = self._settings(first.start)
        self._check_group(principal, first.start.group, settings.patterns)
        return data, first.start.group, settings

    def _check_group(self, principal: Principal, group: str, patterns: Sequence[str]) -> None:
        rules = principal.rules
        if not rules.may_join(group):
            self._guard.access.denied(rules, "consume")
            raise EventStreamError("PERMISSION_DENIED", f"start.group: identity "
                                   f"{principal.name!r} may not consume as group {group!r}",
                                   field="start.group")
        self._guard.check_read(principal, "consume", patterns, "start.patterns")

    async def _member(self, group: str, settings: GroupSettings, requests: AsyncIterator[bytes],
                      context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        member = await self._coordinator.join(group, settings)
        self._metrics.subscribers.add(1)
        # Requests are read by a task of their own; every write happens here,
        # in the handler, so when it ends (a bad ack's INVALID_ARGUMENT, the
        # client's half-close, the drain) no write is in flight: grpc cannot
        # send the status while a message is still being sent.
        reader = asyncio.get_running_loop().create_task(self._read(member, requests))
        reader.add_done_callback(lambda _: member.wake.set())
        try:
            await self._write(member, context, reader)
        finally:
            reader.cancel()
            reader.add_done_callback(_retrieve)
            self._coordinator.leave(member)
            self._metrics.subscribers.add(-1)
        if self._broker.phase == "draining":
            raise EventStreamError("SHUTTING_DOWN", "the server is shutting down; "
                                   "consume again elsewhere or later")

    async def _read(self, member: Member, requests: AsyncIterator[bytes]) -> None:
        coordinator = self._coordinator
        async for data in requests:
            request = parse_request(subscribe_pb2.ConsumeRequest, data, _STRINGS)
            kind = request.WhichOneof("request")
            if kind == "ack":
                coordinator.ack(member, [(p.partition, p.offset) for p in request.ack.events])
            elif kind == "nack":
                coordinator.nack(member, [(p.partition, p.offset) for p in request.nack.events])

    async def _write(self, member: Member, context: grpc.aio.ServicerContext[bytes, bytes],
                     reader: asyncio.Task[None]) -> None:
        """Send assignments and events until the reader ends or the server drains."""
        group = member.group
        while self._broker.phase != "draining":
            if reader.done():
                reader.result()   # a bad ack's INVALID_ARGUMENT, for instance
                return            # the client closed its requests
            member.wake.clear()
            if member.assignment_changed:
                member.assignment_changed = False
                assignment = subscribe_pb2.ConsumeAssignment(
                    member_id=member.id, generation=group.generation,
                    partitions=member.partitions).SerializeToString()
                await context.write(_ASSIGNMENT + varint(len(assignment)) + assignment)
            records, count = self._coordinator.take(member, self._config.max_batch_events,
                                                    self._config.max_batch_bytes)
            if count:
                await context.write(b"".join(records))
                self._metrics.delivered.add(count, _TRANSPORT)
                continue
            if self._coordinator.behind(member):
                # The filter skipped a whole chunk: let others run, then scan on.
                await asyncio.sleep(0)
                continue
            await member.wake.wait()
