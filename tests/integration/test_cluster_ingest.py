"""Raw TCP and UDP frames reaching a follower of a 3-node cluster (real processes).

They are forwarded to the leader over the cluster link and stored once, on
every node; an acknowledging TCP connection gets the leader's positions in
batch order; with no leader known, TCP gets a NOT_LEADER ERROR and UDP
datagrams are dropped and counted.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstream.client.frames import FrameError, TcpFrameSender, UdpFrameSender
from eventstream.v1 import subscribe_pb2
from tests.support.client import Stubs, collect, subscribe_request
from tests.support.cluster import Cluster, running_cluster
from tests.support.mesh_cluster import mesh_cluster
from tests.support.server import metric, wait_for_metric

EARLIEST = subscribe_pb2.START_FROM_EARLIEST


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, 3, {"storage": {"partitions": 4}}) as nodes:
        yield nodes


async def read_events(target: str, pattern: str, count: int) -> dict[tuple[int, int], bytes]:
    """(partition, offset) -> payload of the first ``count`` events of ``pattern`` on a node."""
    stubs = Stubs(target)
    try:
        call = stubs.subscribe.Subscribe(subscribe_request(pattern, start_from=EARLIEST))
        async with asyncio.timeout(30):
            events = await collect(call, count)
        call.cancel()
    finally:
        await stubs.close()
    return {(event.partition, event.offset): event.payload for event in events}


def stored(cluster: Cluster, node: str) -> int:
    """Events a node's log holds now."""
    log = cluster.status(node)["log"]
    return sum(log["end_offsets"]) - sum(log["start_offsets"])


def wait_stored(cluster: Cluster, count: int, timeout: float = 30.0) -> None:
    """Wait until every node's log holds ``count`` events."""
    deadline = time.monotonic() + timeout
    while True:
        counts = {node: stored(cluster, node) for node in cluster.nodes}
        if all(value == count for value in counts.values()):
            return
        assert time.monotonic() < deadline, f"not {count} events everywhere: {counts}"
        time.sleep(0.05)


async def test_tcp_frames_to_a_follower_are_stored_once_everywhere_and_acked_in_order(
        cluster: Cluster):
    leader = cluster.wait_leader()
    follower = next(node for node in cluster.nodes if node != leader)
    acks: list[tuple[int, int]] = []
    sent: list[bytes] = []
    # Small batches, so many are in flight on the follower's link at once.
    with TcpFrameSender("127.0.0.1", cluster.nodes[follower].tcp_port, acked=True,
                        batch_bytes=512) as sender:
        for i in range(600):
            payload = b"acked-%d" % i
            sender.send(f"tcp/{i % 6}", payload, priority=i % 5)
            sent.append(payload)
        acks.extend(sender.flush())
    assert len(acks) == 600
    # Fire-and-forget through the same follower: everything reaches the leader.
    with TcpFrameSender("127.0.0.1", cluster.nodes[follower].tcp_port) as sender:
        for i in range(400):
            sender.send(f"tcp/{i % 6}", b"plain-%d" % i)
    wait_stored(cluster, 1000)
    for node in cluster.nodes:
        events = await read_events(cluster.nodes[node].target, "tcp/#", 1000)
        assert len(events) == 1000
        # Each ACK names where its frame is, on every node.
        assert [events[position] for position in acks] == sent
        assert sorted(payload for payload in events.values() if payload.startswith(b"plain")) \
            == sorted(b"plain-%d" % i for i in range(400))
    assert len(set(acks)) == len(acks)
    assert metric(cluster.nodes[follower], "eventstream_ingest_forwarded_total",
                  transport="tcp") == 1000
    assert metric(cluster.nodes[leader], "eventstream_ingest_forwarded_total",
                  transport="tcp") == 0


