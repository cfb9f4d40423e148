"""Automatic membership: a pod beyond ``cluster.voters`` joins and leaves by itself.

Four real server processes on 127.0.0.1 to .4 with ``cluster.discovery: dns``
(a DNS responder the test controls), ``cluster.voters: 3`` and
``cluster.replicas: 4``, as a StatefulSet of four pods: ordinals 0 to 2 form
the cluster, ordinal 3 asks to be added over the cluster port (``Join``) and
becomes a learner without any admin call, while a client publishes; it serves
a subscriber the same events; SIGTERM removes it, a restart adds it again on
its kept data dir. Join calls that are not plausible (another cluster, a voter
ordinal asking to join, a name that is no pod of the StatefulSet) are refused
and counted. A joiner is added whoever leads, a member added through the log
included: it takes the leader's calls once a Join answer named it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from eventstream.client import NO_RETRY, Client, Event, EventStreamError, RetryPolicy
from eventstream.peer.v1 import raft_pb2
from tests.integration.test_cluster_sigterm import Observed, publish_until_refused, read_back
from tests.support.cluster import Cluster
from tests.support.cluster_reads import read_stored, wait_caught_up
from tests.support.dns import Responder
from tests.support.server import ServerProcess, free_port, metric

pytestmark = pytest.mark.timeout(300)

SERVICE = "eventstream-headless.streams.svc.cluster.local"
RETRY = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, deadline=30.0)
JOIN = "/eventstream.peer.v1.PeerService/Join"


def host(ordinal: int) -> str:
    return f"eventstream-{ordinal}.{SERVICE}"


def pod(tmp_path: Path, responder: Responder, ordinal: int, cluster_port: int) -> ServerProcess:
    node = f"eventstream-{ordinal}"
    (tmp_path / node).mkdir()
    return ServerProcess(tmp_path / node, {
        "server": {"host": f"127.0.0.{ordinal + 1}"},
        "storage": {"partitions": 2},
        "cluster": {"enabled": True, "discovery": "dns", "node_id": node, "replicas": 5,
                    "voters": 3, "namespace": "streams", "dns_server": responder.address,
                    "port": cluster_port, "peers": []}})


@pytest.fixture
def cluster(tmp_path: Path, responder: Responder) -> Iterator[Cluster]:
    for ordinal in range(5):
        responder.set(host(ordinal), f"127.0.0.{ordinal + 1}")
    port = free_port()
    nodes = Cluster.of({f"eventstream-{n}": pod(tmp_path, responder, n, port) for n in range(5)})
    try:
        yield nodes
    finally:
        nodes.stop()


def cluster_port(server: ServerProcess) -> int:
    return int(yaml.safe_load(server.config_path.read_text())["cluster"]["port"])


def roles(cluster: Cluster, node: str) -> dict[str, str]:
    return {m["node_id"]: m["role"] for m in cluster.status(node)["cluster"]["members"]}


def wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.1)


class Publisher(threading.Thread):
    """Publishes events with ids to one node (retrying) until stopped, at most ``limit``."""

    def __init__(self, target: str, prefix: str, limit: int = 3000) -> None:
        super().__init__(daemon=True)
        self.target, self.prefix, self.limit = target, prefix, limit
        self.acked: list[str] = []
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with Client(self.target, retry=RETRY) as client:
                for i in range(self.limit):
                    if self.halt.is_set():
                        return
                    ack = client.publish(Event(f"orders/{i % 2}", b"e%d" % i,
                                               id=f"{self.prefix}-{i}"))
                    self.acked.append(ack.id)
                    time.sleep(0.005)
        except BaseException as error:  # the test asserts on it
            self.error = error

    def finish(self) -> list[str]:
        """Stop now; the ids acknowledged."""
        self.halt.set()
        return self.finish_when_done()

    def finish_when_done(self) -> list[str]:
        """Wait until it has published its ``limit``; the ids acknowledged."""
        self.join(120)
        assert not self.is_alive() and self.error is None, self.error
        return self.acked


async def test_a_pod_beyond_the_voters_joins_serves_leaves_and_joins_again(cluster: Cluster) -> None:
    leader = await start_voters(cluster)
    publisher = Publisher(cluster.nodes[leader].target, "join")
    publisher.start()
    replica = cluster.nodes["eventstream-3"].start(wait=False)
    replica.wait_healthy(90)  # ready: a member, and caught up: nobody called AddMember
    assert roles(cluster, leader)["eventstream-3"] == "learner"
    assert roles(cluster, "eventstream-3")["eventstream-3"] == "learner"
    assert any("added eventstream-3 at" in cluster.nodes[node].log()  # by whoever led
               for node in ("eventstream-0", "eventstream-1", "eventstream-2"))
    acked = publisher.finish()
    assert acked, "the publisher got no acknowledgement"
    wait_caught_up(cluster, cluster.running())
    stored = await read_stored(cluster, "eventstream-3")
    assert stored == await read_stored(cluster, leader)
    assert {event_id for *_, event_id in stored} >= set(acked)
    assert metric(replica, "eventstream_cluster_is_learner") == 1
    assert cluster.membership_changes("add_learner", "join") == 1

    # SIGTERM: it asks to be removed before its drain; the quorum never changed.
    replica.stop()
    assert "left the cluster: removed as a learner" in replica.log()
    wait_for(lambda: "eventstream-3" not in roles(cluster, leader), "the learner's removal")
    assert sorted(roles(cluster, leader).values()).count("follower") == 2
    assert cluster.membership_changes("remove", "leave") == 1

    # Started again on its kept data dir: added again, catches up incrementally.
    more = Publisher(cluster.nodes[leader].target, "again", limit=50)
    more.start()
    more_acked = more.finish_when_done()
    replica.start(wait=False)
    replica.wait_healthy(90)
    assert roles(cluster, leader)["eventstream-3"] == "learner"
    wait_caught_up(cluster, cluster.running())
    again = await read_stored(cluster, "eventstream-3")
    assert {event_id for *_, event_id in again} >= set(acked + more_acked)
    assert metric(cluster.nodes[leader], "eventstream_cluster_members", role="voter") == 3
    assert cluster.membership_changes("add_learner", "join") == 2
    assert cluster.membership_changes("add_learner", "admin") == 0


async def test_implausible_joins_are_refused_and_counted(cluster: Cluster) -> None:
    voters = [f"eventstream-{n}" for n in range(3)]
    leader = await start_voters(cluster)
    server = cluster.nodes[leader]
    cluster_id = json.loads((server.workdir / "data" / "cluster.json").read_text())["cluster_id"]
    address = f"{server.host}:{cluster_port(server)}"
    before = {reason: metric(server, "eventstream_cluster_peer_refused_total", reason=reason)
              for reason in ("other_cluster", "implausible_joiner")}

    async def join(cluster_id: str, node: str, intent: int = raft_pb2.JOIN_INTENT_JOIN) -> grpc.StatusCode:
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.unary_unary(JOIN, request_serializer=raft_pb2.JoinRequest.SerializeToString,
                                       response_deserializer=raft_pb2.JoinResponse.FromString)
            try:
                await call(raft_pb2.JoinRequest(intent=intent, address="127.0.0.9:1"), timeout=30,
                           metadata=(("eventstream-cluster-id", cluster_id),
                                     ("eventstream-node-id", node), ("eventstream-recipient", leader)))
            except grpc.aio.AioRpcError as error:
                return error.code()
        return grpc.StatusCode.OK

    denied = grpc.StatusCode.PERMISSION_DENIED
    assert await join("es-another", "eventstream-7") == denied
    assert await join(cluster_id, "laptop") == denied  # no pod name
    assert await join(cluster_id, "other-3") == denied  # a pod of another StatefulSet
    assert await join(cluster_id, "eventstream-1") == denied  # a voter never joins as a learner
    assert await join(cluster_id, "eventstream-5", raft_pb2.JOIN_INTENT_REJOIN) == denied
    assert await join(cluster_id, "eventstream-5", 99) == grpc.StatusCode.INVALID_ARGUMENT
    assert metric(server, "eventstream_cluster_peer_refused_total",
                  reason="other_cluster") == before["other_cluster"] + 1
    assert metric(server, "eventstream_cluster_peer_refused_total",
                  reason="implausible_joiner") == before["implausible_joiner"] + 4
    assert sorted(roles(cluster, leader)) == voters, "nothing was added"


def retrying(call: Any, reason: str, timeout: float = 60.0) -> Any:
    """``call()``, again while it fails with ``reason``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except EventStreamError as error:
            if error.reason != reason or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


