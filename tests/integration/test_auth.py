"""Authentication against the real server: client certificates, bearer tokens, UDP sources.

A refused client gets UNAUTHENTICATED (gRPC) or an ERROR frame (TCP),
counted in ``eventstream_auth_failures_total{transport,reason}``; the
server goes on serving the others.
"""

from __future__ import annotations

import socket

import grpc
import pytest

from eventstream.client import (
    NO_RETRY,
    Client,
    Event,
    PermissionDeniedError,
    UnauthenticatedError,
)
from eventstream.client.frames import FrameError, TcpFrameSender, UdpFrameSender
from eventstream.v1 import cluster_pb2, cluster_pb2_grpc
from tests.support.certs import new_token, token_line
from tests.support.server import metric, wait_for_metric
from tests.support.tls import Pki, replace_file, tls_server

FAILURES = "eventstream_auth_failures_total"
WRITER = {"name": "writer", "publish": {"allow": ["orders/#"]},
          "subscribe": {"allow": ["orders/#"]}}


@pytest.fixture
def token(tmp_path):
    """A token of identity ``writer`` and the tokens file that holds its hash."""
    value = new_token()
    path = tmp_path / "tokens"
    path.write_text("# identity sha256:<hex>\n" + token_line("writer", value))
    return value, path


def auth_section(tokens_file=None, identities=(WRITER,), **extra):
    section = {"enabled": True, "identities": list(identities), "reload_interval_seconds": 0.1,
               **extra}
    if tokens_file is not None:
        section["tokens_file"] = str(tokens_file)
    return section


@pytest.fixture
def token_server(start_server, token):
    return start_server({"auth": auth_section(token[1]), "ingest": {"udp_enabled": False}})


def test_a_valid_token_is_served_over_grpc(token_server, token):
    with Client(token_server.target, token=token[0]) as client:
        ack = client.publish(Event("orders/1", b"x"))
        with client.subscribe("orders/#", start="earliest") as events:
            assert next(events).id == ack.id


@pytest.mark.parametrize("credentials,reason", [
    (None, "CREDENTIALS_MISSING"),
    ("wrong-token", "TOKEN_INVALID"),
])
def test_grpc_without_a_valid_token_is_unauthenticated_and_counted(token_server, credentials,
                                                                  reason):
    with Client(token_server.target, token=credentials, retry=NO_RETRY) as client:
        with pytest.raises(UnauthenticatedError) as refused:
            client.publish(Event("orders/1", b"x"))
        assert refused.value.reason == reason
        with pytest.raises(UnauthenticatedError):
            client.cluster_status()
        with pytest.raises(UnauthenticatedError), client.subscribe("orders/#") as events:
            next(events)
    assert wait_for_metric(token_server, FAILURES, 3, transport="grpc", reason=reason) == 3


def test_a_header_that_is_not_a_bearer_token_is_refused(token_server, token):
    with grpc.insecure_channel(token_server.target) as channel:
        stub = cluster_pb2_grpc.ClusterServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetClusterStatus(cluster_pb2.GetClusterStatusRequest(), timeout=10,
                                  metadata=[("authorization", f"Basic {token[0]}")])
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer" in refused.value.details()


def test_tcp_token_handshake(token_server, token):
    with TcpFrameSender("127.0.0.1", token_server.tcp_port, acked=True, token=token[0]) as sender:
        sender.send("orders/tcp", b"x")
        assert len(sender.flush()) == 1
    with pytest.raises(FrameError) as refused, \
            TcpFrameSender("127.0.0.1", token_server.tcp_port, acked=True,
                           token="wrong-token") as sender:
        sender.send("orders/tcp", b"x")
        sender.flush()
    assert refused.value.reason == "TOKEN_INVALID"
    assert wait_for_metric(token_server, FAILURES, 1, transport="tcp", reason="TOKEN_INVALID") == 1


