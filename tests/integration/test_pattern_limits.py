"""Subscription patterns are bounded and cheap: one request cannot freeze the node."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from eventstream.v1 import publish_pb2, subscribe_pb2
from tests.support.client import Stubs, collect, error_info, event, subscribe_request

pytestmark = pytest.mark.timeout(180)
EARLIEST = subscribe_pb2.START_FROM_EARLIEST


async def test_patterns_longer_than_a_topic_are_refused_naming_the_field(server):
    stubs = Stubs(server.target)
    await stubs.publish.Publish(publish_pb2.PublishRequest(event=event("p/a", b"1")))
    # Long patterns beside '#': a server without a length bound takes them and delivers.
    long_ones = ["p/" + "x" * 300] * 63 + ["#"]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await collect(stubs.subscribe.Subscribe(subscribe_request(*long_ones, start_from=EARLIEST)), 1)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "patterns[0]: longer than 255 bytes (the longest topic)"
    # 64 valid patterns of 60 KB (3.84 MB): refused as quickly, and so is a group's.
    huge = ["q/" + "*/" * 30_000 + "#"] * 64
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await collect(stubs.subscribe.Subscribe(subscribe_request(*huge, start_from=EARLIEST)), 1)
    assert error_info(error.value) == ("PATTERN_INVALID", "patterns[0]")
    assert "longer than 255 bytes" in error.value.details()
    start = subscribe_pb2.ConsumeRequest(start=subscribe_pb2.ConsumeStart(group="g", patterns=huge))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in stubs.subscribe.Consume(iter([start])):
            pass
    assert error_info(error.value) == ("PATTERN_INVALID", "start.patterns[0]")
    # At the bound the patterns are taken (a 255-byte pattern of 128 levels).
    at_bound = ["*/" * 127 + "#", "p/" + "a" * 253, "p/*"]
    got = await collect(stubs.subscribe.Subscribe(subscribe_request(*at_bound, start_from=EARLIEST)), 1)
    assert [e.payload for e in got] == [b"1"]
    await stubs.close()


async def test_health_answers_during_a_flood_of_the_largest_legal_pattern_lists(server):
    """200 subscriptions, 20 at a time, each with 64 patterns of 255 bytes; a health
    checker runs beside them and must be answered, every time, while they run."""
    stubs = Stubs(server.target)
    topic = "flood/" + "x" * 249
    await stubs.publish.Publish(publish_pb2.PublishRequest(event=event(topic, b"f")))
    patterns = ["*/" * 127 + "#"] * 31 + ["flood/" + "*/" * 124 + "#"] * 32 + [topic]
    assert all(len(p.encode()) == 255 for p in patterns)
    health = health_pb2_grpc.HealthStub(stubs.channel)
    flooding = True
    answers_during_flood = 0

    async def check_health() -> None:
        nonlocal answers_during_flood
        for _ in range(100_000):           # bounded; ends with the flood
            if not flooding:
                return
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=60)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            answers_during_flood += flooding

    async def subscribe_once(gate: asyncio.Semaphore) -> bytes:
        async with gate:
            call = stubs.subscribe.Subscribe(subscribe_request(*patterns, start_from=EARLIEST))
            got = await collect(call, 1)
            call.cancel()
            return got[0].payload

    checker = asyncio.create_task(check_health())
    gate = asyncio.Semaphore(20)
    payloads = await asyncio.gather(*(subscribe_once(gate) for _ in range(200)))
    flooding = False
    await checker
    assert payloads == [b"f"] * 200
    assert answers_during_flood >= 1
    await stubs.close()
