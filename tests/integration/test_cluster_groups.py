"""Consumer-group members on followers of a 3-node cluster (real processes).

A follower pipes a member's Consume stream to the leader, where the group is
coordinated and its committed offsets are written to the log; after the
leader is SIGKILLed, a member joining through a follower of the new leader
resumes from those offsets: it gets every later event and none it acked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstream.client import Client, Event, RetryPolicy
from tests.support.cluster import Cluster, running_cluster
from tests.support.server import metric, wait_for_metric

RETRY = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, deadline=20.0)
GROUP = "billing"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, 3, {"storage": {"partitions": 4}}) as nodes:
        yield nodes


def consume(target: str, count: int, check=None) -> list[str]:
    """Ids of ``count`` events a member of the group gets (and acks) through ``target``."""
    got: list[str] = []
    with Client(target, retry=RETRY) as client, \
            client.consume(GROUP, "groups/#", start="earliest") as consumer:
        for event in consumer:
            got.append(event.id)
            event.ack()
            if check is not None and len(got) == 1:
                check()
            if len(got) == count:
                break
    return got


def publish(target: str, first: int, count: int) -> None:
    with Client(target, retry=RETRY) as client:
        for i in range(first, first + count):
            client.publish(Event(f"groups/{i % 4}", b"%d" % i, key=f"k{i}", id=f"g-{i}"))


def test_a_member_on_a_follower_keeps_the_groups_offsets_across_a_leader_change(
        cluster: Cluster):
    leader = cluster.wait_leader()
    first, second = (node for node in cluster.nodes if node != leader)
    publish(cluster.nodes[leader].target, 0, 30)

    def served_by_the_leader() -> None:
        assert wait_for_metric(cluster.nodes[leader], "eventstream_group_members", 1,
                               group=GROUP) == 1
        assert metric(cluster.nodes[first], "eventstream_group_members", group=GROUP) == 0

    assert sorted(consume(cluster.nodes[first].target, 30, served_by_the_leader)) == \
        sorted(f"g-{i}" for i in range(30))
    # The committed offsets reach the log: every node knows the group finished the 30.
    for node in cluster.nodes:
        assert wait_for_metric(cluster.nodes[node], "eventstream_group_committed", 30,
                               group=GROUP) == 30

    cluster.nodes[leader].kill()
    next_leader = cluster.wait_leader(among=[first, second])
    follower = second if next_leader == first else first
    publish(cluster.nodes[follower].target, 30, 20)
    # Through the remaining follower: from the committed offsets, nothing acked again.
    assert sorted(consume(cluster.nodes[follower].target, 20)) == \
        sorted(f"g-{i}" for i in range(30, 50))
