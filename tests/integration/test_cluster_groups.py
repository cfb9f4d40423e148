"""Consumer-group members on followers of a 3-node cluster (real processes).

A follower relays a member's Consume stream to the leader over the peer link,
so the group is coordinated there and its committed offsets are written to
the log; after the leader is SIGKILLed, a member joining through a follower
of the new leader resumes from those offsets: it gets every later event and
none it acked. The same holds when the public port serves TLS and asks for
client certificates, the members authenticate with tokens and the members
link with mutual TLS: the relay needs none of the public port's credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from eventstream.client import Client, Event, PermissionDeniedError, RetryPolicy
from eventstream.peer.v1 import raft_pb2
from eventstream.server.cluster.transport import identity_metadata
from eventstream.v1 import subscribe_pb2
from tests.support.certs import Authority, new_token, token_line
from tests.support.cluster import Cluster, running_cluster
from tests.support.server import metric, wait_for_metric
from tests.support.tls import Pki

RETRY = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, deadline=20.0)
GROUP = "billing"
BILLING = {"name": "billing", "publish": {"allow": ["groups/#"]},
           "consume": {"allow": ["groups/#"], "groups": [GROUP]}}
"""The identity of the secured cluster's clients: publishes and consumes as the group only."""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, 3, {"storage": {"partitions": 4}}) as nodes:
        yield nodes


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[Cluster, dict[str, Any], Authority]]:
    """A cluster with public TLS (client certificates required), tokens and member mTLS."""
    pki = Pki.make(tmp_path / "pki")
    members = Authority(tmp_path / "pki", "members-ca")
    token = new_token()
    (tmp_path / "tokens").write_text(token_line("billing", token))
    nodes = Cluster(tmp_path / "nodes", 3, {
        "storage": {"partitions": 4}, "ingest": {"udp_enabled": False},
        "tls": pki.tls_section("require"),
        "auth": {"enabled": True, "identities": [BILLING],
                 "tokens_file": str(tmp_path / "tokens")}})
    for node, server in nodes.nodes.items():
        member = members.issue(node, ips=("127.0.0.1",), server=True, client=True)
        config = yaml.safe_load(server.config_path.read_text())
        config["cluster"]["tls"] = {"cert_file": str(member.cert_path),
                                    "key_file": str(member.key_path),
                                    "ca_file": str(members.cert_path)}
        server.config_path.write_text(yaml.safe_dump(config))
    try:
        yield nodes.start(), {"tls": pki.client_tls(pki.client), "token": token}, members
    finally:
        nodes.stop()


def consume(target: str, count: int, check=None, group: str = GROUP, **options: Any) -> list[str]:
    """Ids of ``count`` events a member of the group gets (and acks) through ``target``."""
    got: list[str] = []
    with Client(target, retry=RETRY, **options) as client, \
            client.consume(group, "groups/#", start="earliest") as consumer:
        for event in consumer:
            got.append(event.id)
            event.ack()
            if check is not None and len(got) == 1:
                check()
            if len(got) == count:
                break
    return got


def publish(target: str, first: int, count: int, **options: Any) -> None:
    with Client(target, retry=RETRY, **options) as client:
        for i in range(first, first + count):
            client.publish(Event(f"groups/{i % 4}", b"%d" % i, key=f"k{i}", id=f"g-{i}"))


