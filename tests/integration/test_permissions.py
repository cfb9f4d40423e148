"""The permission matrix: every RPC and the TCP path, for an allowed and a denied identity.

One server with mutual TLS and authentication; each identity is a client
certificate (its SAN names the identity). ``writer`` may use ``orders/#``
but not ``orders/secret/#`` and consume as ``billing-*`` groups;
``outsider`` may use ``other/#`` only; ``everyone`` may publish to ``#``,
which does not reach dead-letter topics.
"""

from __future__ import annotations

import socket
import ssl

import pytest
import yaml

from eventstream.client import NO_RETRY, Client, Event, EventStreamError, PermissionDeniedError
from eventstream.client.frames import FrameError, TcpFrameSender, encode_frame
from tests.support.server import metric, wait_for_metric
from tests.support.tls import Pki, replace_file, tls_server

WRITER = {"name": "writer", "certificate_names": ["writer.test"],
          "publish": {"allow": ["orders/#"], "deny": ["orders/secret/#"]},
          "subscribe": {"allow": ["orders/#"], "deny": ["orders/secret/#"]},
          "consume": {"allow": ["orders/#"], "deny": ["orders/secret/#"], "groups": ["billing-*"]}}
OUTSIDER = {"name": "outsider", "certificate_names": ["outsider.test"],
            "publish": {"allow": ["other/#"]}, "subscribe": {"allow": ["other/#"]},
            "consume": {"allow": ["other/#"], "groups": ["*"]}}
EVERYONE = {"name": "everyone", "certificate_names": ["everyone.test"],
            "publish": {"allow": ["#"]}}
ADMIN = {"name": "operator", "certificate_names": ["operator.test"], "admin": True}
DENIED = "eventstream_auth_denied_total"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    pki = Pki.make(tmp_path_factory.mktemp("pki"))
    for name in ("writer", "outsider", "everyone", "operator"):
        pki.ca.issue(name, dns=(f"{name}.test",))
    return pki


@pytest.fixture
def server(start_server, pki):
    return tls_server(start_server, pki, ingest={"udp_enabled": False}, auth={
        "enabled": True, "reload_interval_seconds": 0.1,
        "identities": [WRITER, OUTSIDER, EVERYONE, ADMIN]})


def client(server, pki: Pki, name: str) -> Client:
    issued = pki.ca.issue(name, dns=(f"{name}.test",), file_name=f"{name}-client")
    return Client(server.target, tls=pki.client_tls(issued), retry=NO_RETRY)


def sender(server, pki: Pki, name: str, acked: bool = True) -> TcpFrameSender:
    issued = pki.ca.issue(name, dns=(f"{name}.test",), file_name=f"{name}-tcp")
    return TcpFrameSender("127.0.0.1", server.tcp_port, acked=acked,
                          tls=pki.context(issued), server_hostname="localhost")


def test_publish(server, pki):
    with client(server, pki, "writer") as writer:
        assert writer.publish(Event("orders/1", b"x")).offset >= 0
        with pytest.raises(PermissionDeniedError) as denied:
            writer.publish(Event("orders/secret/1", b"x"))
    assert "'orders/secret/1'" in denied.value.message and denied.value.field == "event.topic"
    with client(server, pki, "outsider") as outsider, pytest.raises(PermissionDeniedError):
        outsider.publish(Event("orders/1", b"x"))
    assert wait_for_metric(server, DENIED, 1, identity="outsider", access="publish") == 1


def test_publish_batch_refuses_only_the_denied_events(server, pki):
    events = [Event("orders/1", b"a"), Event("orders/secret/1", b"b"), Event("orders/2", b"c")]
    with client(server, pki, "writer") as writer:
        results = writer.publish_batch(events)
    assert [result.ok for result in results] == [True, False, True]
    assert results[1].error.reason == "PERMISSION_DENIED"
    assert results[1].error.field == "events[1].topic"
    with client(server, pki, "outsider") as outsider:
        assert not any(result.ok for result in outsider.publish_batch(events))


def test_publish_stream(server, pki):
    with client(server, pki, "writer") as writer, writer.publish_stream() as stream:
        assert stream.send(Event("orders/1", b"x")).result(timeout=30).offset >= 0
    with client(server, pki, "outsider") as outsider, outsider.publish_stream() as stream:
        results = stream.send_batch([Event("orders/1", b"x")]).result(timeout=30)
    assert results[0].error.reason == "PERMISSION_DENIED"


def test_dead_letter_topics_need_their_own_allow_pattern(server, pki):
    with client(server, pki, "everyone") as everyone:
        assert everyone.publish(Event("anything/1", b"x")).offset >= 0
        with pytest.raises(PermissionDeniedError):
            everyone.publish(Event("dead-letter/billing", b"forged"))


def test_subscribe_is_granted_whole_or_refused(server, pki):
    with client(server, pki, "writer") as writer:
        ack = writer.publish(Event("orders/eu/1", b"x"))
        with writer.subscribe("orders/eu/*", start="earliest") as events:
            assert next(events).id == ack.id
        # orders/# would include orders/secret/#: refused, not filtered.
        with pytest.raises(PermissionDeniedError) as denied, \
                writer.subscribe("orders/eu/*", "orders/#") as events:
            next(events)
    assert denied.value.field == "patterns[1]"
    assert "'orders/#' overlaps 'orders/secret/#'" in denied.value.message
    with client(server, pki, "outsider") as outsider, pytest.raises(PermissionDeniedError), \
            outsider.subscribe("orders/eu/*") as events:
        next(events)
    assert wait_for_metric(server, DENIED, 1, identity="outsider", access="subscribe") == 1


