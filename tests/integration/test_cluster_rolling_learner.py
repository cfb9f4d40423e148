"""A rolling update of three voters and one learner under SDK publish and subscribe load.

Four real server processes play a StatefulSet of ``replicas: 4`` with
``cluster.voters: 3``: pods ``eventstream-0`` to ``-3`` on 127.0.0.1 to .4,
``cluster.discovery: dns`` through a DNS responder the test controls (the
headless Service's names). Ordinals 0 to 2 form the cluster; ordinal 3 joins
as a learner by itself (a read replica). The update goes as the StatefulSet
controller does it (``tests/support/rolling.py``): highest ordinal first, so
the learner (which leaves the members on SIGTERM and joins again at start),
then each voter; SIGTERM, restart on the same data dir, wait until ready,
then the next. Meanwhile the SDK with its default retry policy publishes
events with ids, and two SDK subscribers read them, each through a "service"
target naming every pod (one connection, moved to another pod when it
breaks); one starts on the learner, one on a voter. No publish fails, every
acknowledged event is stored once at the same position on every pod, the
learner included, and each subscriber sees every event exactly once. The
time without a leader is printed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster
from tests.support.cluster_reads import assert_stored_once_everywhere
from tests.support.dns import Responder
from tests.support.rolling import SdkPublisher, SdkSubscriber, roll_under_load, service_target
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.timeout(300)

MAX_EVENTS = 20_000
"""The load's bound; it is stopped long before on any machine that rolls at all."""
PODS = [f"eventstream-{n}" for n in range(4)]
LEARNER = PODS[3]
HEADLESS = "eventstream-headless.streams.svc.cluster.local"


@pytest.fixture
def responder() -> Iterator[Responder]:
    server = Responder().start()
    yield server
    server.stop()


@pytest.fixture
def cluster(tmp_path: Path, responder: Responder) -> Iterator[Cluster]:
    port = free_port()  # every pod's cluster port, as in a StatefulSet
    servers = {}
    for number, pod in enumerate(PODS, 1):
        responder.set(f"{pod}.{HEADLESS}", f"127.0.0.{number}")
        (tmp_path / pod).mkdir()
        servers[pod] = ServerProcess(tmp_path / pod, {
            "server": {"host": f"127.0.0.{number}"}, "storage": {"partitions": 4},
            "cluster": {"enabled": True, "discovery": "dns", "dns_server": responder.address,
                        "namespace": "streams", "node_id": pod, "port": port,
                        "replicas": len(PODS), "voters": 3}})
    nodes = Cluster.of(servers)
    try:
        nodes.start(voting=False)  # every pod ready: the learner too, once it joined
        nodes.wait_voting(PODS[:3])
        yield nodes
    finally:
        nodes.stop()


def roles(cluster: Cluster, node: str) -> dict[str, str]:
    """Member -> role, as ``node``'s /status shows them."""
    return {member["node_id"]: member["role"] for member in cluster.status(node)["cluster"]["members"]}


async def test_a_rolling_update_of_voters_and_a_learner_loses_and_repeats_nothing(cluster: Cluster):
    assert roles(cluster, cluster.wait_leader())[LEARNER] == "learner", "joined by itself"
    subscribers = [SdkSubscriber(service_target(cluster, first=node), "load/#", MAX_EVENTS).start()
                   for node in (LEARNER, PODS[0])]
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
    assert [restarted for restarted, _ in figures.restarts] == PODS[::-1]
    assert len(figures.leaders) >= 2, figures.leaders
    assert LEARNER not in figures.leaders
    assert len(acked) == len(publisher.acks), "an event acknowledged twice"
    for subscriber in subscribers:
        assert subscriber.errors == []
        delivered = Counter(event_id for event_id, *_ in subscriber.events)
        assert delivered == Counter(acked), "every acknowledged event once, nothing else"
    await assert_stored_once_everywhere(cluster, publisher.acks)
    assert roles(cluster, cluster.wait_leader())[LEARNER] == "learner", "it never votes"
