"""With default settings, the SDK rides out a restart of the server.

A real server is stopped and started again (same data directory, same ports)
under a live subscription, a consumer-group member and a publisher loop. The
server stays down until the publisher has failed several attempts in a row,
more than a count-based budget of a few attempts allows, which on this machine
is an outage of a second or two. Afterwards the subscription has every event
once, the group has acked every event, and no call raised an error.

Only the publisher's call timeout is not the default: a publish waits through
the outage and the start of the new process, which on a loaded 2-core machine
alone took up to 5 s; the retry policy is the default everywhere.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time

import grpc
import pytest

from eventstream.client import AsyncClient, Client, Event

pytestmark = pytest.mark.timeout(120)

CONFIG = {"storage": {"partitions": 4}}
EVENTS = 120
CALL_TIMEOUT = 30.0
RESTART_AT = 40
FAILED_ATTEMPTS_WHILE_DOWN = 8
"""The server stays down until the publisher failed this many attempts more."""


class SyncAttempts(grpc.UnaryUnaryClientInterceptor):
    """Counts unary attempts (each retry is one) on a blocking channel."""

    def __init__(self) -> None:
        self.count = 0

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self.count += 1
        return continuation(client_call_details, request)


class AsyncAttempts(grpc.aio.UnaryUnaryClientInterceptor):
    """Counts unary attempts on a grpc.aio channel."""

    def __init__(self) -> None:
        self.count = 0

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        self.count += 1
        return await continuation(client_call_details, request)


def event(n: int) -> Event:
    return Event("restart/t", str(n), key=f"k{n % 5}", id=f"restart-{n}")


def wait(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def restart_while_publishing(server, attempts, published: list[str], errors: list[object],
                             publisher_done) -> None:
    """Stop the server mid-loop, keep it down for a run of failed attempts, start it again."""
    wait(lambda: len(published) >= RESTART_AT or errors, "the first publishes")
    assert server.stop() == 0
    down_from = attempts.count
    wait(lambda: attempts.count >= down_from + FAILED_ATTEMPTS_WHILE_DOWN or publisher_done(),
         "failed publish attempts while the server is down")
    server.start()


def assert_nothing_lost(published, subscribed, acked, errors) -> None:
    assert errors == []
    assert sorted(published) == sorted(f"restart-{n}" for n in range(EVENTS))
    duplicates = [i for i, count in collections.Counter(subscribed).items() if count > 1]
    assert duplicates == [], "the subscription repeated events"
    assert set(subscribed) == set(published), "the subscription lost events"
    assert acked >= set(published), "the group never acked some events"


def test_a_blocking_client_rides_out_a_restart_with_default_settings(start_server):
    server = start_server(CONFIG)
    attempts = SyncAttempts()
    published: list[str] = []
    subscribed: list[str] = []
    acked: set[str] = set()
    errors: list[object] = []
    done = threading.Event()
    with Client(server.target) as reader, Client(
            server.target, timeout=CALL_TIMEOUT, interceptors=[attempts]) as writer:
        subscription = reader.subscribe("restart/#", start="earliest")
        consumer = reader.consume("restart-group", "restart/#", start="earliest")

        def subscribe():
            try:
                for received in subscription:
                    subscribed.append(received.id)
            except Exception as error:
                errors.append(("subscription", error))

        def consume():
            try:
                for received in consumer:
                    acked.add(received.id)
                    received.ack()
            except Exception as error:
                errors.append(("consumer", error))

        def publish():
            try:
                for n in range(EVENTS):
                    published.append(writer.publish(event(n)).id)
            except Exception as error:
                errors.append(("publisher", error))
            finally:
                done.set()

        threads = [threading.Thread(target=target, daemon=True)
                   for target in (subscribe, consume, publish)]
        for thread in threads:
            thread.start()
        try:
            restart_while_publishing(server, attempts, published, errors, done.is_set)
            done.wait(60)
            wait(lambda: (len(subscribed) >= len(published) and acked >= set(published)) or errors,
                 "every published event read and acked")
        finally:
            subscription.close()
            consumer.close()
            for thread in threads:
                thread.join(30)
    assert_nothing_lost(published, subscribed, acked, errors)


async def test_an_async_client_rides_out_a_restart_with_default_settings(start_server):
    server = start_server(CONFIG)
    attempts = AsyncAttempts()
    published: list[str] = []
    subscribed: list[str] = []
    acked: set[str] = set()
    errors: list[object] = []
    async with AsyncClient(server.target) as reader, AsyncClient(
            server.target, timeout=CALL_TIMEOUT, interceptors=[attempts]) as writer:

        async def subscribe():
            try:
                async with reader.subscribe("restart/#", start="earliest") as subscription:
                    async for received in subscription:
                        subscribed.append(received.id)
            except Exception as error:
                errors.append(("subscription", error))

        async def consume():
            try:
                async with reader.consume("restart-group", "restart/#",
                                          start="earliest") as consumer:
                    async for received in consumer:
                        acked.add(received.id)
                        received.ack()
            except Exception as error:
                errors.append(("consumer", error))

        async def publish():
            try:
                for n in range(EVENTS):
                    published.append((await writer.publish(event(n))).id)
            except Exception as error:
                errors.append(("publisher", error))

        readers = [asyncio.create_task(subscribe()), asyncio.create_task(consume())]
        publisher = asyncio.create_task(publish())
        try:
            await asyncio.to_thread(restart_while_publishing, server, attempts, published,
                                    errors, publisher.done)
            await asyncio.wait_for(publisher, 60)
            async with asyncio.timeout(60):
                while not ((len(subscribed) >= len(published) and acked >= set(published))
                           or errors):
                    await asyncio.sleep(0.01)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    assert_nothing_lost(published, subscribed, acked, errors)
