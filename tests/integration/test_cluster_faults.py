"""Faults between three real server processes: partitions, slow links, a frozen follower.

Every node reaches every other through its own toxiproxy link (a
:class:`~tests.support.toxiproxy.Mesh`), so a fault can cut any direction of
any pair while clients still reach every node. A node cut off from the
majority never commits: publishes there are refused (UNAVAILABLE with
NOT_LEADER) or time out, and none is acknowledged or ever stored; a leader
cut off steps down; healing converges every node on one log; slow links
still commit; a follower stopped with SIGSTOP catches up after SIGCONT.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from eventstream.client import Client, Event
from tests.integration.test_cluster_replication import RETRY
from tests.support.client import Stubs, error_info, publish_request
from tests.support.cluster import Cluster
from tests.support.cluster_reads import read_stored, wait_caught_up
from tests.support.mesh_cluster import mesh_cluster, wait_role
from tests.support.toxiproxy import Mesh

MINORITY_PUBLISHES = 8
"""Publishes tried on the cut-off side: while it still leads, then after it stepped down."""


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[tuple[Cluster, Mesh]]:
    with mesh_cluster(tmp_path) as started:
        yield started


def publish_all(target: str, prefix: str, count: int) -> set[tuple[int, int, str]]:
    """``count`` publishes of a retrying SDK client; (partition, offset, id) of each ack."""
    with Client(target, retry=RETRY, timeout=30.0) as client:
        acks = [client.publish(Event(f"faults/{i % 3}", b"%d" % i, key=f"k{i % 5}",
                                     id=f"{prefix}-{i}")) for i in range(count)]
    return {(ack.partition, ack.offset, ack.id) for ack in acks}


async def assert_converged(cluster: Cluster, acked: set[tuple[int, int, str]]) -> None:
    """Every node applied as far as the leader committed, and reads the same events: ``acked``."""
    cluster.wait_leader()
    wait_caught_up(cluster, list(cluster.nodes))
    applied = {node: cluster.status(node)["cluster"]["applied_index"] for node in cluster.nodes}
    assert len(set(applied.values())) == 1, applied
    views = {node: await read_stored(cluster, node) for node in cluster.nodes}
    for node, view in views.items():
        assert view == sorted(acked), f"{node} differs"


async def publish_on_the_cut_off_side(target: str) -> tuple[list[str], list[grpc.StatusCode]]:
    """Try publishes (1 s deadline each, no retry); the ids acknowledged and the failures' codes.

    UNAVAILABLE must come as NOT_LEADER.
    """
    acked, codes = [], []
    stubs = Stubs(target)
    try:
        for i in range(MINORITY_PUBLISHES):
            try:
                await stubs.publish.Publish(publish_request("faults/minority", id=f"minority-{i}"),
                                            timeout=1.0)
                acked.append(f"minority-{i}")
            except grpc.aio.AioRpcError as error:
                codes.append(error.code())
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    assert error_info(error)[0] == "NOT_LEADER"
    finally:
        await stubs.close()
    return acked, codes


async def test_a_cut_off_leader_steps_down_its_side_never_commits_and_healing_converges(
        faulty: tuple[Cluster, Mesh]):
    cluster, mesh = faulty
    old = cluster.wait_leader()
    majority = [node for node in cluster.nodes if node != old]
    acked = publish_all(cluster.nodes[old].target, "before", 20)
    wait_caught_up(cluster, list(cluster.nodes))
    commit_before = cluster.status(old)["cluster"]["commit_index"]

    mesh.isolate(old)
    # The first tries reach a node that still believes it leads: no majority
    # answers, so they time out; once it stepped down, it refuses at once.
    acked_there, refusals = await publish_on_the_cut_off_side(cluster.nodes[old].target)
    assert acked_there == []
    assert set(refusals) <= {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE}
    view = wait_role(cluster, old, "leader")
    assert view["role"] in ("follower", "candidate"), view
    stubs = Stubs(cluster.nodes[old].target)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stubs.publish.Publish(publish_request("faults/minority", id="minority-last"),
                                        timeout=5.0)
    finally:
        await stubs.close()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(refused.value)[0] == "NOT_LEADER"

    # The majority elects a leader of its own and commits without the cut-off node.
    cluster.wait_leader(among=majority)
    acked |= publish_all(cluster.nodes[majority[0]].target, "majority", 30)
    side = cluster.status(old)["cluster"]
    assert side["commit_index"] == commit_before, side  # nothing committed on the minority side
    assert side["role"] != "leader"

    mesh.heal()
    await assert_converged(cluster, acked)
    assert cluster.status(old)["cluster"]["leader"] == cluster.wait_leader()
    # No publish of the minority side was ever stored, on any node.
    for node in cluster.nodes:
        stored = {event_id for *_, event_id in await read_stored(cluster, node)}
        assert not {event_id for event_id in stored if event_id.startswith("minority")}, node


async def test_the_minority_check_catches_a_build_acknowledging_before_replication(
        tmp_path: Path):
    """The check above on the test-only broken build: the cut-off leader acknowledges alone."""
    with mesh_cluster(tmp_path, {"EVENTSTREAM_TEST_ACK_ON_APPEND": "1"}) as (cluster, mesh):
        leader = cluster.wait_leader()
        publish_all(cluster.nodes[leader].target, "before", 5)
        mesh.isolate(leader)
        acked_there, _ = await publish_on_the_cut_off_side(cluster.nodes[leader].target)
    assert acked_there, "the broken build acknowledged nothing on the cut-off side"


async def test_a_minority_follower_cannot_publish_and_the_majority_side_commits(faulty: tuple[Cluster, Mesh]):
    cluster, mesh = faulty
    leader = cluster.wait_leader()
    lone = next(node for node in cluster.nodes if node != leader)
    acked = publish_all(cluster.nodes[leader].target, "before", 10)
    wait_caught_up(cluster, list(cluster.nodes))

    mesh.isolate(lone)
    # The cut-off follower cannot forward to the leader: each publish times
    # out or, once it knows no leader, is refused at once.
    stubs = Stubs(cluster.nodes[lone].target)
    try:
        for i in range(MINORITY_PUBLISHES):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stubs.publish.Publish(publish_request("faults/minority", id=f"lone-{i}"),
                                            timeout=2.0)
            assert failed.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                           grpc.StatusCode.DEADLINE_EXCEEDED), failed.value
    finally:
        await stubs.close()
    assert cluster.wait_leader(among=[n for n in cluster.nodes if n != lone]) == leader
    acked |= publish_all(cluster.nodes[leader].target, "during", 30)

    mesh.heal()
    await assert_converged(cluster, acked)


async def test_slow_links_still_commit_and_converge(faulty: tuple[Cluster, Mesh]):
    cluster, mesh = faulty
    leader = cluster.wait_leader()
    # 40 ms each way on every link: far below the election timeout (0.5 to 1 s).
    for link in mesh.links.values():
        link.add_latency(40, 10, stream="upstream")
        link.add_latency(40, 10, stream="downstream")
    follower = next(node for node in cluster.nodes if node != leader)
    acked = publish_all(cluster.nodes[leader].target, "slow", 30)
    acked |= publish_all(cluster.nodes[follower].target, "slow-forwarded", 15)
    await assert_converged(cluster, acked)
    assert cluster.wait_leader() == leader  # slow, not lost: no election
    mesh.heal()


async def test_a_stopped_follower_catches_up_after_continue(faulty: tuple[Cluster, Mesh]):
    cluster, _ = faulty
    leader = cluster.wait_leader()
    frozen = next(node for node in cluster.nodes if node != leader)
    acked = publish_all(cluster.nodes[leader].target, "before", 20)
    wait_caught_up(cluster, list(cluster.nodes))
    applied_before = cluster.status(leader)["cluster"]["applied_index"]

    cluster.nodes[frozen].signal(signal.SIGSTOP)
    try:
        acked |= publish_all(cluster.nodes[leader].target, "frozen", 100)
        assert cluster.status(leader)["cluster"]["commit_index"] > applied_before
    finally:
        cluster.nodes[frozen].signal(signal.SIGCONT)
    acked |= publish_all(cluster.nodes[leader].target, "after", 20)
    await assert_converged(cluster, acked)
