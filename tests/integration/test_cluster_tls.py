"""Mutual TLS between the members on the cluster port (``cluster.tls``).

Three real server processes with certificates the test makes: the cluster
forms and replicates over mutual TLS; a forged peer (plaintext, no
certificate, a certificate of another CA, an expired one) cannot send a
Raft message or a forwarded publish, while a holder of a members' certificate can (the
positive control, so the refusals can fail); a member's certificate is
rotated under load without a failed publish, and its new outbound
connections present the new one; a node holding a members' certificate joins
as a learner by itself; member certificate files that cannot work
stop start-up with a line naming ``cluster.tls``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from eventstream.client import NO_RETRY, Client, Event
from eventstream.peer.v1 import raft_pb2 as pb
from eventstream.server.cluster.transport import identity_metadata
from eventstream.v1 import publish_pb2
from tests.support.certs import Authority, Issued, served_serial
from tests.support.client import event
from tests.support.cluster import Cluster
from tests.support.server import ServerProcess, free_port, metric, wait_for_metric
from tests.support.tls import RELOAD_SECONDS, replace_file

NODES = ("n1", "n2", "n3")
NAME = "members.cluster.test"
"""The name the certificates of the first test carry instead of an address (``server_name``)."""
RELOADS = "eventstream_tls_reloads_total"


def member_certificate(ca: Authority, node: str, file_name: str | None = None,
                       by_name: bool = False) -> Issued:
    """A member's certificate: for 127.0.0.1, or (``by_name``) for :data:`NAME` only."""
    if by_name:
        return ca.issue(node, dns=(NAME,), server=True, client=True, file_name=file_name)
    return ca.issue(node, ips=("127.0.0.1",), server=True, client=True, file_name=file_name)


def peer_tls_section(issued: Issued, ca_file: Path, server_name: str = "") -> dict[str, Any]:
    section = {"cert_file": str(issued.cert_path), "key_file": str(issued.key_path),
               "ca_file": str(ca_file), "reload_interval_seconds": RELOAD_SECONDS}
    return {**section, "server_name": server_name} if server_name else section


def configure(cluster: Cluster, sections: dict[str, dict[str, Any]]) -> None:
    """Give each node its own ``cluster.tls`` before it starts."""
    for node, server in cluster.nodes.items():
        config = yaml.safe_load(server.config_path.read_text())
        config["cluster"]["tls"] = sections[node]
        server.config_path.write_text(yaml.safe_dump(config))


def cluster_address(cluster: Cluster, node: str) -> str:
    port = yaml.safe_load(cluster.nodes[node].config_path.read_text())["cluster"]["port"]
    return f"127.0.0.1:{port}"


def end_offsets(cluster: Cluster, node: str) -> int:
    return sum(cluster.status(node)["log"]["end_offsets"])


def wait_replicated(cluster: Cluster, nodes: list[str], timeout: float = 60.0) -> int:
    """The events every node in ``nodes`` holds, once they all hold the same number."""
    deadline = time.monotonic() + timeout
    while True:
        counts = {node: end_offsets(cluster, node) for node in nodes}
        if len(set(counts.values())) == 1:
            return counts[nodes[0]]
        assert time.monotonic() < deadline, counts
        time.sleep(0.05)


@pytest.fixture
def named_cluster(tmp_path: Path):
    """A cluster whose certificates name :data:`NAME`, checked through ``server_name``."""
    (tmp_path / "pki").mkdir()
    ca = Authority(tmp_path / "pki", "members-ca")
    certificates = {node: member_certificate(ca, node, by_name=True) for node in NODES}
    cluster = Cluster(tmp_path / "nodes", len(NODES))
    configure(cluster, {node: peer_tls_section(certificates[node], ca.cert_path, NAME)
                        for node in NODES})
    try:
        yield cluster.start(), ca, certificates
    finally:
        cluster.stop()


def test_the_cluster_forms_and_replicates_over_mutual_tls(named_cluster):
    cluster, ca, certificates = named_cluster
    leader = cluster.wait_leader()
    follower = next(node for node in NODES if node != leader)
    with Client(cluster.nodes[leader].target) as client:
        assert client.publish(Event("tls/leader", b"x")).offset >= 0
    with Client(cluster.nodes[follower].target) as client:   # forwarded to the leader
        assert client.publish(Event("tls/follower", b"y")).offset >= 0
    assert wait_replicated(cluster, list(NODES)) == 2
    client_certificate = ca.issue("probe")
    for node in NODES:   # each cluster port serves its member's certificate
        port = int(cluster_address(cluster, node).rpartition(":")[2])
        assert served_serial(port, ca, client_certificate) == certificates[node].serial


# --------------------------------------------------------------------------
# Forged peers.