@pytest.mark.parametrize("acked", [True, False], ids=["acked", "fire-and-forget"])
def test_tcp_without_credentials_gets_an_error_and_is_counted(token_server, acked):
    with pytest.raises(FrameError) as refused, \
            TcpFrameSender("127.0.0.1", token_server.tcp_port, acked=acked) as sender:
        sender.send("orders/tcp", b"x")
        sender.flush()
    assert refused.value.reason == "CREDENTIALS_MISSING"
    assert wait_for_metric(token_server, FAILURES, 1, transport="tcp",
                           reason="CREDENTIALS_MISSING") == 1
    assert metric(token_server, "eventstream_events_committed_total", transport="tcp") == 0


def test_a_replaced_tokens_file_takes_effect_without_a_restart(token_server, token, tmp_path):
    fresh = new_token()
    replace_file(token[1], token_line("writer", fresh).encode())
    assert wait_for_metric(token_server, "eventstream_auth_reloads_total", 1, result="ok") == 1
    with Client(token_server.target, token=fresh) as client:
        assert client.publish(Event("orders/1", b"x")).offset >= 0
    with Client(token_server.target, token=token[0], retry=NO_RETRY) as client, \
            pytest.raises(UnauthenticatedError):
        client.publish(Event("orders/1", b"x"))


def test_a_tokens_file_with_a_plain_token_stops_start_up(start_server, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("writer s3cr3t\n")
    server = start_server({"auth": auth_section(tokens), "ingest": {"udp_enabled": False}},
                          wait=False)
    assert server.wait_exit() == 2
    assert f"{tokens}:1: the hash must be 'sha256:'" in server.log()


@pytest.fixture
def pki(tmp_path) -> Pki:
    return Pki.make(tmp_path / "pki")


def test_a_client_certificate_names_its_identity(start_server, pki):
    # The client certificate's CN is "client" and its SAN "client.test".
    by_san = {**WRITER, "certificate_names": ["client.test"]}
    server = tls_server(start_server, pki, auth=auth_section(identities=[by_san]),
                        ingest={"udp_enabled": False})
    with Client(server.target, tls=pki.client_tls(pki.client)) as client:
        assert client.publish(Event("orders/1", b"x")).offset >= 0
        with pytest.raises(PermissionDeniedError):
            client.publish(Event("billing/1", b"x"))   # the identity's rules apply
    with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, tls=pki.context(pki.client),
                        server_hostname="localhost") as sender:
        sender.send("orders/tcp", b"x")
        assert len(sender.flush()) == 1
    stranger = pki.ca.issue("stranger")   # verified, but no identity has its names
    with Client(server.target, tls=pki.client_tls(stranger), retry=NO_RETRY) as client, \
            pytest.raises(PermissionDeniedError):
        client.publish(Event("orders/1", b"x"))


def send_datagrams(port: int, count: int) -> None:
    with UdpFrameSender("127.0.0.1", port) as sender:
        for seq in range(count):
            sender.send("udp/x", b"%d" % seq)
            sender.flush()   # one datagram each


def test_udp_takes_datagrams_from_allowed_networks_only(start_server, token):
    refused = start_server({"ingest": {"udp_allowed_networks": ["10.0.0.0/8", "fd00::/8"]},
                            "auth": auth_section(token[1])})
    send_datagrams(refused.udp_port, 5)
    assert wait_for_metric(refused, "eventstream_ingest_datagrams_dropped_total", 5,
                           reason="SOURCE_NOT_ALLOWED") == 5
    assert metric(refused, "eventstream_events_committed_total", transport="udp") == 0
    allowed = start_server({"ingest": {"udp_allowed_networks": ["127.0.0.0/8"]},
                            "auth": auth_section(token[1])})
    send_datagrams(allowed.udp_port, 5)
    assert wait_for_metric(allowed, "eventstream_events_committed_total", 5, transport="udp") == 5
    assert metric(allowed, "eventstream_ingest_datagrams_dropped_total",
                  reason="SOURCE_NOT_ALLOWED") == 0


def test_auth_without_a_udp_rule_stops_start_up(start_server, token):
    server = start_server({"auth": auth_section(token[1])}, wait=False)
    assert server.wait_exit() == 2
    assert "ingest.udp_allowed_networks" in server.log()


def test_udp_can_be_turned_off(token_server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", token_server.udp_port))   # the server did not take the port
