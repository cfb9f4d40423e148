"""The server gives the C heap a burst left free back to the system.

The tail cache first holds 1 KiB records (C heap), then 100-byte ones
(Python's small-object allocator) that evict them: the 1 KiB records' memory
is free but not reused, which glibc keeps resident until ``malloc_trim``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eventstream.server.heap_trim import HeapTrimmer
from eventstream.v1 import publish_pb2

from tests.support.client import Stubs, event
from tests.support.server import ServerProcess, metric, wait_for_metric

MIB = 1024 * 1024
TAIL_CACHE = 24 * MIB
BATCH = 1000
TRIMMED = "eventstream_memory_trimmed_bytes_total"

pytestmark = pytest.mark.skipif(not HeapTrimmer().available,
                                reason="needs glibc (mallinfo2, malloc_trim)")


async def publish(stubs: Stubs, payload: bytes, total_bytes: int) -> int:
    """Publish ``total_bytes`` of ``payload`` events in batches; events acknowledged."""
    acknowledged = 0
    request = publish_pb2.PublishBatchRequest(events=[event("mem.burst", payload)] * BATCH)
    for _ in range(total_bytes // (len(payload) * BATCH)):
        response = await stubs.publish.PublishBatch(request)
        acknowledged += sum(result.WhichOneof("outcome") == "ack" for result in response.results)
    return acknowledged


async def test_heap_freed_by_tail_cache_eviction_is_given_back(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server({"storage": {"tail_cache_bytes": TAIL_CACHE, "fsync": "never"}})
    stubs = Stubs(server.target)
    try:
        large = await publish(stubs, b"x" * 1024, 2 * TAIL_CACHE)
        small = await publish(stubs, b"y" * 100, 2 * TAIL_CACHE)
    finally:
        await stubs.close()
    assert (large, small) == (2 * TAIL_CACHE // (1024 * BATCH) * BATCH,
                              2 * TAIL_CACHE // (100 * BATCH) * BATCH)
    # The 1 KiB records evicted by the small ones are ~24 MiB of free, resident heap.
    assert wait_for_metric(server, TRIMMED, 8 * MIB) >= 8 * MIB
    assert metric(server, "eventstream_events_committed_total", transport="grpc") == large + small
