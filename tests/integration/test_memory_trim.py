"""The server gives the C heap a burst left free back to the system.

A burst of large requests in flight at once (here 128 PublishBatch calls of
100 KB) leaves their buffers free in the middle of the C heap once they are
handled; what is allocated after them (the tail cache's chunks of the small
events that follow) keeps the heap's top in use, so glibc cannot give that
memory back by itself and it stays resident until ``malloc_trim``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from eventstream.server.heap_trim import HeapTrimmer
from eventstream.v1 import publish_pb2

from tests.support.client import Stubs, event
from tests.support.server import ServerProcess, metric, wait_for_metric

MIB = 1024 * 1024
BATCH = 100
TRIMMED = "eventstream_memory_trimmed_bytes_total"

pytestmark = pytest.mark.skipif(not HeapTrimmer().available,
                                reason="needs glibc (mallinfo2, malloc_trim)")


async def publish(stubs: Stubs, payload: bytes, total_bytes: int, in_flight: int) -> int:
    """Publish ``total_bytes`` of ``payload`` events in batches, ``in_flight`` calls
    at a time; returns the events acknowledged."""
    request = publish_pb2.PublishBatchRequest(events=[event("mem.burst", payload)] * BATCH)
    slots = asyncio.Semaphore(in_flight)

    async def one() -> int:
        async with slots:
            response = await stubs.publish.PublishBatch(request)
        return sum(result.WhichOneof("outcome") == "ack" for result in response.results)

    calls = total_bytes // (len(payload) * BATCH)
    return sum(await asyncio.gather(*(one() for _ in range(calls))))


async def test_heap_freed_after_a_burst_of_large_requests_is_given_back(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server({"storage": {"tail_cache_bytes": 24 * MIB, "fsync": "never"}})
    stubs = Stubs(server.target)
    try:
        large = await publish(stubs, b"x" * 1024, 96 * MIB, in_flight=128)
        small = await publish(stubs, b"y" * 100, 48 * MIB, in_flight=4)
    finally:
        await stubs.close()
    assert (large, small) == (96 * MIB // (1024 * BATCH) * BATCH, 48 * MIB // (100 * BATCH) * BATCH)
    # Measured here: 18 MiB of free heap after a burst of 64 calls, 13 MiB given back.
    assert wait_for_metric(server, TRIMMED, 4 * MIB) >= 4 * MIB
    assert metric(server, "eventstream_events_committed_total", transport="grpc") == large + small
