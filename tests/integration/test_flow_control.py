"""Flow control against the real server: a consumer that stops reading costs a bounded window.

A subscriber, or a consumer-group member, reads one response and then stops
reading while 1,000,000 events of 100 bytes are published. The server must
not keep what the consumer has not taken: its resident memory (``VmRSS``,
sampled throughout, and the kernel's peak ``VmHWM``) stays under the bound
stated below, far under what the events would take, and it writes the stalled
stream only a few batches past what was read. Then the consumer reads on and
gets every event, each key in order, from the log. A member that reads on but
stops acknowledging is held at ``max_in_flight`` events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

from eventstream.v1 import common_pb2, publish_pb2, subscribe_pb2
from tests.integration.test_groups import GroupMember, wait_for_metric
from tests.support.client import Stubs, subscribe_request
from tests.support.server import ServerProcess, metric

EVENTS = 1_000_000             # published while the consumer is stalled
BATCH = 1_000                  # events per PublishBatch
PAYLOAD = 100                  # bytes per event payload
KEYS_PER_PUBLISHER = 4
PUBLISHERS = 4                 # PublishBatch calls in flight at once
MIB = 1 << 20
TAIL_CACHE = 4 * MIB           # storage.tail_cache_bytes: the newest events the server keeps
# What the server's resident memory may grow over the baseline while the
# consumer is stalled. Measured on a 2-core VM: ~6 MiB that does not depend on
# the cache (publish buffers, allocator) plus about the tail cache itself
# (records kept as the buffers they were published in), ~10 MiB in all.
# Keeping the 1,000,000 events would take over 100 MB for their payloads alone.
GROWTH_BOUND = 32 * MIB
# The server may write a stalled stream a few batches past what was read (what
# fits the HTTP/2 windows), never the backlog.
STALLED_WRITE_BOUND = 5 * BATCH
SERVER_CONFIG = {"storage": {"fsync": "never", "tail_cache_bytes": TAIL_CACHE}}

# A consumer that stops reading: small HTTP/2 windows and no BDP probing, so
# the client library itself takes in little of what the server sends (with
# grpc's defaults it buffers ~25 batches).
STALLED_CHANNEL_OPTIONS = [
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 64 * 1024),
]


def proc_status_bytes(pid: int, field: str) -> int:
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def key_of(number: int) -> str:
    """The key of event ``number``.

    Batch ``b`` is published by publisher ``b mod PUBLISHERS``, one batch after
    the other, so the events of a key are published in order; concurrent
    batches have other keys, whose order against these is not defined. The
    keys spread the events over the partitions.
    """
    return f"p{number // BATCH % PUBLISHERS}-k{number % KEYS_PER_PUBLISHER}"


def batch_request(first: int) -> bytes:
    """A serialized PublishBatchRequest of the events numbered ``first`` to
    ``first + BATCH - 1``; each payload starts with the event's number."""
    return publish_pb2.PublishBatchRequest(events=[
        common_pb2.Event(topic="flow/t", key=key_of(number),
                         payload=f"{number:012d}".encode().ljust(PAYLOAD, b"."))
        for number in range(first, first + BATCH)]).SerializeToString()


async def publish_range(channel: grpc.aio.Channel, start: int, stop: int) -> None:
    """Publish the events numbered ``start`` to ``stop - 1``, PUBLISHERS batches in
    flight; every event must be acknowledged."""
    call: grpc.aio.UnaryUnaryMultiCallable = channel.unary_unary(
        "/eventstream.v1.PublishService/PublishBatch", request_serializer=None,
        response_deserializer=publish_pb2.PublishBatchResponse.FromString)

    async def publisher(lane: int) -> None:
        for first in range(start, stop, BATCH):
            if first // BATCH % PUBLISHERS != lane:
                continue
            response = await call(batch_request(first), timeout=60)
            assert len(response.results) == BATCH
            assert all(result.HasField("ack") for result in response.results), response

    async with asyncio.TaskGroup() as group:
        for lane in range(PUBLISHERS):
            group.create_task(publisher(lane))


class InOrder:
    """Checks that every key's events arrive once each, in publish order, with no gap."""

    def __init__(self) -> None:
        self.expected: dict[str, int] = {}
        self.count = 0

    def check(self, events: Iterable[common_pb2.Event]) -> None:
        """Each event must be the next number of its key (see :func:`key_of`)."""
        for item in events:
            number = int(item.payload[:12])
            key = key_of(number)
            assert item.key == key
            # A key's first event is in its publisher's first batch.
            first = number // BATCH % PUBLISHERS * BATCH + number % KEYS_PER_PUBLISHER
            assert number == self.expected.get(key, first), \
                (item.partition, item.offset, number, self.expected.get(key, first))
            following = number + KEYS_PER_PUBLISHER
            if following // BATCH != number // BATCH:   # on in the publisher's next batch
                following += (PUBLISHERS - 1) * BATCH
            self.expected[key] = following
            self.count += 1


