"""The Python SDK follows the leader hint of a 3-node cluster (real processes).

A follower forwards a publish and names the leader in the answer's trailers;
a client with ``prefer_leader`` then publishes to the leader directly (the
follower forwards no more), one without keeps its target. When that leader
is SIGKILLed, publishes fall back to the original target and follow the
next leader, and nothing acknowledged is lost or stored twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstream.client import AsyncClient, Client, Event, RetryPolicy
from eventstream.v1 import subscribe_pb2
from tests.support.client import Stubs, collect, subscribe_request
from tests.support.cluster import Cluster, running_cluster
from tests.support.server import metric

RETRY = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, deadline=20.0)
FORWARDED = "eventstream_cluster_forwarded_total"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, 3, {"storage": {"partitions": 4}}) as nodes:
        yield nodes


async def read_ids(target: str, count: int) -> list[str]:
    """The ids of the first ``count`` events of a node, in (partition, offset) order."""
    stubs = Stubs(target)
    try:
        call = stubs.subscribe.Subscribe(subscribe_request(
            "#", start_from=subscribe_pb2.START_FROM_EARLIEST))
        async with asyncio.timeout(30):
            events = await collect(call, count)
        call.cancel()
    finally:
        await stubs.close()
    return [event.id for event in sorted(events, key=lambda e: (e.partition, e.offset))]


async def test_a_client_preferring_the_leader_publishes_there_after_one_forwarded_publish(
        cluster: Cluster):
    leader = cluster.wait_leader()
    first, second = (node for node in cluster.nodes if node != leader)
    with Client(cluster.nodes[first].target, retry=RETRY, prefer_leader=True) as client:
        client.publish(Event("hint/a", b"0", id="pref-0"))
        assert client.publish_target == cluster.nodes[leader].target
        for i in range(1, 20):
            client.publish(Event("hint/a", b"%d" % i, id=f"pref-{i}"))
        client.publish_batch([Event("hint/b", b"b", id=f"pref-batch-{i}") for i in range(5)])
        with client.publish_stream() as stream:
            pending = [stream.send(Event("hint/c", b"s", id=f"pref-stream-{i}"))
                       for i in range(5)]
        assert all(future.result().offset >= 0 for future in pending)
    assert metric(cluster.nodes[first], FORWARDED) == 1  # only the first went through it
    # Without prefer_leader the client stays on its target, which forwards each publish.
    with Client(cluster.nodes[first].target, retry=RETRY) as client:
        for i in range(5):
            client.publish(Event("hint/d", b"%d" % i, id=f"stay-{i}"))
        assert client.publish_target == cluster.nodes[first].target
    assert metric(cluster.nodes[first], FORWARDED) == 6
    # The asyncio client the same way.
    async with AsyncClient(cluster.nodes[second].target, retry=RETRY,
                           prefer_leader=True) as aclient:
        await aclient.publish(Event("hint/e", b"0", id="async-0"))
        await aclient.publish_batch([Event("hint/e", b"1", id="async-1")])
        assert aclient.publish_target == cluster.nodes[leader].target
    assert metric(cluster.nodes[second], FORWARDED) == 1
    ids = await read_ids(cluster.nodes[leader].target, 37)
    assert len(ids) == len(set(ids)) == 37


async def test_when_the_leader_dies_publishes_fall_back_and_follow_the_next(cluster: Cluster):
    leader = cluster.wait_leader()
    target = next(node for node in cluster.nodes if node != leader)
    acked: list[str] = []
    with Client(cluster.nodes[target].target, retry=RETRY, prefer_leader=True) as client:
        for i in range(10):
            acked.append(client.publish(Event("fall/a", b"%d" % i, id=f"fall-{i}")).id)
        assert client.publish_target == cluster.nodes[leader].target
        cluster.nodes[leader].kill()
        for i in range(10, 40):
            acked.append(client.publish(Event("fall/a", b"%d" % i, id=f"fall-{i}")).id)
        survivors = [node for node in cluster.nodes if node != leader]
        next_leader = cluster.wait_leader(among=survivors)
        for i in range(40, 50):
            acked.append(client.publish(Event("fall/a", b"%d" % i, id=f"fall-{i}")).id)
        # The target itself when it leads now (no hint then), else the next leader.
        assert client.publish_target == cluster.nodes[next_leader].target
    for node in survivors:
        ids = await read_ids(cluster.nodes[node].target, 50)
        assert sorted(ids) == sorted(acked) and len(set(ids)) == 50