async def start_voters(cluster: Cluster) -> str:
    voters = [f"eventstream-{n}" for n in range(3)]
    for node in voters:
        cluster.nodes[node].start(wait=False)
    for node in voters:
        cluster.nodes[node].wait_healthy(60)
    return cluster.wait_leader(timeout=60, among=voters)


async def test_a_joiner_is_added_while_a_member_added_through_the_log_leads(cluster: Cluster) -> None:
    leader = await start_voters(cluster)
    cluster.nodes["eventstream-3"].start(wait=False).wait_healthy(90)
    # An operator makes the read replica a voter and hands it the leadership.
    with Client(cluster.nodes[leader].target, retry=NO_RETRY) as admin:
        retrying(lambda: admin.promote_learner("eventstream-3"), "LEARNER_BEHIND")
        # Handed over within two election timeouts, or MEMBERSHIP_TIMEOUT on a busy machine.
        assert retrying(lambda: admin.transfer_leadership("eventstream-3"),
                        "MEMBERSHIP_TIMEOUT") == "eventstream-3"
    assert cluster.wait_leader(timeout=60, among=[f"eventstream-{n}" for n in range(4)]) == \
        "eventstream-3"
    # eventstream-4 knows only the initial voters; they name eventstream-3 as the leader.
    joiner = cluster.nodes["eventstream-4"].start(wait=False)
    joiner.wait_healthy(90)
    assert roles(cluster, "eventstream-3")["eventstream-4"] == "learner"
    assert "added eventstream-4 at" in cluster.nodes["eventstream-3"].log()
    assert cluster.membership_changes("promote", "admin") == 1
    assert metric(cluster.nodes["eventstream-3"], "eventstream_cluster_membership_changes_total",
                  change="add_learner", origin="join") == 1


