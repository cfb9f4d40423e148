"""Subscriptions resume after the connection is cut: nothing lost, nothing repeated.

The log is in memory, so a restart would lose it; instead a TCP proxy between
client and server aborts every connection in the middle of a subscription.
"""

from __future__ import annotations

import asyncio
import threading
import time

import grpc

from eventstream.client import AsyncClient, Client, Event, RetryPolicy

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
        start = dict.fromkeys(range(4), 0)
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


class AcceptedStreams(grpc.UnaryStreamClientInterceptor):
    """Counts server-streaming calls whose headers arrived while they were still open."""

    def __init__(self) -> None:
        self.count = 0

    def intercept_unary_stream(self, continuation, client_call_details, request):
        call = continuation(client_call_details, request)
        call.initial_metadata()  # returns at the headers or at the end of the call
        if call.is_active():
            self.count += 1
        return call


def test_an_idle_subscription_starts_a_new_run_of_retries_after_each_accepted_reconnect(
        start_server, start_proxy):
    # Two attempts per run of failures: had the second cut counted in the run
    # of the first (no event came in between, so nothing told the client its
    # subscription was in place but the headers), it would end the iteration.
    server = start_server(CONFIG)
    proxy = start_proxy(server.target)
    accepted = AcceptedStreams()
    received, errors = [], []
    with Client(server.target) as direct, Client(
            proxy.target, retry=RetryPolicy(max_attempts=2, deadline=None),
            interceptors=[accepted]) as client:
        subscription = client.subscribe("idle/#")

        def read():
            try:
                received.extend(event.payload for event in subscription)
            except Exception as error:
                errors.append(error)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for cut in range(1, 4):
            deadline = time.monotonic() + 30
            while accepted.count < cut and not errors and time.monotonic() < deadline:
                time.sleep(0.01)
            assert accepted.count == cut, errors
            proxy.cut()
        deadline = time.monotonic() + 30
        while accepted.count < 4 and not errors and time.monotonic() < deadline:
            time.sleep(0.01)
        direct.publish(Event("idle/t", b"after three cuts"))
        while not received and not errors and time.monotonic() < deadline:
            time.sleep(0.01)
        subscription.close()
        reader.join(30)
    assert errors == []
    assert received == [b"after three cuts"]
