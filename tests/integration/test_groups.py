"""Consumer groups over SubscribeService.Consume, against the real server.

Members share partitions, acknowledged events are never delivered again,
what a dead member held goes to the others, nacked and late events come back,
and max_deliveries sends an event to the group's dead-letter topic.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from eventstream.v1 import common_pb2, publish_pb2, subscribe_pb2
from tests.support.client import Stubs, collect, event, subscribe_request
from tests.support.server import metric

pytestmark = pytest.mark.timeout(120)


class GroupMember:
    """One Consume stream: requests go through a queue, responses are read by the test."""

    def __init__(self, stubs: Stubs, group: str, **start: object) -> None:
        self._requests: asyncio.Queue[subscribe_pb2.ConsumeRequest | None] = asyncio.Queue()
        self._requests.put_nowait(subscribe_pb2.ConsumeRequest(
            start=subscribe_pb2.ConsumeStart(group=group, **start)))
        self.call = stubs.subscribe.Consume(self._outgoing())
        self.assignments: list[subscribe_pb2.ConsumeAssignment] = []
        self.acked: list[tuple[int, int]] = []

    @classmethod
    def without_start(cls, stubs: Stubs, first: subscribe_pb2.ConsumeRequest) -> GroupMember:
        """A stream whose first request is ``first`` instead of a ConsumeStart."""
        member = cls.__new__(cls)
        member._requests = asyncio.Queue()
        member._requests.put_nowait(first)
        member.call = stubs.subscribe.Consume(member._outgoing())
        member.assignments, member.acked = [], []
        return member

    async def _outgoing(self):
        while (request := await self._requests.get()) is not None:
            yield request

    async def events(self, count: int) -> list[common_pb2.Event]:
        """Read until ``count`` events arrived (assignments are kept aside)."""
        got: list[common_pb2.Event] = []
        while len(got) < count:
            response = await self.call.read()
            assert response is not grpc.aio.EOF, "the stream ended"
            if response.HasField("assignment"):
                self.assignments.append(response.assignment)
            got.extend(response.events)
        return got

    async def assigned(self) -> subscribe_pb2.ConsumeAssignment:
        """Wait for this member's first assignment: it is in the group then."""
        while not self.assignments:
            response = await self.call.read()
            assert response is not grpc.aio.EOF, "the stream ended"
            if response.HasField("assignment"):
                self.assignments.append(response.assignment)
        return self.assignments[0]

    def ack(self, events: list[common_pb2.Event]) -> None:
        positions = [common_pb2.PartitionOffset(partition=e.partition, offset=e.offset)
                     for e in events]
        self.acked += [(e.partition, e.offset) for e in events]
        self._requests.put_nowait(subscribe_pb2.ConsumeRequest(
            ack=subscribe_pb2.EventPositions(events=positions)))

    def nack(self, events: list[common_pb2.Event]) -> None:
        positions = [common_pb2.PartitionOffset(partition=e.partition, offset=e.offset)
                     for e in events]
        self._requests.put_nowait(subscribe_pb2.ConsumeRequest(
            nack=subscribe_pb2.EventPositions(events=positions)))

    def kill(self) -> None:
        """End the stream abruptly, as a crashed client does (also after it failed)."""
        self._requests.put_nowait(None)   # ends the request generator too
        self.call.cancel()


async def publish(stubs: Stubs, topic: str, count: int) -> None:
    for start in range(0, count, 500):
        await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=[
            event(topic, str(i).encode(), key=f"k{i % 40}") for i in range(start, min(start + 500, count))]))


async def wait_for_metric(server, name: str, value: float, **labels: str) -> None:
    """Like tests.support.server.wait_for_metric, but yields to the event loop
    while it polls: the members' acks are sent by this loop."""
    for _ in range(600):
        if metric(server, name, **labels) >= value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name}{labels} never reached {value}: {metric(server, name, **labels)}")


async def test_two_members_share_the_work_and_a_dead_members_events_are_redelivered(start_server):
    server = start_server({"storage": {"partitions": 4}})
    stubs = Stubs(server.target)
    total = 10_000
    await publish(stubs, "orders/new", total)
    start = dict(patterns=["orders/#"], start_from=subscribe_pb2.START_FROM_EARLIEST,
                 max_in_flight=300)
    a = GroupMember(stubs, "billing", **start)
    got_a = await a.events(1)          # a holds the whole group for now
    b = GroupMember(stubs, "billing", **start)
    await b.events(1)
    # Once both are in, the partitions are split between them.
    while not (b.assignments and a.assignments and
               a.assignments[-1].generation == b.assignments[-1].generation):
        got_a += await a.events(1)
    assert sorted([*a.assignments[-1].partitions, *b.assignments[-1].partitions]) == [0, 1, 2, 3]
    assert a.assignments[-1].partitions and b.assignments[-1].partitions

    # a acknowledges 1,000 events, then dies holding some it never acknowledged.
    while len(a.acked) < 1_000:
        batch = got_a or await a.events(1)
        got_a = []
        a.ack(batch)
    await wait_for_metric(server, "eventstream_group_acks_total", len(a.acked), group="billing")
    held = await a.events(1)            # delivered to a, never acknowledged
    a.kill()

    # b, alone now, finishes the rest: it gets what a held, and nothing a acknowledged.
    seen_by_b: list[tuple[int, int]] = []
    while len(a.acked) + len(b.acked) < total:
        batch = await b.events(1)
        seen_by_b += [(e.partition, e.offset) for e in batch]
        b.ack(batch)
    await wait_for_metric(server, "eventstream_group_acks_total", total, group="billing")
    everything = a.acked + b.acked
    assert len(everything) == len(set(everything)) == total, "an event was acknowledged twice"
    assert not set(a.acked) & set(seen_by_b), "an acknowledged event was delivered again"
    assert {(e.partition, e.offset) for e in held} <= set(b.acked)
    assert metric(server, "eventstream_group_lag", group="billing") == 0
    assert metric(server, "eventstream_group_redeliveries_total", group="billing") >= len(held)
    await stubs.close()


