"""Under ``fsync: always`` a round costs one fsync, however many partitions it touches.

A round is one EVENTS entry of the log, written to one stream of segment
files: the per-partition layout it replaced paid one fsync per partition
file (8 per round here).
"""

from __future__ import annotations

import asyncio
import json

from eventstream.v1 import publish_pb2
from tests.support.client import Stubs, event
from tests.support.server import http_get, metric

PARTITIONS = 8
REQUESTS = 40
EVENTS_PER_REQUEST = 32


def counts(server) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(rounds, fsyncs) so far."""
    return (metric(server, "eventstream_log_rounds_total"),
            metric(server, "eventstream_storage_fsyncs_total"))


async def keys_of_every_partition(stubs: Stubs) -> list[str]:
    """One key per partition, learnt from where keyed events went (a key keeps its partition)."""
    response = await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=[
        event("fsync/probe", b"x", key=f"k{i}") for i in range(256)]), timeout=30)
    chosen = {}
    for number, result in enumerate(response.results):
        chosen.setdefault(result.ack.partition, f"k{number}")
    assert sorted(chosen) == list(range(PARTITIONS))
    return [chosen[p] for p in range(PARTITIONS)]


async def test_one_fsync_per_round_with_eight_partitions(start_server):
    server = start_server({"storage": {"partitions": PARTITIONS, "fsync": "always"}})
    stubs = Stubs(server.target)
    keys = await keys_of_every_partition(stubs)
    rounds_before, fsyncs_before = counts(server)
    touched = []
    for number in range(REQUESTS):  # one request at a time: one round each
        response = await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=[
            event("fsync/t", b"x" * 100, id=f"r{number}-{i}", key=keys[i % PARTITIONS])
            for i in range(EVENTS_PER_REQUEST)]), timeout=30)
        touched.append({result.ack.partition for result in response.results})
    assert all(partitions == set(range(PARTITIONS)) for partitions in touched), touched
    rounds, fsyncs = counts(server)
    assert rounds - rounds_before == REQUESTS
    assert fsyncs - fsyncs_before == REQUESTS   # one per round, not one per partition

    # Concurrent publishers: rounds written together share their fsync, never more than one each.
    rounds_before, fsyncs_before = rounds, fsyncs

    async def publisher(name: str) -> None:
        for number in range(REQUESTS // 4):
            await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=[
                event("fsync/t", b"x" * 100, id=f"{name}{number}-{i}", key=keys[i % PARTITIONS])
                for i in range(EVENTS_PER_REQUEST)]), timeout=30)

    await asyncio.gather(*(publisher(f"p{n}-") for n in range(4)))
    rounds, fsyncs = counts(server)
    assert 0 < rounds - rounds_before <= REQUESTS
    assert 0 < fsyncs - fsyncs_before <= rounds - rounds_before
    # /status shows the log of entries: a term, and everything committed is applied
    # (each round one entry, after the leader's first).
    cluster = json.loads(http_get(f"{server.http}/status")[1])["cluster"]
    assert cluster["term"] >= 1
    assert cluster["commit_index"] == cluster["applied_index"] >= rounds + 1
    await stubs.close()