@dataclass
class Stall:
    """What the server did while the consumer was stalled (memory in bytes)."""

    baseline: int
    peak_sampled: int
    peak: int
    seconds: float
    delivered: float


async def publish_while_stalled(server: ServerProcess, publisher: grpc.aio.Channel) -> Stall:
    """Publish EVENTS events (numbered from BATCH on) while sampling the server's
    memory; assert its growth stays under GROWTH_BOUND."""
    assert server.process is not None
    pid = server.process.pid
    baseline = proc_status_bytes(pid, "VmRSS")
    samples: list[int] = []

    async def sample() -> None:
        while True:
            samples.append(proc_status_bytes(pid, "VmRSS"))
            await asyncio.sleep(0.05)

    sampler = asyncio.get_running_loop().create_task(sample())
    started = time.perf_counter()
    try:
        await publish_range(publisher, BATCH, BATCH + EVENTS)
    finally:
        sampler.cancel()
    stall = Stall(baseline, max(samples), proc_status_bytes(pid, "VmHWM"),
                  time.perf_counter() - started,
                  metric(server, "eventstream_events_delivered_total", transport="grpc"))
    print(f"\nRSS baseline {stall.baseline / MIB:.1f} MiB, peak {stall.peak_sampled / MIB:.1f} "
          f"MiB sampled, VmHWM {stall.peak / MIB:.1f} MiB (bound: baseline + "
          f"{GROWTH_BOUND / MIB:.0f} MiB); published {EVENTS:,} events in "
          f"{stall.seconds:.1f} s = {EVENTS / stall.seconds:,.0f} events/s; "
          f"delivered while stalled {stall.delivered:,.0f}")
    assert stall.peak_sampled - baseline < GROWTH_BOUND
    # The kernel's high-water mark also catches a spike between samples.
    assert stall.peak - baseline < GROWTH_BOUND
    return stall


async def test_a_stalled_subscriber_costs_the_server_a_bounded_window(start_server):
    server = start_server(SERVER_CONFIG)
    publisher = grpc.aio.insecure_channel(server.target)
    stalled = Stubs(server.target, STALLED_CHANNEL_OPTIONS)
    call = stalled.subscribe.Subscribe(subscribe_request(
        "#", start_from=subscribe_pb2.START_FROM_EARLIEST))
    try:
        await publish_range(publisher, 0, BATCH)
        order = InOrder()
        first = await call.read()
        order.check(first.events)   # then read nothing while the events come in

        stall = await publish_while_stalled(server, publisher)
        assert stall.delivered <= STALLED_WRITE_BOUND

        # Read on: every event arrives once, each key in order, from the log.
        while order.count < BATCH + EVENTS:
            response = await call.read()
            assert response is not grpc.aio.EOF
            order.check(response.events)
        assert order.count == BATCH + EVENTS
    finally:
        call.cancel()
        await stalled.close()
        await publisher.close()


async def test_a_stalled_group_member_costs_the_server_a_bounded_window(start_server):
    # max_in_flight above the backlog: only flow control can hold the member's stream back.
    server = start_server({**SERVER_CONFIG, "groups": {"max_in_flight": 2 * EVENTS}})
    publisher = grpc.aio.insecure_channel(server.target)
    stalled = Stubs(server.target, STALLED_CHANNEL_OPTIONS)
    member = GroupMember(stalled, "flow", patterns=["#"], max_in_flight=2 * EVENTS,
                         ack_deadline_seconds=600,
                         start_from=subscribe_pb2.START_FROM_EARLIEST)
    try:
        await publish_range(publisher, 0, BATCH)
        order = InOrder()
        first = await member.events(1)
        order.check(first)
        member.ack(first)                     # then read and acknowledge nothing

        stall = await publish_while_stalled(server, publisher)
        assert stall.delivered <= STALLED_WRITE_BOUND

        # Read on and acknowledge: every event arrives once, each key in order.
        while order.count < BATCH + EVENTS:
            events = await member.events(1)
            order.check(events)
            member.ack(events)
        assert order.count == BATCH + EVENTS
        await wait_for_metric(server, "eventstream_group_acks_total", BATCH + EVENTS,
                              group="flow")
        assert metric(server, "eventstream_group_lag", group="flow") == 0
    finally:
        member.kill()
        await stalled.close()
        await publisher.close()


async def test_a_member_that_stops_acknowledging_holds_at_most_max_in_flight(start_server):
    server = start_server()
    stubs = Stubs(server.target)
    member = GroupMember(stubs, "unacked", patterns=["#"], max_in_flight=300,
                         ack_deadline_seconds=600,
                         start_from=subscribe_pb2.START_FROM_EARLIEST)
    try:
        await publish_range(stubs.channel, 0, 2 * BATCH)
        # Reading on without acknowledging: deliveries stop at exactly max_in_flight.
        held = await member.events(300)
        assert len(held) == 300
        # Each acknowledgement makes room for one more event, never more.
        for step in range(3):
            member.ack(held[step:step + 1])
            assert len(await member.events(1)) == 1
    finally:
        member.kill()
        await stubs.close()
