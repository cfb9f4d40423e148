"""Membership changes through the log, with real server processes on 127.0.0.1.

A fourth node started with ``cluster.join`` is added as a learner while a
client publishes, catches up (the same events in the same order) and serves
readers; promoted, it votes: with the leader SIGKILLed the remaining three of
four voters still commit. A removed member stops receiving the log. A member
whose data dir was lost is removed, rejoins under its id as a learner by
itself and is promoted once caught up; its membership survives a restart. The admin RPCs'
refusals arrive through gRPC with their code, reason and field, and
docs/cluster.md's grpcurl recipes run as written.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml

from eventstream.client import NO_RETRY, Client, Event, EventStreamError, RetryPolicy
from eventstream.peer.v1 import raft_pb2
from tests.support.cluster import Cluster, running_cluster
from tests.support.cluster_reads import read_stored, wait_caught_up
from tests.support.recipes import grpcurl_recipes
from tests.support.server import http_get, metric

CLUSTER_DOC = Path(__file__).resolve().parents[2] / "docs" / "cluster.md"
RETRY = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, deadline=20.0)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, 3, {"storage": {"partitions": 4}}) as nodes:
        yield nodes


def roles(cluster: Cluster, node: str) -> dict[str, str]:
    """Member -> role, as ``node``'s /status shows them."""
    return {member["node_id"]: member["role"]
            for member in cluster.status(node)["cluster"]["members"]}


