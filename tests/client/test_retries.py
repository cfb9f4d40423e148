"""Retries: RESOURCE_EXHAUSTED and UNAVAILABLE are retried until they succeed or run
out; INVALID_ARGUMENT never is. Attempts are counted by client interceptors."""

from __future__ import annotations

import asyncio
import collections

import grpc
import pytest

from eventstream.client import (
    AsyncClient,
    Client,
    Event,
    InvalidArgumentError,
    RetryPolicy,
    UnavailableError,
)
from tests.support.server import free_port


class CountingInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Counts the attempts of each unary method on an aio channel."""

    def __init__(self) -> None:
        self.attempts: collections.Counter[str] = collections.Counter()

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        self.attempts[client_call_details.method.decode().rsplit("/", 1)[1]] += 1
        return await continuation(client_call_details, request)


class SyncCountingInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Counts the attempts of each unary method on a blocking channel."""

    def __init__(self) -> None:
        self.attempts: collections.Counter[str] = collections.Counter()

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self.attempts[client_call_details.method.rsplit("/", 1)[1]] += 1
        return continuation(client_call_details, request)


async def test_full_lanes_are_retried_until_every_batch_is_committed(start_server):
    # Lanes of 20 events and batches of 20: two batches in a lane at once do
    # not fit, so some of many concurrent batches get RESOURCE_EXHAUSTED and retry.
    server = start_server({"queues": {"realtime_capacity": 20, "batch_capacity": 20}})
    counter = CountingInterceptor()
    patient = RetryPolicy(max_attempts=1000, initial_backoff=0.01, max_backoff=0.2)
    async with AsyncClient(server.target, retry=patient, timeout=100,
                           interceptors=[counter]) as client:
        calls = 0
        acked: list[str] = []
        for _ in range(20):  # rounds until some batch had to be retried
            batches = [[Event("full/t", f"{n}-{i}", priority="high") for i in range(20)]
                       for n in range(32)]
            results = await asyncio.gather(*(client.publish_batch(b) for b in batches))
            calls += len(batches)
            acked += [result.unwrap().id for batch in results for result in batch]
            if counter.attempts["PublishBatch"] > calls:
                break
        assert counter.attempts["PublishBatch"] > calls, "no batch was ever refused"
        assert len(set(acked)) == len(acked) == calls * 20
        events = []
        async with client.subscribe("full/#", start="earliest") as subscription:
            async for event in subscription:
                events.append(event.id)
                if len(events) == len(acked):
                    break
        assert sorted(events) == sorted(acked), "a retried batch was stored twice or lost"


def test_invalid_argument_is_never_retried(server):
    counter = SyncCountingInterceptor()
    with Client(server.target, retry=RetryPolicy(max_attempts=10),
                interceptors=[counter]) as client:
        with pytest.raises(InvalidArgumentError) as error:
            client.publish(Event("bad/*", b"x"))
        assert client.publish(Event("good/t", b"x")).id
    assert (error.value.reason, error.value.field) == ("TOPIC_WILDCARD", "event.topic")
    assert counter.attempts["Publish"] == 2


def test_unavailable_is_retried_up_to_the_policy_then_raised():
    counter = SyncCountingInterceptor()
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens here
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.02)
    with Client(nowhere, retry=policy, timeout=60, interceptors=[counter]) as client:
        with pytest.raises(UnavailableError) as error:
            client.cluster_status()
    assert error.value.retryable
    assert counter.attempts["GetClusterStatus"] == 4


def test_a_retried_publish_of_a_committed_event_is_acknowledged_as_a_duplicate(server):
    # What a retry after a lost acknowledgement looks like: same id, same position.
    with Client(server.target) as client:
        event = Event("dedup/t", b"x", id="fixed-id")
        first, again = client.publish(event), client.publish(event)
    assert again.duplicate and (again.partition, again.offset) == (first.partition, first.offset)