def test_consume_checks_the_group_and_the_patterns(server, pki):
    with client(server, pki, "writer") as writer:
        ack = writer.publish(Event("orders/eu/2", b"x"))
        with writer.consume("billing-eu", "orders/eu/#", start="earliest") as consumer:
            event = next(iter(consumer))
            event.ack()
            assert event.id == ack.id
        with pytest.raises(PermissionDeniedError) as group, \
                writer.consume("payroll", "orders/eu/#") as consumer:
            next(iter(consumer))
        with pytest.raises(PermissionDeniedError) as pattern, \
                writer.consume("billing-eu", "orders/#") as consumer:
            next(iter(consumer))
    assert group.value.field == "start.group" and "'payroll'" in group.value.message
    assert pattern.value.field == "start.patterns[0]"
    with client(server, pki, "outsider") as outsider, pytest.raises(PermissionDeniedError), \
            outsider.consume("billing-eu", "orders/eu/#") as consumer:
        next(iter(consumer))


def test_cluster_status_needs_an_identity_only(server, pki):
    for name in ("writer", "outsider"):
        with client(server, pki, name) as any_identity:
            assert any_identity.cluster_status().node_id


@pytest.mark.parametrize("call", [
    lambda c: c.add_member("n2", "127.0.0.1:1"), lambda c: c.promote_learner("n2"),
    lambda c: c.remove_member("n2"), lambda c: c.transfer_leadership()],
    ids=["AddMember", "PromoteLearner", "RemoveMember", "TransferLeadership"])
def test_cluster_changes_need_the_admin_permission(server, pki, call):
    with client(server, pki, "writer") as writer, pytest.raises(PermissionDeniedError) as denied:
        call(writer)
    assert "'writer' lacks the admin permission" in denied.value.message
    assert wait_for_metric(server, DENIED, 1, identity="writer", access="admin") >= 1
    # The admin identity passes the check: this node runs alone, so nothing can change.
    with client(server, pki, "operator") as operator, pytest.raises(EventStreamError) as refused:
        call(operator)
    assert refused.value.reason == "NOT_REPLICATED"


def test_tcp_acknowledged(server, pki):
    with sender(server, pki, "writer") as allowed:
        allowed.send("orders/tcp", b"x")
        assert len(allowed.flush()) == 1
    with pytest.raises(FrameError) as denied, sender(server, pki, "outsider") as refused:
        refused.send("other/tcp", b"ok")
        refused.send("orders/tcp", b"x")
        refused.flush()
    assert denied.value.reason == "PERMISSION_DENIED" and "'orders/tcp'" in str(denied.value)
    assert wait_for_metric(server, DENIED, 1, identity="outsider", access="publish") == 1
    # The whole batch is refused.
    assert metric(server, "eventstream_events_committed_total", transport="tcp") == 1


def read_error(sock: ssl.SSLSocket) -> tuple[str, str]:
    """(reason, text) of the ERROR the server sends before it closes."""
    inbox = b""
    while chunk := sock.recv(65536):
        inbox += chunk
    assert inbox and inbox[4] == 2, inbox
    reason_len = inbox[13]
    return inbox[14:14 + reason_len].decode(), inbox[14 + reason_len:].decode()


def test_tcp_fire_and_forget(server, pki):
    issued = pki.ca.issue("outsider", dns=("outsider.test",), file_name="outsider-raw")
    with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=30) as raw, \
            pki.context(issued).wrap_socket(raw, server_hostname="localhost") as sock:
        # TLS has no half-close here: the client waits for the answer rather
        # than ending its side (docs/security.md).
        sock.sendall(encode_frame("other/tcp", b"ok") + encode_frame("orders/tcp", b"x"))
        reason, text = read_error(sock)
    assert reason == "PERMISSION_DENIED" and "frame 1: publishing to 'orders/tcp'" in text
    # The frame before the refused one is kept.
    assert wait_for_metric(server, "eventstream_events_committed_total", 1, transport="tcp") == 1
    with sender(server, pki, "writer", acked=False) as allowed:
        allowed.send("orders/tcp", b"x")
    assert wait_for_metric(server, "eventstream_events_committed_total", 2, transport="tcp") == 2


def test_changed_rules_apply_without_a_restart(server, pki):
    with client(server, pki, "outsider") as outsider:
        with pytest.raises(PermissionDeniedError):
            outsider.publish(Event("orders/1", b"x"))
        config = yaml.safe_load(server.config_path.read_text())
        config["auth"]["identities"][1]["publish"]["allow"].append("orders/#")
        replace_file(server.config_path, yaml.safe_dump(config).encode())
        assert wait_for_metric(server, "eventstream_auth_reloads_total", 1, result="ok") == 1
        assert outsider.publish(Event("orders/1", b"x")).offset >= 0
        config["auth"]["identities"][1]["publish"]["allow"] = ["not a pattern/#/x"]
        replace_file(server.config_path, yaml.safe_dump(config).encode())
        assert wait_for_metric(server, "eventstream_auth_reloads_total", 1, result="error") == 1
        assert outsider.publish(Event("orders/2", b"x")).offset >= 0   # the rules in force stay
