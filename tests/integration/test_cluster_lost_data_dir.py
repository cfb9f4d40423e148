"""A member restarted on an empty data dir: it rejoins as a learner, and never votes before it caught up.

Unattended: a voter whose data dir is wiped while a client publishes asks its
peers whether the cluster has a log, is removed and added back as a learner
by the leader, receives the log and is promoted once caught up; no
acknowledged event is lost, none is stored twice.

The vote gate: n3 misses some acknowledged events (killed), n2 holds them and
then loses its data dir; with the old leader gone, n2 and n3 alone must not
elect n3 (nobody leads, so nobody can rejoin n2 either). A test-only switch
that lets a fresh member vote at once shows the loss the gate prevents.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from eventstream.client import Client, Event, RetryPolicy
from tests.support.cluster import Cluster
from tests.support.cluster_reads import read_stored, wait_caught_up

ELECTION_WAIT = 5.0
"""Seconds (five or more election timeouts) the two members get to elect someone."""


def leader_among(cluster: Cluster, nodes: list[str], timeout: float) -> str | None:
    """The node among ``nodes`` that reports itself leader within ``timeout`` seconds, if any."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in nodes:
            # /status answers from the first moments, before the node (and its
            # "cluster" section) is built.
            if cluster.status(node).get("cluster", {}).get("role") == "leader":
                return node
        time.sleep(0.05)
    return None


@pytest.mark.parametrize("broken", [False, True], ids=["gated", "votes-at-once"])
async def test_a_wiped_member_does_not_vote_before_it_caught_up(tmp_path: Path, broken: bool):
    env = {"EVENTSTREAM_TEST_NO_VOTE_GATE": "1"} if broken else {}
    # (with the switch, nothing records that the members caught up)
    cluster = Cluster(tmp_path, 3, {"storage": {"partitions": 2}}, env=env).start(
        voting=not broken)
    try:
        leader = cluster.wait_leader()
        holder, stale = [node for node in cluster.nodes if node != leader]
        cluster.nodes[stale].kill()
        with Client(cluster.nodes[leader].target) as client:
            acked = {client.publish(Event("a/b", b"%d" % i, id=f"ev-{i}")).id
                     for i in range(20)}
        cluster.nodes[holder].kill()
        shutil.rmtree(cluster.nodes[holder].workdir / "data")
        # The leader goes first: started beside it, the wiped member could catch
        # up from it before the kill and then rightly help elect someone.
        cluster.nodes[leader].kill()
        for node in (holder, stale):
            cluster.nodes[node].start(wait=False)
        for node in (holder, stale):  # started, not ready: ready would mean caught up
            cluster.nodes[node].wait_healthy(path="/health/live")

        elected = leader_among(cluster, [holder, stale], ELECTION_WAIT)
        if broken:
            assert elected == stale  # with the wiped member's vote
        else:
            assert elected is None
        cluster.nodes[leader].start()
        cluster.wait_leader()
        wait_caught_up(cluster, list(cluster.nodes))
        for node in cluster.nodes:
            lost = acked - {event_id for *_, event_id in await read_stored(cluster, node)}
            if broken:
                assert lost == acked, node  # the stale leader's log won
            else:
                assert lost == set(), node
    finally:
        cluster.stop()


def roles(cluster: Cluster, node: str) -> dict[str, str]:
    return {m["node_id"]: m["role"] for m in cluster.status(node)["cluster"]["members"]}


async def test_a_wiped_voter_rejoins_as_a_learner_and_is_promoted_unattended(tmp_path: Path):
    cluster = Cluster(tmp_path, 3, {"storage": {"partitions": 2}}).start()
    try:
        leader = cluster.wait_leader()
        victim = next(node for node in cluster.nodes if node != leader)
        acked: list[str] = []
        stop = threading.Event()
        failures: list[BaseException] = []

        def publish() -> None:
            retry = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, deadline=30.0)
            try:
                with Client(cluster.nodes[leader].target, retry=retry) as client:
                    for i in range(5000):
                        if stop.is_set():
                            return
                        acked.append(client.publish(Event(f"a/{i % 2}", b"%d" % i,
                                                          id=f"ev-{i}")).id)
                        time.sleep(0.002)
            except BaseException as error:  # asserted below
                failures.append(error)

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        deadline = time.monotonic() + 30
        while len(acked) < 50:
            assert time.monotonic() < deadline and not failures, failures
            time.sleep(0.05)
        cluster.nodes[victim].kill()
        shutil.rmtree(cluster.nodes[victim].workdir / "data")
        cluster.nodes[victim].start(wait=False)
        # Nobody calls an admin RPC: it is removed, added back as a learner, promoted.
        deadline = time.monotonic() + 90

        def log() -> str:  # whoever leads meanwhile (a busy machine may see an election)
            return "".join(cluster.nodes[node].log() for node in cluster.nodes if node != victim)
        while f"promoted {victim}" not in log():
            assert time.monotonic() < deadline, log()
            time.sleep(0.1)
        assert f"removed voter {victim}: it lost its data dir" in log()
        assert f"added {victim} at" in log()
        assert "rejoining as a learner" in cluster.nodes[victim].log()
        # Counted by the leaders that made the changes (the victim made none).
        assert cluster.membership_changes("remove", "rejoin") == 1
        assert cluster.membership_changes("add_learner", "rejoin") == 1
        assert cluster.membership_changes("promote", "auto_promote") == 1
        cluster.wait_voting([victim], timeout=60)
        stop.set()
        publisher.join(60)
        assert not failures, failures
        leader = cluster.wait_leader()
        assert roles(cluster, leader)[victim] in ("follower", "leader")  # a voter again
        wait_caught_up(cluster, list(cluster.nodes))
        for node in cluster.nodes:
            stored = Counter(event_id for *_, event_id in await read_stored(cluster, node))
            assert set(acked) <= set(stored), (node, set(acked) - set(stored))
            assert max(stored.values()) == 1, (node, [i for i, n in stored.items() if n > 1])
    finally:
        cluster.stop()