def applied(cluster: Cluster, node: str) -> int:  # the removed member's stays behind
    """The node's applied index (/status)."""
    return int(cluster.status(node)["cluster"]["applied_index"])


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    """Wait until ``condition()`` holds, failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


def publish_many(target: str, prefix: str, count: int) -> list[str]:
    """Publish ``count`` events with ids (retrying), in batches of 10; the ids acknowledged."""
    acked = []
    with Client(target, retry=RETRY) as client:
        for start in range(0, count, 10):
            results = client.publish_batch([
                Event(f"orders/{i % 4}", b"%s-%d" % (prefix.encode(), i), key=f"k{i % 5}",
                      id=f"{prefix}-{i}") for i in range(start, min(start + 10, count))])
            assert all(result.ok for result in results), results
            acked += [result.ack.id for result in results if result.ack is not None]
    return acked


async def test_a_joiner_is_added_caught_up_promoted_and_votes(cluster: Cluster):
    leader = cluster.wait_leader()
    joiner = cluster.joiner("n4").start(wait=False)
    joiner.wait_healthy(60.0, path="/health/live")
    # Not a member yet: it knows no leader and says why it is not ready.
    # (its start-up phases, discovering to warming up, come first and say nothing of that)
    wait_for(lambda: b'"serving"' in http_get(f"{joiner.http}/health/live")[1],
             "the joiner's start-up ends")
    # Static discovery without cluster.tls: its own Join is refused, an operator adds it.
    wait_for(lambda: b"may not join" in http_get(f"{joiner.http}/health/ready")[1],
             "the joiner's readiness names the refused Join")
    status, body = http_get(f"{joiner.http}/health/ready")
    assert status == 503 and b"waiting to be added" in body, body
    assert metric(cluster.nodes[leader], "eventstream_cluster_peer_refused_total",
                  reason="implausible_joiner") >= 1
    # Added while a client publishes through the leader.
    acked: list[str] = []
    publisher = threading.Thread(target=lambda: acked.extend(
        publish_many(cluster.nodes[leader].target, "during", 300)))
    publisher.start()
    try:
        with Client(cluster.nodes[leader].target, retry=NO_RETRY) as admin:
            added = admin.add_member("n4", cluster.cluster_address("n4"))
    finally:
        publisher.join(120)
    assert not publisher.is_alive()
    assert added.log_index > 0
    assert {m.node_id: m.role for m in added.members}["n4"] == "LEARNER"
    assert len(acked) == 300
    # The learner catches up: the same events, in the same order, as the leader's.
    joiner.wait_healthy(60.0)
    wait_caught_up(cluster, [*cluster.running()])
    on_leader = await read_stored(cluster, leader)
    assert await read_stored(cluster, "n4") == on_leader
    assert {event_id for *_, event_id in on_leader} >= set(acked)
    for node in cluster.running():
        assert roles(cluster, node)["n4"] == "learner", node
    with Client(joiner.target) as client:
        status_n4 = client.cluster_status()
    assert status_n4.role == "LEARNER" and status_n4.leader_id == leader
    assert metric(joiner, "eventstream_cluster_is_learner") == 1
    assert metric(cluster.nodes[leader], "eventstream_cluster_members", role="learner") == 1
    assert metric(cluster.nodes[leader], "eventstream_cluster_members", role="voter") == 3

    # Promoted, it votes: with the leader killed, three voters of four still commit.
    with Client(cluster.nodes[leader].target, retry=NO_RETRY) as admin:
        promoted = admin.promote_learner("n4")
    assert {m.node_id: m.role for m in promoted.members}["n4"] != "LEARNER"
    wait_for(lambda: all(roles(cluster, node)["n4"] in ("follower", "leader")
                         for node in cluster.running()), "every node sees n4 as a voter")
    cluster.wait_voting(["n4"])
    assert metric(cluster.nodes[leader], "eventstream_cluster_members", role="voter") == 4
    cluster.nodes[leader].kill()
    survivors = cluster.running()
    new_leader = cluster.wait_leader(among=survivors)
    after = publish_many(cluster.nodes[new_leader].target, "after", 30)
    assert len(after) == 30
    wait_caught_up(cluster, survivors)
    assert {event_id for *_, event_id in await read_stored(cluster, "n4")} >= set(acked + after)

    # A removed member stops receiving the log.
    removed = next(node for node in survivors if node not in (new_leader, "n4"))
    with Client(cluster.nodes[new_leader].target, retry=NO_RETRY) as admin:
        result = admin.remove_member(removed)
    assert removed not in {member.node_id for member in result.members}
    wait_for(lambda: removed not in roles(cluster, new_leader), "the leader drops the member")
    assert metric(cluster.nodes[new_leader], "eventstream_cluster_members", role="voter") == 3
    later = publish_many(cluster.nodes[new_leader].target, "later", 20)
    wait_caught_up(cluster, [node for node in survivors if node != removed])
    assert applied(cluster, removed) < applied(cluster, new_leader)
    assert {event_id for *_, event_id in await read_stored(cluster, "n4")} >= set(later)
    assert not {event_id for *_, event_id in await read_stored(cluster, removed)} & set(later)
    # It applied its own removal: not ready, and says why.
    wait_for(lambda: http_get(f"{cluster.nodes[removed].http}/health/ready") ==
             (503, b'{"status": "NOT_SERVING", "phase": "removed (the membership it applied no '
                   b'longer names it: it serves nothing until added again)"}'),
             "the removed member reports it is removed")


def admin_error(call) -> EventStreamError:
    """The error ``call()`` raises."""
    with pytest.raises(EventStreamError) as raised:
        call()
    return raised.value


async def test_admin_refusals_name_the_field(cluster: Cluster):
    leader = cluster.wait_leader()
    follower = next(node for node in cluster.nodes if node != leader)
    with Client(cluster.nodes[follower].target, retry=NO_RETRY) as on_follower:
        error = admin_error(lambda: on_follower.add_member("n9", "127.0.0.1:1"))
    assert (error.code, error.reason, error.leader_id) == \
        (grpc.StatusCode.UNAVAILABLE, "NOT_LEADER", leader)
    assert error.leader_address == cluster.nodes[leader].target
    with Client(cluster.nodes[leader].target, retry=NO_RETRY) as admin:
        cases = [
            (lambda: admin.add_member(follower, "127.0.0.1:1"),
             grpc.StatusCode.ALREADY_EXISTS, "MEMBER_EXISTS", "node_id"),
            (lambda: admin.add_member("n9", "no-port"),
             grpc.StatusCode.INVALID_ARGUMENT, "MEMBER_INVALID", "address"),
            (lambda: admin.add_member("", "127.0.0.1:1"),
             grpc.StatusCode.INVALID_ARGUMENT, "MEMBER_INVALID", "node_id"),
            (lambda: admin.promote_learner("n9"),
             grpc.StatusCode.NOT_FOUND, "MEMBER_UNKNOWN", "node_id"),
            (lambda: admin.promote_learner(follower),
             grpc.StatusCode.FAILED_PRECONDITION, "NOT_LEARNER", "node_id"),
            (lambda: admin.remove_member("n9"),
             grpc.StatusCode.NOT_FOUND, "MEMBER_UNKNOWN", "node_id"),
            (lambda: admin.transfer_leadership("n9"),
             grpc.StatusCode.NOT_FOUND, "MEMBER_UNKNOWN", "node_id"),
        ]
        for call, code, reason, field in cases:
            error = admin_error(call)
            assert (error.code, error.reason, error.field) == (code, reason, field), error
        # A learner that never caught up (nothing listens at its address) is not promoted.
        admin.add_member("n5", "127.0.0.1:1")
        publish_many(cluster.nodes[leader].target, "behind", 20)
        error = admin_error(lambda: admin.promote_learner("n5", max_lag=1))
        assert (error.code, error.reason, error.field) == \
            (grpc.StatusCode.FAILED_PRECONDITION, "LEARNER_BEHIND", "node_id")
        assert "n5" in error.message and "behind" in error.message
        error = admin_error(lambda: admin.transfer_leadership("n5"))
        assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_VOTER")
        # One change at a time: with the followers stopped the first cannot commit.
        stopped = [node for node in cluster.nodes if node != leader]
        for node in stopped:
            cluster.nodes[node].process.send_signal(signal.SIGSTOP)
        try:
            async with asyncio.timeout(30):
                async_admin = asyncio.to_thread(admin.remove_member, "n5")
                first = asyncio.ensure_future(async_admin)
                await asyncio.sleep(0.05)
                error = admin_error(lambda: admin.add_member("n6", "127.0.0.1:2"))
                assert (error.code, error.reason, error.field) == \
                    (grpc.StatusCode.FAILED_PRECONDITION, "MEMBERSHIP_CHANGE_PENDING", "node_id")
        finally:
            for node in stopped:
                cluster.nodes[node].process.send_signal(signal.SIGCONT)
        try:  # committed once the followers are back, or not: either is right here
            await first
        except EventStreamError:
            pass
    # Handing leadership over, to the best voter.
    with Client(cluster.nodes[cluster.wait_leader()].target, retry=NO_RETRY) as admin:
        before = admin.cluster_status().node_id
        after = admin.transfer_leadership()
    assert after and after != before
    assert cluster.wait_leader() == after


def test_a_single_voter_and_the_grpcurl_recipes(tmp_path: Path):
    single = Cluster(tmp_path, 1).start()
    try:
        target = single.nodes["n1"].target
        with Client(target, retry=NO_RETRY) as admin:
            error = admin_error(lambda: admin.remove_member("n1"))
            assert (error.code, error.reason, error.field) == \
                (grpc.StatusCode.FAILED_PRECONDITION, "LAST_VOTER", "node_id")
            error = admin_error(lambda: admin.transfer_leadership())
            assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_VOTER")
            # One voter commits alone: a learner is added and removed at once.
            assert [m.role for m in admin.add_member("n2", "127.0.0.1:1").members] == \
                ["LEADER", "LEARNER"]
            assert [m.node_id for m in admin.remove_member("n2").members] == ["n1"]
        # docs/cluster.md's recipes, as written but for the address (nothing
        # leaves 127.0.0.1) and the target; what each must answer here.
        expected = {"GetClusterStatus": '"ROLE_LEADER"', "AddMember": '"ROLE_LEARNER"',
                    "PromoteLearner": "LEARNER_BEHIND", "RemoveMember": '"logIndex"',
                    "TransferLeadership": "NOT_VOTER"}
        recipes = grpcurl_recipes(CLUSTER_DOC, "\n## Changing the members\n")
        assert [recipe.rpartition("/")[2] for recipe in recipes] == list(expected)
        for recipe in recipes:
            command = recipe.replace("10.0.0.4:9100", "127.0.0.1:1").replace(
                "127.0.0.1:9200", target)
            assert shutil.which("grpcurl"), "grpcurl not on PATH: run `make tools`"
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                                  timeout=30)
            answer = expected[recipe.rpartition("/")[2]]
            assert answer in done.stdout + done.stderr, (command, done.stdout, done.stderr)
    finally:
        single.stop()


async def test_a_member_that_lost_its_data_dir_rejoins_as_a_learner(cluster: Cluster):
    leader = cluster.wait_leader()
    victim = next(node for node in cluster.nodes if node != leader)
    before = publish_many(cluster.nodes[leader].target, "before", 50)
    server = cluster.nodes[victim]
    server.kill()
    shutil.rmtree(server.workdir / "data")
    with Client(cluster.nodes[leader].target, retry=NO_RETRY) as admin:
        admin.remove_member(victim)
    # It comes back under its id, as a joiner: it neither votes nor campaigns
    # until the log says it may.
    document = yaml.safe_load(server.config_path.read_text())
    document["cluster"]["join"] = True
    server.config_path.write_text(yaml.safe_dump(document))
    # An initial voter: it asks the leader to add it back (Join) and is
    # promoted once caught up, without AddMember or PromoteLearner.
    server.start(wait=False)
    server.wait_healthy(60.0)
    cluster.wait_voting([victim], timeout=60.0)
    during = publish_many(cluster.nodes[leader].target, "during", 30)
    wait_caught_up(cluster, list(cluster.nodes))
    assert await read_stored(cluster, victim) == await read_stored(cluster, leader)
    assert {event_id for *_, event_id in await read_stored(cluster, victim)} >= \
        set(before + during)
    # The membership survives a restart: it is in the log, not in cluster.json.
    server.stop()
    server.start(wait=False)
    server.wait_healthy(60.0)
    cluster.wait_voting([victim])
    assert roles(cluster, victim) == roles(cluster, leader)
    assert roles(cluster, victim)[victim] in ("follower", "leader")
    assert metric(server, "eventstream_cluster_members", role="voter") == 3


async def test_a_removed_members_open_peer_stream_is_ended(cluster: Cluster):
    leader = cluster.wait_leader()
    server = cluster.nodes[leader]
    cluster_id = json.loads((server.workdir / "data" / "cluster.json").read_text())["cluster_id"]
    with Client(server.target, retry=NO_RETRY) as admin:
        admin.add_member("ghost", "127.0.0.1:1")  # a learner nobody runs: no quorum change
        metadata = (("eventstream-cluster-id", cluster_id), ("eventstream-node-id", "ghost"),
                    ("eventstream-recipient", leader))
        async with grpc.aio.insecure_channel(cluster.cluster_address(leader)) as channel:
            call = channel.stream_stream(
                "/eventstream.peer.v1.PeerService/Forward",
                request_serializer=raft_pb2.ForwardRequest.SerializeToString,
                response_deserializer=raft_pb2.ForwardResponse.FromString)(metadata=metadata)
            # A kind the leader does not serve is answered on the stream: it is open.
            await call.write(raft_pb2.ForwardRequest(sequence=1))
            answer = await asyncio.wait_for(call.read(), 30)
            assert answer.status_code == grpc.StatusCode.UNIMPLEMENTED.value[0]
            admin.remove_member("ghost")
            # Ended by the leader once the removal is applied, not left open until "ghost" goes.
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await asyncio.wait_for(call.read(), 30)
            assert ended.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "no longer a peer" in (ended.value.details() or "")
    assert metric(server, "eventstream_cluster_peer_refused_total", reason="unknown_node") >= 1