async def test_a_read_replica_serves_its_grace_then_leaves(cluster: Cluster) -> None:
    """SIGTERM of a learner under a client without retries: it forwards through its grace, then leaves.

    Removed before its grace, it could forward nothing (the leader refuses a removed member's
    peer calls), so a client still routed to it would fail.
    """
    leader = await start_voters(cluster)
    replica = cluster.nodes["eventstream-3"]
    config = yaml.safe_load(replica.config_path.read_text())
    config["server"].update(drain_grace_seconds=3, drain_timeout_seconds=10)
    replica.config_path.write_text(yaml.safe_dump(config))
    replica.start(wait=False).wait_healthy(90)
    seen, sigterm, never_led = Observed(), threading.Event(), threading.Event()
    never_led.set()  # a learner hands nothing over
    publishing = asyncio.ensure_future(publish_until_refused(replica.target, sigterm, seen,
                                                             never_led))
    deadline = time.monotonic() + 30
    while len(seen.grpc_acks) < 20 and time.monotonic() < deadline and not publishing.done():
        await asyncio.sleep(0.01)
    replica.signal(signal.SIGTERM)
    sigterm.set()
    async with asyncio.timeout(60):
        await publishing
    assert await asyncio.to_thread(replica.wait_exit, 30) == 0
    print(f"\n{len(seen.grpc_acks)} acks, {seen.grpc_acks_after_sigterm} after SIGTERM")
    assert seen.grpc_acks_after_sigterm > 0, seen.grpc_refusal
    assert seen.grpc_refusal is not None
    assert seen.grpc_refusal.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in (seen.grpc_refusal.details() or ""), seen.grpc_refusal.details()
    wait_for(lambda: "eventstream-3" not in roles(cluster, leader), "the replica left")
    stored = await read_back(cluster.nodes[leader].target, "sig/grpc", len(seen.grpc_acks))
    assert sorted(stored) == sorted(seen.grpc_acks)