async def peer_calls(address: str, credentials: grpc.ChannelCredentials | None,
                     metadata: tuple[tuple[str, str], ...], term: int
                     ) -> tuple[grpc.StatusCode, grpc.StatusCode]:
    """Statuses of an Exchange with a heartbeat of ``term`` and of a forwarded publish."""
    options = [("grpc.ssl_target_name_override", NAME)]
    channel = (grpc.aio.insecure_channel(address) if credentials is None
               else grpc.aio.secure_channel(address, credentials, options=options))
    async with channel:
        exchange = channel.stream_unary(
            "/eventstream.peer.v1.PeerService/Exchange",
            request_serializer=pb.ExchangeRequest.SerializeToString,
            response_deserializer=pb.ExchangeResponse.FromString)
        forward = channel.stream_stream(
            "/eventstream.peer.v1.PeerService/Forward",
            request_serializer=pb.ForwardRequest.SerializeToString,
            response_deserializer=pb.ForwardResponse.FromString)
        heartbeat = pb.ExchangeRequest(group_id=0, messages=[
            pb.RaftMessage(term=term, heartbeat=pb.Heartbeat(commit=0))])
        publish = pb.ForwardRequest(group_id=0, sequence=1, kind=pb.FORWARD_KIND_PUBLISH,
                                    request=publish_pb2.PublishRequest(
                                        event=event("forged/x", b"forged")).SerializeToString())
        # The publish first: a heartbeat of a later term makes the leader step down.
        call = forward(iter([publish]), metadata=metadata, timeout=10)
        try:
            response = await call.read()
            assert response.status_code == 0, response.status_message
            forwarded = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            forwarded = error.code()
        finally:
            call.cancel()
        try:
            await exchange(iter([heartbeat]), metadata=metadata, timeout=10)
            exchanged = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            exchanged = error.code()
    return exchanged, forwarded


async def test_a_forged_peer_cannot_send_raft_messages_or_forwarded_publishes(
        named_cluster, tmp_path: Path):
    cluster, ca, _ = named_cluster
    leader = cluster.wait_leader()
    identity = json.loads((cluster.nodes[leader].workdir / "data" / "cluster.json").read_text())
    sender = next(node for node in NODES if node != leader)
    metadata = identity_metadata(identity["cluster_id"], sender, leader)
    address = cluster_address(cluster, leader)
    term = cluster.status(leader)["cluster"]["term"]
    other_ca = Authority(tmp_path / "pki", "other-ca")
    forged_member = member_certificate(other_ca, sender, file_name="forged", by_name=True)
    expired = ca.issue(sender, dns=(NAME,), server=True, client=True, expired=True,
                       file_name="expired")
    forgeries = {
        "plaintext": None,
        "no certificate": grpc.ssl_channel_credentials(ca.pem()),
        "another CA's certificate": grpc.ssl_channel_credentials(
            ca.pem(), forged_member.key_pem(), forged_member.pem()),
        "an expired members' certificate": grpc.ssl_channel_credentials(
            ca.pem(), expired.key_pem(), expired.pem()),
    }
    for name, credentials in forgeries.items():
        statuses = await peer_calls(address, credentials, metadata, term + 100)
        assert statuses == (grpc.StatusCode.UNAVAILABLE,) * 2, name
    # Nothing moved: the same term everywhere, nothing forwarded was written, one leader.
    assert {cluster.status(node)["cluster"]["term"] for node in NODES} == {term}
    assert all(end_offsets(cluster, node) == 0 for node in NODES)
    assert cluster.wait_leader() == leader

    # A members' certificate with a wrong cluster id passes TLS: refused and counted.
    member = member_certificate(ca, sender, file_name="control", by_name=True)
    credentials = grpc.ssl_channel_credentials(ca.pem(), member.key_pem(), member.pem())
    stranger = identity_metadata("es-another", sender, leader)
    assert await peer_calls(address, credentials, stranger, term + 100) == \
        (grpc.StatusCode.PERMISSION_DENIED,) * 2
    assert metric(cluster.nodes[leader], "eventstream_cluster_peer_refused_total",
                  reason="other_cluster") == 2
    # The positive control: the same calls with a members' certificate are heard
    # (the publish is written, the heartbeat's term is taken).
    assert await peer_calls(address, credentials, metadata, term + 100) == \
        (grpc.StatusCode.OK,) * 2
    assert end_offsets(cluster, leader) == 1
    assert cluster.status(leader)["cluster"]["term"] == term + 100


def test_a_node_with_a_members_certificate_joins_by_itself(named_cluster):
    """With static discovery an unknown node id may ask to join only behind cluster.tls."""
    cluster, ca, _ = named_cluster
    leader = cluster.wait_leader()
    joiner = cluster.joiner("n4")
    config = yaml.safe_load(joiner.config_path.read_text())
    config["cluster"]["tls"] = peer_tls_section(member_certificate(ca, "n4", by_name=True),
                                                ca.cert_path, NAME)
    joiner.config_path.write_text(yaml.safe_dump(config))
    joiner.start(wait=False)
    joiner.wait_healthy(90)  # ready: added as a learner and caught up, no AddMember
    roles = {m["node_id"]: m["role"] for m in cluster.status(leader)["cluster"]["members"]}
    assert roles["n4"] == "learner"
    assert f"added n4 at {cluster.cluster_address('n4')}" in cluster.nodes[leader].log()


