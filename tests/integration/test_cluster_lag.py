"""The replication lag in seconds of a follower stopped with SIGSTOP (3 real processes).

On the leader, ``eventstream_cluster_replication_lag_seconds{peer}`` and the
``lag_seconds`` of /status give the age of the oldest entry a member lacks:
it grows while a follower is stopped, stays 0 for the one that keeps up,
and is back to 0 once the stopped one caught up.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstream.client import Client, Event, RetryPolicy
from tests.support.cluster import Cluster, running_cluster
from tests.support.server import ServerProcess, http_get

RETRY = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, deadline=20.0)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, 3) as nodes:
        yield nodes


def lag_seconds(server: ServerProcess) -> dict[str, float]:
    """peer -> ``eventstream_cluster_replication_lag_seconds`` as the node exports it."""
    body = http_get(f"{server.http}/metrics", timeout=10.0)[1].decode()
    return {peer: float(value) for peer, value in re.findall(
        r'^eventstream_cluster_replication_lag_seconds\{[^}]*peer="([^"]+)"[^}]*\} (\S+)$',
        body, re.M)}


def wait_until(check, what: str, timeout: float = 30.0):
    """Poll ``check()`` until it returns something true; return it."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"not {what} within {timeout}s"
        time.sleep(0.05)
    return value


def test_a_stopped_followers_lag_in_seconds_grows_then_returns_to_zero(cluster: Cluster):
    leader = cluster.wait_leader()
    frozen, live = (node for node in cluster.nodes if node != leader)
    leading = cluster.nodes[leader]
    wait_until(lambda: lag_seconds(leading) == {frozen: 0.0, live: 0.0}, "caught up")
    assert lag_seconds(cluster.nodes[live]) == {}  # only the leader knows
    cluster.nodes[frozen].signal(signal.SIGSTOP)
    try:
        with Client(leading.target, retry=RETRY) as client:
            client.publish(Event("lag/a", b"1", id="lag-1"))
        first = wait_until(lambda: lag_seconds(leading)[frozen], "lagging")
        # Older with time while it stays behind; the live follower lacks nothing.
        wait_until(lambda: lag_seconds(leading)[frozen] > first, "older")
        assert lag_seconds(leading)[live] == 0.0
        members = {member["node_id"]: member
                   for member in cluster.status(leader)["cluster"]["members"]}
        assert members[frozen]["lag_seconds"] > first
        assert members[live]["lag_seconds"] == 0.0 and members[leader]["lag_seconds"] == 0.0
        assert all(member["lag_seconds"] is None
                   for member in cluster.status(live)["cluster"]["members"]
                   if member["node_id"] != live)
    finally:
        cluster.nodes[frozen].signal(signal.SIGCONT)
    wait_until(lambda: lag_seconds(leading) == {frozen: 0.0, live: 0.0}, "caught up again")
