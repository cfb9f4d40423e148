"""A follower that lacks entries its leader no longer keeps catches up through a snapshot.

Three real server processes with tiny segments and a retention that drops
them quickly: a follower stopped while the leader's retention dropped the
entries it needs next, and a follower whose data dir was wiped, each come
back through a snapshot (counted by ``eventstream_cluster_snapshots_total``)
and then serve every event the leader retains, and hold the committed offsets
of a consumer group that the leader's log holds.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from eventstream.client import NO_RETRY, Client
from eventstream.v1 import publish_pb2, subscribe_pb2
from tests.integration.test_groups import GroupMember
from tests.integration.test_groups import wait_for_metric as wait_for_group_metric
from tests.support.client import Stubs, event
from tests.support.cluster import Cluster
from tests.support.cluster_reads import read_stored, wait_caught_up
from tests.support.server import metric, wait_for_metric

CONFIG = {"storage": {"partitions": 2, "segment_bytes": 4096, "retention_bytes": 16384}}
"""Every round of 200 events fills a segment; a partition keeps about 16 KiB."""
ROUNDS = 200
"""Most rounds published while waiting for the leader's retention (each one segment)."""


async def publish_until_dropped(cluster: Cluster, leader: str, past: int) -> int:
    """Publish rounds to the leader until its log's first entry is after ``past + 1``; that index."""
    stubs = Stubs(cluster.nodes[leader].target)
    try:
        for number in range(ROUNDS):
            await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=[
                event(f"audit/{i % 3}", b"x" * 40, key=f"k{i % 7}", id=f"r{number}-{i}")
                for i in range(200)]))
            first: int = cluster.status(leader)["log"]["first_index"]
            if first > past + 1:
                return first
    finally:
        await stubs.close()
    raise AssertionError(f"the leader's retention kept entry {past + 1} after {ROUNDS} rounds")


async def group_with_offsets(cluster: Cluster, leader: str) -> None:
    """A consumer group on the leader that acknowledged some events (its offsets are in the log)."""
    stubs = Stubs(cluster.nodes[leader].target)
    try:
        await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=[
            event("audit/g", b"%d" % i, key=f"k{i % 5}") for i in range(100)]))
        member = GroupMember(stubs, "auditors", patterns=["audit/#"],
                             start_from=subscribe_pb2.START_FROM_EARLIEST, max_in_flight=10)
        while len(member.acked) < 40:
            member.ack(await member.events(1))
        await wait_for_group_metric(cluster.nodes[leader], "eventstream_group_acks_total",
                                    len(member.acked), group="auditors")
        member.kill()
    finally:
        await stubs.close()


def check_same_group_offsets(cluster: Cluster, leader: str, nodes: list[str],
                             timeout: float = 30.0) -> None:
    """Each of ``nodes`` holds the committed offsets of the group that the leader's log holds.

    A member joining through a follower is served by the leader, so only
    ``eventstream_group_committed`` (the group's committed offsets as the
    node's applied log holds them, summed over the partitions) shows what a
    follower would resume the group from once it leads.
    """
    deadline = time.monotonic() + timeout
    while True:
        held = {node: metric(cluster.nodes[node], "eventstream_group_committed", group="auditors")
                for node in [leader, *nodes]}
        assert held[leader] > 0, "the leader's log holds no committed offset of the group"
        if len(set(held.values())) == 1:
            return
        assert time.monotonic() < deadline, f"committed offsets differ from the leader's: {held}"
        time.sleep(0.1)


async def check_same_retained_events(cluster: Cluster, leader: str, node: str) -> None:
    """Every event the leader retains is readable, at the same place, on ``node``."""
    on_leader = await read_stored(cluster, leader)
    on_node = await read_stored(cluster, node)
    assert on_leader, "the leader retains no event"
    missing = set(on_leader) - set(on_node)
    assert not missing, f"{len(missing)} retained events of the leader missing on {node}"
    starts = zip(cluster.status(node)["log"]["start_offsets"],
                 cluster.status(leader)["log"]["start_offsets"])
    assert all(mine <= leaders for mine, leaders in starts)