async def test_udp_datagrams_to_a_follower_reach_every_node(cluster: Cluster):
    leader = cluster.wait_leader()
    follower = next(node for node in cluster.nodes if node != leader)
    with UdpFrameSender("127.0.0.1", cluster.nodes[follower].udp_port,
                        max_datagram=256) as sender:
        for i in range(300):
            sender.send(f"udp/{i % 3}", b"dgram-%d" % i)
        sender.flush()
        # A datagram with a bad frame is dropped whole on the follower, never forwarded.
        sender.send(b"udp/#", b"bad")
        sender.flush()
    wait_stored(cluster, 300)
    for node in cluster.nodes:
        events = await read_events(cluster.nodes[node].target, "udp/#", 300)
        assert sorted(events.values()) == sorted(b"dgram-%d" % i for i in range(300))
    assert metric(cluster.nodes[follower], "eventstream_ingest_forwarded_total",
                  transport="udp") == 300
    # The leader counts the forwarded datagrams' events under the transport they came in on.
    assert metric(cluster.nodes[leader], "eventstream_events_committed_total",
                  transport="udp") == 300
    assert metric(cluster.nodes[leader], "eventstream_events_committed_total",
                  transport="tcp") == 0
    assert metric(cluster.nodes[follower], "eventstream_ingest_datagrams_dropped_total",
                  reason="TOPIC_WILDCARD") == 1


def test_without_a_leader_tcp_is_refused_and_udp_dropped_and_counted(cluster: Cluster):
    leader = cluster.wait_leader()
    follower = next(node for node in cluster.nodes if node != leader)
    for node in cluster.nodes:  # a lone node: no majority, so no leader ever
        if node != follower:
            cluster.nodes[node].kill()
    deadline = time.monotonic() + 30
    while cluster.status(follower)["cluster"]["leader"]:
        assert time.monotonic() < deadline, "the follower still names a leader"
        time.sleep(0.05)
    server = cluster.nodes[follower]
    sender = TcpFrameSender("127.0.0.1", server.tcp_port, acked=True)
    with pytest.raises(FrameError) as refused:
        sender.send("tcp/a", b"lost")
        sender.flush()
    sender.close()
    assert refused.value.reason == "NOT_LEADER"
    assert "knows no leader" in refused.value.message
    with UdpFrameSender("127.0.0.1", server.udp_port) as udp:
        udp.send("udp/a", b"lost")
        udp.flush()
    assert wait_for_metric(server, "eventstream_ingest_datagrams_dropped_total", 1,
                           reason="NOT_LEADER") == 1
    assert metric(server, "eventstream_events_rejected_total", transport="udp",
                  reason="NOT_LEADER") == 1
    assert stored(cluster, follower) == 0


def test_a_slow_link_to_the_leader_pauses_the_followers_reader_and_loses_nothing(tmp_path: Path):
    with mesh_cluster(tmp_path) as (cluster, mesh):
        leader = cluster.wait_leader()
        follower = next(node for node in cluster.nodes if node != leader)
        server = cluster.nodes[follower]
        # The follower's requests to the leader crawl; the leader still hears the other one.
        toxic = mesh.links[(follower, leader)].add_bandwidth(32, stream="upstream")
        frames, payload = 3000, b"x" * 1000
        errors: list[BaseException] = []

        def blast() -> None:
            try:
                with TcpFrameSender("127.0.0.1", server.tcp_port, timeout=120.0) as sender:
                    for i in range(frames):
                        sender.send(f"slow/{i % 4}", payload)
            except BaseException as error:  # reported by the test below
                errors.append(error)

        sender = threading.Thread(target=blast, daemon=True)
        sender.start()
        # With its requests in flight at the bound, the follower stops reading this client.
        assert wait_for_metric(server, "eventstream_ingest_backpressure_total", 1,
                               transport="tcp") >= 1
        assert sender.is_alive()  # held back: 3 MB at 32 KB/s would take 90 s
        mesh.links[(follower, leader)].remove_toxic(toxic)
        sender.join(120)
        assert not sender.is_alive() and errors == []
        wait_stored(cluster, frames)
        assert metric(server, "eventstream_ingest_forwarded_total", transport="tcp") == frames
