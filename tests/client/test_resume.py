"""Subscriptions resume after the connection is cut: nothing lost, nothing repeated.

The log is in memory, so a restart would lose it; instead a TCP proxy between
client and server aborts every connection in the middle of a subscription.
"""

from __future__ import annotations

import asyncio

from eventstream.client import AsyncClient, Client, Event

CONFIG = {"storage": {"partitions": 4}}


def published(acks):
    return sorted((ack.partition, ack.offset) for ack in acks)


def assert_each_once_in_partition_order(events, acks):
    positions = [(event.partition, event.offset) for event in events]
    assert sorted(positions) == published(acks), "lost or repeated events"
    for partition in {p for p, _ in positions}:
        offsets = [o for p, o in positions if p == partition]
        assert offsets == sorted(offsets), f"partition {partition} out of order"


def publish_keys(client, first, count):
    results = client.publish_batch([Event("resume/t", str(n), key=f"k{n % 7}")
                                    for n in range(first, first + count)])
    return [result.unwrap() for result in results]


def test_a_blocking_subscription_from_earliest_resumes_after_a_cut(start_server, start_proxy):
    server = start_server(CONFIG)
    proxy = start_proxy(server.target)
    with Client(server.target) as direct, Client(proxy.target) as client:
        acks = publish_keys(direct, 0, 60)
        events = []
        with client.subscribe("resume/#", start="earliest", max_batch_events=5) as subscription:
            for event in subscription:
                events.append(event)
                if len(events) == 25:
                    proxy.cut()
                    acks += publish_keys(direct, 60, 60)
                if len(events) == 120:
                    break
            positions = subscription.positions
    assert proxy.connections >= 2, "the subscription never reconnected"
    assert_each_once_in_partition_order(events, acks)
    assert positions == {p: max(o for q, o in published(acks) if q == p) + 1
                         for p, _ in published(acks)}


async def test_an_async_subscription_from_offsets_resumes_after_two_cuts(start_server,
                                                                          start_proxy):
    server = start_server(CONFIG)
    proxy = start_proxy(server.target)
    async with AsyncClient(server.target) as direct, AsyncClient(proxy.target) as client:

        async def publish(first):
            return [r.unwrap() for r in await direct.publish_batch(
                [Event("resume/t", str(n), key=f"k{n % 7}") for n in range(first, first + 40)])]

        acks = await publish(0)
        start = {partition: 0 for partition in range(4)}
        events = []
        async with client.subscribe("resume/#", start=start, max_batch_events=3) as subscription:
            async for event in subscription:
                events.append(event)
                if len(events) in (10, 50):
                    await asyncio.to_thread(proxy.cut)
                    acks += await publish(len(acks))
                if len(events) == 120:
                    break
    assert proxy.connections >= 3, "the subscription did not reconnect after each cut"
    assert_each_once_in_partition_order(events, acks)