@pytest.mark.parametrize("broken", [False, True], ids=["with-entries", "without-entries"])
async def test_a_follower_behind_the_leaders_retention_catches_up_through_a_snapshot(
        tmp_path: Path, broken: bool):
    # The broken build sends the snapshot alone: the follower then lacks retained events.
    env = {"EVENTSTREAM_TEST_SNAPSHOT_WITHOUT_ENTRIES": "1"} if broken else {}
    cluster = Cluster(tmp_path, 3, CONFIG, env=env).start()
    try:
        leader = cluster.wait_leader()
        behind, other = [node for node in cluster.nodes if node != leader]
        await group_with_offsets(cluster, leader)
        wait_caught_up(cluster, list(cluster.nodes))
        last = cluster.status(behind)["log"]["last_index"]
        cluster.nodes[behind].stop()
        await publish_until_dropped(cluster, leader, last)
        assert metric(cluster.nodes[leader], "eventstream_cluster_snapshots_total", direction="sent") == 0

        cluster.nodes[behind].start()
        wait_caught_up(cluster, list(cluster.nodes))
        wait_for_metric(cluster.nodes[behind], "eventstream_cluster_snapshots_total", 1,
                        direction="received")
        assert metric(cluster.nodes[leader], "eventstream_cluster_snapshots_total", direction="sent") >= 1
        assert cluster.status(behind)["log"]["first_index"] > last + 1  # it started over
        if broken:
            with pytest.raises(AssertionError, match="retained events of the leader missing"):
                await check_same_retained_events(cluster, leader, behind)
            return
        for node in (behind, other):
            await check_same_retained_events(cluster, leader, node)
        check_same_group_offsets(cluster, leader, [behind, other])
    finally:
        cluster.stop()


async def test_a_follower_with_a_wiped_data_dir_catches_up_through_a_snapshot(tmp_path: Path):
    cluster = Cluster(tmp_path, 3, CONFIG).start()
    try:
        leader = cluster.wait_leader()
        wiped, other = [node for node in cluster.nodes if node != leader]
        await group_with_offsets(cluster, leader)
        await publish_until_dropped(cluster, leader, 0)
        cluster.nodes[wiped].kill()
        shutil.rmtree(cluster.nodes[wiped].workdir / "data")

        cluster.nodes[wiped].start(wait=False)
        cluster.nodes[wiped].wait_healthy(60.0, path="/health/live")
        cluster.wait_voting([wiped])  # the vote gate opened: it holds the commit index
        wait_caught_up(cluster, list(cluster.nodes))
        assert metric(cluster.nodes[wiped], "eventstream_cluster_snapshots_total",
                      direction="received") >= 1
        await check_same_retained_events(cluster, leader, wiped)
        check_same_group_offsets(cluster, leader, [wiped, other])
    finally:
        cluster.stop()


async def test_a_member_added_after_the_leaders_retention_catches_up_through_a_snapshot(
        tmp_path: Path):
    cluster = Cluster(tmp_path, 3, CONFIG).start()
    try:
        leader = cluster.wait_leader()
        await publish_until_dropped(cluster, leader, 0)
        joiner = cluster.joiner("n4").start(wait=False)
        joiner.wait_healthy(60.0, path="/health/live")
        with Client(cluster.nodes[leader].target, retry=NO_RETRY) as admin:
            admin.add_member("n4", cluster.cluster_address("n4"))
        joiner.wait_healthy(60.0)
        wait_caught_up(cluster, list(cluster.nodes))
        assert metric(joiner, "eventstream_cluster_snapshots_total", direction="received") >= 1
        await check_same_retained_events(cluster, leader, "n4")
    finally:
        cluster.stop()
