"""A rolling update of three voters and one learner under SDK publish and subscribe load.

The cluster a StatefulSet of ``replicas: 4`` with ``cluster.voters: 3`` runs:
three voters and a read replica (a learner, added here through
``ClusterService.AddMember`` as a node started with ``cluster.join``). The
update goes as the StatefulSet controller does it (``tests/support/rolling.py``):
highest ordinal first, so the learner, then each voter; SIGTERM, restart on
the same data dir, wait until ready, then the next. Meanwhile the SDK with its
default retry policy publishes events with ids, and two SDK subscribers read
them, each through a "service" target naming every node (one connection,
moved to another node when it breaks); one starts on the learner, one on a
voter. No publish fails, every acknowledged event is stored once at the same
position on every node, the learner included, and each subscriber sees every
event exactly once. The time without a leader is printed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, running_cluster
from tests.support.cluster_reads import assert_stored_once_everywhere
from tests.support.rolling import SdkPublisher, SdkSubscriber, roll_under_load, service_target

pytestmark = pytest.mark.timeout(300)

MAX_EVENTS = 20_000
"""The load's bound; it is stopped long before on any machine that rolls at all."""
LEARNER = "n4"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, 3, {"storage": {"partitions": 4}}) as nodes:
        yield nodes


def roles(cluster: Cluster, node: str) -> dict[str, str]:
    """Member -> role, as ``node``'s /status shows them."""
    return {member["node_id"]: member["role"] for member in cluster.status(node)["cluster"]["members"]}


async def test_a_rolling_update_of_voters_and_a_learner_loses_and_repeats_nothing(cluster: Cluster):
    cluster.add_learner(LEARNER)
    assert roles(cluster, cluster.wait_leader())[LEARNER] == "learner"
    subscribers = [SdkSubscriber(service_target(cluster, first=node), "load/#", MAX_EVENTS).start()
                   for node in (LEARNER, "n1")]
    publisher = SdkPublisher(service_target(cluster, first=LEARNER), "roll", MAX_EVENTS).start()
    try:
        figures = roll_under_load(cluster, publisher)
        acked = {event_id for _, event_id, *_ in publisher.acks}
        for subscriber in subscribers:
            subscriber.wait_ids(acked)
    finally:
        for subscriber in subscribers:
            subscriber.stop()
    print(f"\n{figures.line()}")
    assert publisher.errors == []
    assert [restarted for restarted, _ in figures.restarts] == [LEARNER, "n3", "n2", "n1"]
    assert len(figures.leaders) >= 2, figures.leaders
    assert len(acked) == len(publisher.acks), "an event acknowledged twice"
    for subscriber in subscribers:
        assert subscriber.errors == []
        delivered = Counter(event_id for event_id, *_ in subscriber.events)
        assert delivered == Counter(acked), "every acknowledged event once, nothing else"
    await assert_stored_once_everywhere(cluster, publisher.acks)
    assert roles(cluster, cluster.wait_leader())[LEARNER] == "learner", "it never votes"
