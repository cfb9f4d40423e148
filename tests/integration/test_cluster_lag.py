"""The replication lag in seconds of a follower stopped with SIGSTOP (3 real processes).

On the leader, ``eventstream_cluster_replication_lag_seconds{peer}``, the
``lag_seconds`` of /status and of GetClusterStatus (through the SDK and
grpcurl) give the age of the oldest entry a member lacks: it grows while a
follower is stopped, stays 0 for the one that keeps up, and is back to 0
once the stopped one caught up. GetClusterStatus names the leader's public
address on every node.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from eventstream.client import AsyncClient, Client, ClusterStatus, Event, RetryPolicy
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


def grpcurl_status(target: str) -> dict:
    """GetClusterStatus as grpcurl prints it (JSON)."""
    assert shutil.which("grpcurl"), "grpcurl not on PATH: run `make tools`"
    done = subprocess.run(["grpcurl", "-plaintext", target,
                           "eventstream.v1.ClusterService/GetClusterStatus"],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def sdk_lags(server: ServerProcess) -> dict[str, tuple[int | None, float | None]]:
    """node id -> (lag_entries, lag_seconds) of GetClusterStatus through the SDK."""
    with Client(server.target) as client:
        return {member.node_id: (member.lag_entries, member.lag_seconds)
                for member in client.cluster_status().members}


def async_status(target: str) -> ClusterStatus:
    """GetClusterStatus through the SDK's asyncio client.

    On a thread of its own: ``asyncio.run()`` on the test's thread would clear the
    event loop pytest-asyncio left current after an async test, which is then
    collected unclosed during a later test (a ResourceWarning, an error here).
    """
    async def call() -> ClusterStatus:
        async with AsyncClient(target) as client:
            return await client.cluster_status()
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, call()).result(60)


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
        # GetClusterStatus: the same lags, in entries and seconds, on the leader only.
        lags = sdk_lags(leading)
        assert lags[frozen][0] >= 1 and lags[frozen][1] > first
        assert lags[live] == (0, 0.0) and lags[leader] == (0, 0.0)
        seen = {member["nodeId"]: member for member in grpcurl_status(leading.target)["members"]}
        assert float(seen[frozen]["lagSeconds"]) > first and int(seen[frozen]["lagEntries"]) >= 1
        assert sdk_lags(cluster.nodes[live]) == {
            leader: (None, None), frozen: (None, None), live: (0, 0.0)}
        lagging = {member.node_id: member for member in async_status(leading.target).members}
        assert lagging[frozen].lag_seconds > first and lagging[live].lag_seconds == 0.0
    finally:
        cluster.nodes[frozen].signal(signal.SIGCONT)
    wait_until(lambda: lag_seconds(leading) == {frozen: 0.0, live: 0.0}, "caught up again")
    wait_until(lambda: sdk_lags(leading) == dict.fromkeys(cluster.nodes, (0, 0.0)),
               "caught up in GetClusterStatus")


def test_every_node_names_the_leaders_public_address(cluster: Cluster):
    leader = cluster.wait_leader()
    address = cluster.nodes[leader].target
    for node, server in cluster.nodes.items():
        with Client(server.target) as client:
            status = client.cluster_status()
        assert (status.leader_id, status.leader_address) == (leader, address), node
        status = async_status(server.target)
        assert (status.leader_id, status.leader_address) == (leader, address), node
        printed = grpcurl_status(server.target)
        assert (printed["leaderId"], printed["leaderAddress"]) == (leader, address), node
        assert cluster.status(node)["cluster"]["leader_address"] == address
