"""A replicated cluster of three real server processes on 127.0.0.1.

Elections, replication to every node's readers in one order, publishes to
followers forwarded to the leader, refusals without a leader, and the leader
SIGKILLed under a retrying SDK client's publishes: every acknowledged event
present exactly once, in the same order, on every node (the killed one too,
after its restart).
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from eventstream.client import Client, Event, EventStreamError, RetryPolicy
from eventstream.v1 import cluster_pb2, publish_pb2, subscribe_pb2
from tests.support.client import Stubs, error_info, publish_request
from tests.support.client import event as client_event
from tests.support.cluster import Cluster, running_cluster
from tests.support.cluster_reads import read_stored, wait_caught_up
from tests.support.rolling import SdkPublisher
from tests.support.server import ServerProcess, http_get, metric

EARLIEST = subscribe_pb2.START_FROM_EARLIEST
# The retry budget rides out an election (0.5 to 1 s) with room to spare.
RETRY = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, deadline=20.0)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, 3, {"storage": {"partitions": 4}}) as nodes:
        yield nodes


def lag_series(server: ServerProcess) -> dict[str, float]:
    """peer -> ``eventstream_cluster_replication_lag`` as the node exports it."""
    body = http_get(f"{server.http}/metrics", timeout=10.0)[1].decode()
    return {peer: float(value) for peer, value in re.findall(
        r'^eventstream_cluster_replication_lag\{[^}]*peer="([^"]+)"[^}]*\} (\S+)$', body, re.M)}


async def test_three_nodes_replicate_in_one_order_and_followers_forward(cluster: Cluster):
    leader = cluster.wait_leader()
    followers = [node for node in cluster.nodes if node != leader]
    with Client(cluster.nodes[leader].target, retry=RETRY) as client:
        direct = [client.publish(Event(f"orders/{i % 5}", b"p%d" % i, key=f"k{i % 7}",
                                       id=f"lead-{i}")) for i in range(40)]
    # A follower forwards gRPC publishes to the leader and answers with its acks.
    with Client(cluster.nodes[followers[0]].target, retry=RETRY) as client:
        forwarded = [client.publish(Event(f"orders/{i % 5}", b"f%d" % i, key=f"k{i % 7}",
                                          id=f"follow-{i}")) for i in range(20)]
        batch = client.publish_batch([Event("orders/batch", b"b%d" % i, id=f"batch-{i}")
                                      for i in range(10)])
        again = client.publish(Event("orders/1", b"f0", key="k0", id="follow-0"))
    # PublishStream too: each request forwarded, answered in order.
    stubs = Stubs(cluster.nodes[followers[1]].target)
    try:
        async def stream_requests():
            for sequence in range(5):
                yield publish_pb2.PublishStreamRequest(sequence=sequence, events=[
                    client_event("orders/stream", b"s", id=f"stream-{sequence}-{i}")
                    for i in range(4)])
        responses = [response async for response in
                     stubs.publish.PublishStream(stream_requests(), timeout=30)]
    finally:
        await stubs.close()
    assert [response.sequence for response in responses] == list(range(5))
    streamed = {(r.ack.partition, r.ack.offset, r.ack.id)
                for response in responses for r in response.results}
    assert len(streamed) == 20 and all(id_.startswith("stream-") for *_, id_ in streamed)
    assert all(result.ok for result in batch)
    assert again.duplicate and (again.partition, again.offset) == \
        (forwarded[0].partition, forwarded[0].offset)
    acked = {(ack.partition, ack.offset, ack.id) for ack in direct + forwarded}
    acked |= {(r.ack.partition, r.ack.offset, r.ack.id) for r in batch if r.ack is not None}
    assert len(acked) == 70
    acked |= streamed

    # Every node's readers see the same committed events, in the same order.
    wait_caught_up(cluster, list(cluster.nodes))
    views = [await read_stored(cluster, node) for node in cluster.nodes]
    assert views[0] == views[1] == views[2]
    assert set(views[0]) == acked

    # Every node reports the same leader; the leader knows each member's match index.
    for node, server in cluster.nodes.items():
        stubs = Stubs(server.target)
        status = await stubs.cluster.GetClusterStatus(cluster_pb2.GetClusterStatusRequest())
        await stubs.close()
        assert status.leader_id == leader
        assert status.role == (cluster_pb2.ROLE_LEADER if node == leader
                               else cluster_pb2.ROLE_FOLLOWER)
        assert sorted(member.node_id for member in status.members) == sorted(cluster.nodes)
        if node == leader:
            assert all(member.match_index >= status.commit_index - 1
                       for member in status.members), status

    # The same through /status and the metrics.
    for node, server in cluster.nodes.items():
        document = cluster.status(node)
        assert document["role"] == ("leader" if node == leader else "follower")
        view = document["cluster"]
        assert view["replication"] == "raft" and view["leader"] == leader
        assert {member["node_id"]: member["role"] for member in view["members"]} == \
            {n: "leader" if n == leader else "follower" for n in cluster.nodes}
        assert metric(server, "eventstream_cluster_is_leader") == (1 if node == leader else 0)
        assert metric(server, "eventstream_cluster_term") == view["term"] >= 1
        assert metric(server, "eventstream_cluster_applied_index") >= view["commit_index"] - 1
        assert metric(server, "eventstream_cluster_peers_connected") == 2
    leading = cluster.nodes[leader]
    for member in cluster.status(leader)["cluster"]["members"]:
        assert member["lag"] is not None and member["match_index"] > 0
    deadline = time.monotonic() + 30
    while (lags := lag_series(leading)) != {follower: 0.0 for follower in followers}:
        assert time.monotonic() < deadline, lags
        time.sleep(0.05)
    assert lag_series(cluster.nodes[followers[0]]) == {}  # only the leader knows
    assert metric(leading, "eventstream_cluster_elections_total") == 1
    # 20 publishes, one batch and one repeat went through the first follower's link.
    assert metric(cluster.nodes[followers[0]], "eventstream_cluster_forwarded_total") == 22


async def test_without_a_leader_a_publish_is_refused_with_retry_info(cluster: Cluster):
    leader = cluster.wait_leader()
    follower = next(node for node in cluster.nodes if node != leader)
    stubs = Stubs(cluster.nodes[follower].target)
    try:
        await stubs.publish.Publish(publish_request("a/b", id="before"), timeout=10)
        for node in cluster.nodes:  # a lone node: no majority, so no leader ever
            if node != follower:
                cluster.nodes[node].kill()
        deadline = time.monotonic() + 30
        while cluster.status(follower)["cluster"]["leader"]:
            assert time.monotonic() < deadline, "the follower still names a leader"
            time.sleep(0.05)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stubs.publish.Publish(publish_request("a/b", id="after"), timeout=20)
        # Refused, not left to hang: a hang ends in DEADLINE_EXCEEDED, which fails here.
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(refused.value)[0] == "NOT_LEADER"
        trailers = dict(tuple(refused.value.trailing_metadata() or ()))
        assert int(trailers["retry-after-ms"]) > 0
    finally:
        await stubs.close()


@pytest.mark.parametrize("broken", [False, True], ids=["correct", "acks-before-replication"])
async def test_an_acknowledged_event_outlives_its_leader(tmp_path: Path, broken: bool):
    """The followers are killed, so only the leader can hold a new event; then it is killed too.

    A correct build never acknowledges that event (no majority has it). The
    build with the test-only bug acknowledges it and the survivors lack it:
    the check below must see that, or it could not catch a lost event.
    """
    env = {"EVENTSTREAM_TEST_ACK_ON_APPEND": "1"} if broken else {}
    cluster = Cluster(tmp_path, 3, {"storage": {"partitions": 2}}, env=env).start()
    try:
        leader = cluster.wait_leader()
        followers = [node for node in cluster.nodes if node != leader]
        acked = set()
        with Client(cluster.nodes[leader].target, retry=RetryPolicy(max_attempts=1)) as client:
            client.publish(Event("a/b", b"x", id="replicated"))
            acked.add("replicated")
            wait_caught_up(cluster, list(cluster.nodes))
            for node in followers:  # (a stopped process would still get the append later)
                cluster.nodes[node].kill()
            try:
                client.publish(Event("a/b", b"y", id="alone"), timeout=2.0)
                acked.add("alone")
            except EventStreamError as error:  # no majority: never acknowledged
                assert error.code in (grpc.StatusCode.DEADLINE_EXCEEDED,
                                      grpc.StatusCode.UNAVAILABLE), error
        cluster.nodes[leader].kill()
        for node in followers:
            cluster.nodes[node].start(wait=False)
        for node in followers:
            cluster.nodes[node].wait_healthy()
        cluster.wait_leader(among=followers)
        wait_caught_up(cluster, followers)
        for node in followers:
            stored = {event_id for *_, event_id in await read_stored(cluster, node)}
            lost = acked - stored
            if broken:
                assert lost == {"alone"}, (node, stored)
            else:
                assert lost == set(), (node, lost)
    finally:
        cluster.stop()


KILLS = int(os.environ.get("EVENTSTREAM_TEST_KILLS", "3"))
"""Leader kills in the failover test; the issue's figure is measured with 10."""
EVENTS_PER_ROUND = 150