# --------------------------------------------------------------------------
# Rotation.

LOAD_DEADLINE = 90.0


def test_rotating_member_certificates_under_load_keeps_replication_going(tmp_path: Path):
    """The leader moves to a certificate of a new CA (the members trust both),
    a follower that publishes are forwarded through gets a fresh one of the
    same CA; no publish fails. A member restarted trusting the new CA only
    then catches up: the leader's new connections present its new certificate.
    """
    pki = tmp_path / "pki"
    pki.mkdir()
    old_ca, new_ca = Authority(pki, "old-ca"), Authority(pki, "new-ca")
    certificates = {node: member_certificate(old_ca, node) for node in NODES}
    bundles = {node: pki / f"{node}-trusted.pem" for node in NODES}
    for bundle in bundles.values():   # a CA roll's first step: both CAs trusted
        bundle.write_bytes(old_ca.pem() + new_ca.pem())
    cluster = Cluster(tmp_path / "nodes", len(NODES))
    configure(cluster, {node: peer_tls_section(certificates[node], bundles[node])
                        for node in NODES})
    cluster.start()
    try:
        leader = cluster.wait_leader()
        forwarding, restarted = (node for node in NODES if node != leader)
        stop = threading.Event()
        acked = {leader: 0, forwarding: 0}
        errors: list[BaseException] = []

        def load(node: str) -> None:
            try:
                with Client(cluster.nodes[node].target, retry=NO_RETRY) as client:
                    while not stop.is_set():
                        results = client.publish_batch(
                            [Event(f"rotate/{node}", b"%d" % i) for i in range(10)], timeout=30)
                        failed = [result.error for result in results if not result.ok]
                        assert not failed, failed
                        acked[node] += len(results)
            except BaseException as error:
                errors.append(error)

        def wait_acked_past(marks: dict[str, int]) -> None:
            deadline = time.monotonic() + LOAD_DEADLINE
            while any(acked[node] <= mark for node, mark in marks.items()):
                assert time.monotonic() < deadline and not errors, (acked, errors)
                time.sleep(0.05)

        threads = [threading.Thread(target=load, args=(node,)) for node in acked]
        for thread in threads:
            thread.start()
        try:
            wait_acked_past({node: 0 for node in acked})
            fresh = {leader: member_certificate(new_ca, leader, file_name=f"{leader}-next"),
                     forwarding: member_certificate(old_ca, forwarding,
                                                    file_name=f"{forwarding}-next")}
            for node, issued in fresh.items():
                replace_file(certificates[node].key_path, issued.key_pem())
                replace_file(certificates[node].cert_path, issued.pem())
            for node in fresh:
                assert wait_for_metric(cluster.nodes[node], RELOADS, 1, listener="cluster",
                                       result="ok") == 1
            port = int(cluster_address(cluster, leader).rpartition(":")[2])
            assert served_serial(port, new_ca, old_ca.issue("probe")) == fresh[leader].serial
            wait_acked_past(dict(acked))   # publishing goes on after the change

            # The restarted member accepts the new CA only: the leader must present its new one.
            cluster.nodes[restarted].stop()
            bundles[restarted].write_bytes(new_ca.pem())
            cluster.nodes[restarted].start()
            wait_acked_past(dict(acked))
        finally:
            stop.set()
            for thread in threads:
                thread.join(LOAD_DEADLINE)
        assert not errors, errors
        assert wait_replicated(cluster, list(NODES)) >= sum(acked.values())
    finally:
        cluster.stop()


# --------------------------------------------------------------------------
# Start-up.

def test_member_certificate_files_that_cannot_work_stop_start_up_naming_the_key(tmp_path: Path):
    (tmp_path / "pki").mkdir()
    ca = Authority(tmp_path / "pki", "members-ca")
    member = member_certificate(ca, "test-node")
    other = member_certificate(ca, "other")
    port = free_port()
    cluster = {"enabled": True, "port": port,
               "peers": [f"test-node=127.0.0.1:{port}", f"other=127.0.0.1:{free_port()}"]}
    cases = [
        ({**peer_tls_section(member, ca.cert_path), "ca_file": str(tmp_path / "nowhere.pem")},
         f"cluster.tls.ca_file: no such file: {tmp_path / 'nowhere.pem'}"),
        ({**peer_tls_section(member, ca.cert_path), "key_file": str(other.key_path)},
         f"tls error: cluster.tls: {member.cert_path} and {other.key_path}"),
    ]
    for number, (section, problem) in enumerate(cases):
        (tmp_path / f"node-{number}").mkdir()
        server = ServerProcess(tmp_path / f"node-{number}", {"cluster": {**cluster, "tls": section}})
        code, output = server.run_to_exit()
        assert code == 2 and problem in output, output
