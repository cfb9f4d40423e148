"""A member restarted on an empty data dir must not help elect a leader that lacks committed entries.

n3 misses some acknowledged events (killed), n2 holds them and then loses its
data dir; with the old leader gone, n2 and n3 alone must not elect n3. A
test-only switch that lets a fresh member vote at once shows the loss the
check catches.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from eventstream.client import Client, Event
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