async def test_nacked_until_max_deliveries_moves_to_the_dead_letter_topic(start_server):
    server = start_server()
    stubs = Stubs(server.target)
    member = GroupMember(stubs, "payments", patterns=["pay/#"], max_deliveries=3,
                         start_from=subscribe_pb2.START_FROM_EARLIEST)
    await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=[
        event("pay/in", b"poison", id="p-1", headers={"origin": "test"}),
        event("pay/in", b"fine", id="p-2")]))
    deliveries = 0
    while True:
        batch = await member.events(1)
        good = [e for e in batch if e.payload == b"fine"]
        member.ack(good)
        poison = [e for e in batch if e.payload == b"poison"]
        deliveries += len(poison)
        member.nack(poison)
        if deliveries == 3:
            break
    call = stubs.subscribe.Subscribe(subscribe_request(
        "dead-letter/#", start_from=subscribe_pb2.START_FROM_EARLIEST))
    [moved] = await collect(call, 1)
    call.cancel()
    assert moved.topic == "dead-letter/payments" and moved.payload == b"poison"
    assert moved.headers["origin"] == "test" and moved.headers["dead-letter-topic"] == "pay/in"
    assert moved.headers["dead-letter-id"] == "p-1"
    assert moved.headers["dead-letter-deliveries"] == "3"
    await wait_for_metric(server, "eventstream_group_dead_lettered_total", 1, group="payments")
    await wait_for_metric(server, "eventstream_group_acks_total", 1, group="payments")
    member.kill()
    await stubs.close()


async def test_an_unacknowledged_event_comes_back_after_the_deadline(start_server):
    server = start_server({"groups": {"ack_deadline_seconds": 0.3}})
    stubs = Stubs(server.target)
    member = GroupMember(stubs, "slow", patterns=["#"],
                         start_from=subscribe_pb2.START_FROM_EARLIEST)
    await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=[event("s/t", b"late")]))
    first = await member.events(1)
    again = await member.events(1)      # not acknowledged: delivered again
    assert [(e.partition, e.offset) for e in again] == [(e.partition, e.offset) for e in first]
    member.ack(again)
    await wait_for_metric(server, "eventstream_group_acks_total", 1, group="slow")
    member.kill()
    await stubs.close()


async def test_members_must_agree_on_patterns_and_start_with_a_start(server):
    stubs = Stubs(server.target)
    async with asyncio.timeout(60):
        first = GroupMember(stubs, "same", patterns=["a/#"])
        await first.assigned()  # the group exists, with first's patterns
        other = GroupMember(stubs, "same", patterns=["b/#"])
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await other.events(1)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "start.patterns" in error.value.details()
        other.kill()
    async with asyncio.timeout(60):
        no_start = GroupMember.without_start(stubs, subscribe_pb2.ConsumeRequest(
            ack=subscribe_pb2.EventPositions()))
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await no_start.events(1)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        no_start.kill()
    async with asyncio.timeout(60):
        bad = GroupMember(stubs, "same", patterns=["a/#"])
        bad.ack([common_pb2.Event(partition=99, offset=0)])
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await bad.events(10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "partition 99 does not exist" in error.value.details()
        bad.kill()
    first.kill()
    await stubs.close()


async def test_committed_offsets_survive_a_restart(start_server):
    """With the durable log, a group resumes after a restart where it had finished."""
    server = start_server({"storage": {"partitions": 2}})
    stubs = Stubs(server.target)
    await publish(stubs, "audit/e", 200)
    first = GroupMember(stubs, "auditors", patterns=["audit/#"],
                        start_from=subscribe_pb2.START_FROM_EARLIEST, max_in_flight=20)
    while len(first.acked) < 120:
        first.ack(await first.events(1))
    await wait_for_metric(server, "eventstream_group_acks_total", len(first.acked), group="auditors")
    first.kill()
    await stubs.close()
    server.stop()  # a clean stop writes the moved offsets to the log (after a crash, a few more
    server.start()  # come again)
    stubs = Stubs(server.target)
    second = GroupMember(stubs, "auditors", patterns=["audit/#"],
                         start_from=subscribe_pb2.START_FROM_EARLIEST)
    rest: list[tuple[int, int]] = []
    while len(rest) < 200 - len(first.acked):
        batch = await second.events(1)
        rest += [(e.partition, e.offset) for e in batch]
        second.ack(batch)
    assert not set(rest) & set(first.acked), "an event acknowledged before the restart came again"
    assert len(set(rest) | set(first.acked)) == 200
    second.kill()
    await stubs.close()
