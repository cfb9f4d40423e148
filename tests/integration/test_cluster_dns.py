"""A replicated cluster whose members find each other through ``cluster.discovery: dns``.

Three real server processes on 127.0.0.1, .2 and .3 (one cluster port, as a
StatefulSet's pods have), named ``eventstream-0..2`` under a headless service
whose records a DNS responder run by the test serves. Nobody lists the peers:
the initial voters are ordinals 0 to ``min(cluster.voters, cluster.replicas) - 1``,
the same on every member, so they derive one cluster id, elect one leader and replicate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventstream.client import Client, Event, RetryPolicy
from tests.support.cluster import Cluster
from tests.support.cluster_reads import read_all
from tests.support.dns import Responder
from tests.support.server import ServerProcess, free_port, http_get

pytestmark = pytest.mark.timeout(180)

SERVICE = "eventstream-headless.streams.svc.cluster.local"
RETRY = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, deadline=20.0)


def host(ordinal: int) -> str:
    return f"eventstream-{ordinal}.{SERVICE}"


def member(tmp_path: Path, responder: Responder, ordinal: int, cluster_port: int,
           **cluster: Any) -> ServerProcess:
    node = f"eventstream-{ordinal}"
    (tmp_path / node).mkdir()
    return ServerProcess(tmp_path / node, {
        "server": {"host": f"127.0.0.{ordinal + 1}"},
        "cluster": {"enabled": True, "discovery": "dns", "node_id": node, "replicas": 3,
                    "namespace": "streams", "dns_server": responder.address,
                    "port": cluster_port, "peers": [], **cluster}})


@pytest.fixture
def cluster(tmp_path: Path, responder: Responder) -> Iterator[Cluster]:
    for ordinal in range(3):
        responder.set(host(ordinal), f"127.0.0.{ordinal + 1}")
    port = free_port()
    nodes = Cluster.of({f"eventstream-{n}": member(tmp_path, responder, n, port) for n in range(3)})
    try:
        yield nodes
    finally:
        nodes.stop()


def health(server: ServerProcess, path: str) -> tuple[int, dict[str, str]]:
    try:
        code, body = http_get(f"{server.http}{path}")
    except OSError:
        return 0, {}
    return code, json.loads(body)


async def test_members_found_by_dns_form_one_cluster_and_replicate(cluster: Cluster) -> None:
    # Alone, a member is live but not ready: it knows no leader, so it cannot take writes.
    first = cluster.nodes["eventstream-0"].start(wait=False)
    first.wait_healthy(60, path="/health/live")
    deadline = time.monotonic() + 60
    # Live from its first moments: finding its peers, opening its log, then its listeners.
    while health(first, "/health/ready")[1].get("phase") in ("discovering", "recovering",
                                                              "starting"):
        assert time.monotonic() < deadline, first.log()
        time.sleep(0.05)
    assert health(first, "/health/ready") == (503, {"status": "NOT_SERVING",
                                                   "phase": "no leader known"})
    for node in ("eventstream-1", "eventstream-2"):
        cluster.nodes[node].start(wait=False)
    for server in cluster.nodes.values():
        server.wait_healthy(60)  # ready: a leader is known and the node has applied its commits
    leader = cluster.wait_leader(timeout=60)
    follower = next(node for node in cluster.nodes if node != leader)
    # A publish to a follower is forwarded to the leader over the names' links.
    with Client(cluster.nodes[follower].target, retry=RETRY) as client:
        acks = [client.publish(Event("orders/eu", b"p%d" % i, id=f"dns-{i}")) for i in range(10)]
    acked = sorted((ack.partition, ack.offset, ack.id) for ack in acks)
    for node, server in cluster.nodes.items():
        assert await read_all(server.target, len(acked)) == acked, node

    views = {node: cluster.status(node)["cluster"] for node in cluster.nodes}
    for node, view in views.items():
        assert view["leader"] == leader, (node, view)
        assert sorted(m["node_id"] for m in view["members"]) == sorted(cluster.nodes)
    log = cluster.nodes[leader].log()
    assert "bootstrapped cluster es-" in log and "eventstream-0, eventstream-1, eventstream-2" in log
    ids = {line.split("bootstrapped cluster ")[1].split()[0]
           for server in cluster.nodes.values() for line in server.log().splitlines()
           if "bootstrapped cluster" in line}
    assert len(ids) == 1, f"the members derived different cluster ids: {ids}"


def test_a_pod_beyond_the_voters_starts_as_a_joiner(tmp_path: Path, responder: Responder) -> None:
    for ordinal in (0, 1, 3):
        responder.set(host(ordinal), f"127.0.0.{ordinal + 1}")
    server = member(tmp_path, responder, 3, free_port()).start(wait=False)
    try:
        server.wait_healthy(60, path="/health/live")
        deadline = time.monotonic() + 60
        # Nobody answers its Join yet: it keeps asking and says so.
        while "not a member (waiting to be added: asking eventstream-" not in \
                health(server, "/health/ready")[1].get("phase", ""):
            assert time.monotonic() < deadline and server.process.poll() is None, server.log()
            time.sleep(0.05)
        assert "joining cluster es-" in server.log()
        assert "(initial voters eventstream-0, eventstream-1, eventstream-2)" in server.log()
    finally:
        server.stop()