async def test_leader_killed_a_retrying_client_loses_nothing(cluster: Cluster):
    acked: dict[str, tuple[int, int]] = {}
    failovers = []
    for round_ in range(KILLS):
        leader = cluster.wait_leader()
        survivor = next(node for node in cluster.nodes if node != leader)
        publisher = SdkPublisher(cluster.nodes[survivor].target, f"r{round_}",
                              EVENTS_PER_ROUND).start()
        publisher.wait_acks(EVENTS_PER_ROUND // 3)
        killed_at = time.monotonic()
        cluster.nodes[leader].kill()
        publisher.join(60)
        assert publisher.errors == []
        # The first event sent after the kill (one in flight may have been answered before it).
        first_after = min(ack[0] for ack, sent_at in zip(publisher.acks, publisher.sent)
                          if sent_at > killed_at)
        failovers.append(first_after - killed_at)
        new_leader = cluster.wait_leader()
        assert new_leader != leader
        cluster.nodes[leader].start(wait=False)
        cluster.nodes[leader].wait_healthy()
        for _, event_id, partition, offset in publisher.acks:
            assert acked.setdefault(event_id, (partition, offset)) == (partition, offset)
    print(f"\nfailover (leader SIGKILLed -> first ack of a retrying client), {KILLS} kills: "
          f"median {statistics.median(failovers):.3f} s, max {max(failovers):.3f} s, "
          f"all {[round(f, 3) for f in failovers]}")
    assert len(acked) == KILLS * EVENTS_PER_ROUND

    # Every acknowledged event once, in one order, on every node (the restarted ones too).
    cluster.wait_leader()
    wait_caught_up(cluster, list(cluster.nodes))
    views = {node: await read_stored(cluster, node) for node in cluster.nodes}
    expected = sorted((partition, offset, event_id)
                      for event_id, (partition, offset) in acked.items())
    for node, view in views.items():
        assert view == expected, f"{node} differs"