def offsets_survive_a_leader_change(cluster: Cluster, **options: Any) -> None:
    """A member on a follower gets, acks and commits; the next leader resumes from there."""
    leader = cluster.wait_leader()
    first, second = (node for node in cluster.nodes if node != leader)
    publish(cluster.nodes[leader].target, 0, 30, **options)

    def served_by_the_leader() -> None:
        assert wait_for_metric(cluster.nodes[leader], "eventstream_group_members", 1,
                               group=GROUP) == 1
        assert metric(cluster.nodes[first], "eventstream_group_members", group=GROUP) == 0

    assert sorted(consume(cluster.nodes[first].target, 30, served_by_the_leader, **options)) == \
        sorted(f"g-{i}" for i in range(30))
    # The committed offsets reach the log: every node knows the group finished the 30.
    for node in cluster.nodes:
        assert wait_for_metric(cluster.nodes[node], "eventstream_group_committed", 30,
                               group=GROUP) == 30

    cluster.nodes[leader].kill()
    next_leader = cluster.wait_leader(among=[first, second])
    follower = second if next_leader == first else first
    publish(cluster.nodes[follower].target, 30, 20, **options)
    # Through the remaining follower: from the committed offsets, nothing acked again.
    assert sorted(consume(cluster.nodes[follower].target, 20, **options)) == \
        sorted(f"g-{i}" for i in range(30, 50))


def test_a_member_on_a_follower_keeps_the_groups_offsets_across_a_leader_change(
        cluster: Cluster):
    offsets_survive_a_leader_change(cluster)


def relayed_start(cluster: Cluster, leader: str, sender: str, members: Authority,
                  identity: str, group: str) -> tuple[grpc.StatusCode, bytes]:
    """A RelayConsume call to ``leader`` as member ``sender`` would make it: (status, first
    response) for a ConsumeStart of ``identity`` in ``group``."""
    cluster_id = json.loads((cluster.nodes[leader].workdir / "data" / "cluster.json")
                            .read_text())["cluster_id"]
    certificate = members.issue(sender, ips=("127.0.0.1",), server=True, client=True,
                                file_name=f"relay-{identity}-{group}")
    credentials = grpc.ssl_channel_credentials(members.pem(), certificate.key_pem(),
                                               certificate.pem())
    start = subscribe_pb2.ConsumeRequest(start=subscribe_pb2.ConsumeStart(
        group=group, patterns=["groups/#"], start_from=subscribe_pb2.START_FROM_EARLIEST))
    request = raft_pb2.RelayConsumeRequest(request=start.SerializeToString())
    metadata = (*identity_metadata(cluster_id, sender, leader),
                ("eventstream-identity-bin", identity.encode()))
    with grpc.secure_channel(cluster.cluster_address(leader), credentials) as channel:
        call = channel.stream_stream(
            "/eventstream.peer.v1.PeerService/RelayConsume",
            request_serializer=raft_pb2.RelayConsumeRequest.SerializeToString,
            response_deserializer=raft_pb2.RelayConsumeResponse.FromString)(
            iter([request]), metadata=metadata, timeout=30)
        try:
            return grpc.StatusCode.OK, next(call).response
        except grpc.RpcError as error:
            return error.code(), b""


def test_over_public_tls_with_tokens_a_member_on_a_follower_is_relayed_to_the_leader(
        secured: tuple[Cluster, dict[str, Any], Authority]):
    cluster, options, members = secured
    leader = cluster.wait_leader()
    follower = next(node for node in cluster.nodes if node != leader)
    # The follower checks the identity's rules before relaying: another group is refused.
    with pytest.raises(PermissionDeniedError, match=r"start\.group"):
        consume(cluster.nodes[follower].target, 1, group="audit", **options)
    # The leader trusts a member for who the caller is, not for what it may do: it
    # applies that identity's rules again (the positive control: the group's own name).
    assert relayed_start(cluster, leader, follower, members, "billing", "audit")[0] == \
        grpc.StatusCode.PERMISSION_DENIED
    assert relayed_start(cluster, leader, follower, members, "stranger", GROUP)[0] == \
        grpc.StatusCode.PERMISSION_DENIED
    code, response = relayed_start(cluster, leader, follower, members, "billing", GROUP)
    assert code == grpc.StatusCode.OK
    assert subscribe_pb2.ConsumeResponse.FromString(response).HasField("assignment")
    offsets_survive_a_leader_change(cluster, **options)
