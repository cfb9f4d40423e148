"""TLS on the gRPC and TCP ports of the real server, with certificates the tests make.

Who is refused: a client without a certificate, with one from another CA,
with an expired one, and a plaintext client; each fails cleanly (the
server keeps serving the others). On TCP each refusal is counted in
``eventstream_auth_failures_total``; grpc does not tell the server about
handshakes it refused, so gRPC refusals are seen by the client only.
Rotation: replaced files are served to new connections while open ones go on.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from eventstream.client import NO_RETRY, Client, Event, UnavailableError
from eventstream.client.frames import TcpFrameSender
from tests.support.certs import new_token, served_serial, token_line
from tests.support.recipes import grpcurl_recipes
from tests.support.server import http_get, metric, wait_for_metric
from tests.support.tls import Pki, replace_file, tls_refused, tls_server

FAILURES = "eventstream_auth_failures_total"


@pytest.fixture
def pki(tmp_path) -> Pki:
    return Pki.make(tmp_path / "pki")


def refused_clients(pki: Pki) -> dict[str, object]:
    return {
        "no-certificate": None,
        "other-ca": pki.other_ca.issue("intruder"),
        "expired": pki.ca.issue("late", expired=True),
    }


def test_mutual_tls_clients_publish_and_subscribe_over_grpc_and_tcp(start_server, pki):
    server = tls_server(start_server, pki)
    with Client(server.target, tls=pki.client_tls(pki.client)) as client:
        ack = client.publish(Event("secure/grpc", b"g"))
        with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, tls=pki.context(pki.client),
                            server_hostname="localhost") as sender:
            sender.send("secure/tcp", b"t")
            [(_, offset)] = sender.flush()
        with client.subscribe("secure/#", start="earliest") as events:
            received = {next(events).payload for _ in range(2)}
    assert received == {b"g", b"t"} and ack.offset >= 0 and offset >= 0


def test_server_only_tls_needs_no_client_certificate(start_server, pki):
    server = tls_server(start_server, pki, client_auth="none")
    with Client(server.target, tls=pki.client_tls()) as client:
        assert client.publish(Event("secure/one-way", b"x")).offset >= 0
    with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, tls=pki.context(),
                        server_hostname="localhost") as sender:
        sender.send("secure/one-way", b"y")
        assert len(sender.flush()) == 1


@pytest.mark.parametrize("case", ["no-certificate", "other-ca", "expired"])
def test_grpc_refuses_a_client_without_a_valid_certificate(start_server, pki, case):
    server = tls_server(start_server, pki)
    client_cert = refused_clients(pki)[case]
    with Client(server.target, tls=pki.client_tls(client_cert), retry=NO_RETRY) as client, \
            pytest.raises(UnavailableError):
        client.publish(Event("secure/x", b"x"), timeout=10)
    with Client(server.target, tls=pki.client_tls(pki.client)) as client:
        assert client.publish(Event("secure/x", b"ok")).offset >= 0   # others are served


@pytest.mark.parametrize("case,reason", [("no-certificate", "CREDENTIALS_MISSING"),
                                         ("other-ca", "CERTIFICATE_INVALID"),
                                         ("expired", "CERTIFICATE_INVALID")])
def test_tcp_refuses_a_client_without_a_valid_certificate_and_counts_it(start_server, pki, case,
                                                                       reason):
    server = tls_server(start_server, pki)
    assert tls_refused(server.tcp_port, pki.context(refused_clients(pki)[case]))
    assert wait_for_metric(server, FAILURES, 1, transport="tcp", reason=reason) == 1
    with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, tls=pki.context(pki.client),
                        server_hostname="localhost") as sender:
        sender.send("secure/x", b"ok")
        assert len(sender.flush()) == 1


def test_a_client_that_does_not_trust_the_server_is_refused(start_server, pki):
    server = tls_server(start_server, pki, client_auth="none")
    with Client(server.target, tls=pki.client_tls(ca=pki.other_ca), retry=NO_RETRY) as client, \
            pytest.raises(UnavailableError):
        client.publish(Event("secure/x", b"x"), timeout=10)


def test_plaintext_to_a_tls_port_fails_cleanly(start_server, pki):
    server = tls_server(start_server, pki)
    with Client(server.target, retry=NO_RETRY) as client, pytest.raises(UnavailableError):
        client.publish(Event("plain/x", b"x"), timeout=10)
    with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=10) as sock:
        sock.sendall(b"\x00\x00\x00\x0c\x02\x00\x07plain/xab")   # a valid plaintext frame
        try:
            assert sock.recv(4096) == b""   # closed, nothing queued
        except ConnectionResetError:
            pass
    assert wait_for_metric(server, FAILURES, 1, transport="tcp", reason="TLS_HANDSHAKE") == 1
    assert metric(server, "eventstream_ingest_frames_total", transport="tcp") == 0
    with Client(server.target, tls=pki.client_tls(pki.client)) as client:
        assert client.publish(Event("secure/x", b"ok")).offset >= 0


def test_a_broken_certificate_file_keeps_the_one_in_use(start_server, pki):
    server = tls_server(start_server, pki)
    before = served_serial(server.grpc_port, pki.ca, pki.client)
    replace_file(pki.server.cert_path, b"not a certificate")
    assert wait_for_metric(server, "eventstream_tls_reloads_total", 1, listener="public",
                           result="error") == 1
    assert served_serial(server.grpc_port, pki.ca, pki.client) == before
    with Client(server.target, tls=pki.client_tls(pki.client)) as client:
        assert client.publish(Event("secure/x", b"ok")).offset >= 0


PUBLISHERS = 2
ROTATION_DEADLINE = 60.0


def test_rotation_under_load_serves_new_connections_and_loses_no_publish(start_server, pki):
    server = tls_server(start_server, pki)
    old = pki.server.serial
    assert served_serial(server.grpc_port, pki.ca, pki.client) == old
    assert served_serial(server.tcp_port, pki.ca, pki.client, alpn=()) == old
    stop = threading.Event()
    acked = [0] * PUBLISHERS
    tcp_acked = [0]
    errors: list[BaseException] = []

    def grpc_load(slot: int) -> None:
        # One channel throughout: its connection was made with the old certificate.
        try:
            with Client(server.target, tls=pki.client_tls(pki.client)) as client:
                while not stop.is_set():
                    results = client.publish_batch(
                        [Event("rotate/grpc", b"%d" % i) for i in range(10)])
                    failed = [result.error for result in results if not result.ok]
                    assert not failed, failed
                    acked[slot] += len(results)
        except BaseException as error:
            errors.append(error)

    def tcp_load() -> None:
        try:
            with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True,
                                tls=pki.context(pki.client), server_hostname="localhost") as sender:
                while not stop.is_set():
                    for i in range(10):
                        sender.send("rotate/tcp", b"%d" % i)
                    tcp_acked[0] += len(sender.flush())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=grpc_load, args=(slot,)) for slot in range(PUBLISHERS)]
    threads.append(threading.Thread(target=tcp_load))
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + ROTATION_DEADLINE
        while min(acked) == 0 or tcp_acked[0] == 0:   # load is flowing on the old certificate
            assert time.monotonic() < deadline and not errors, errors
            time.sleep(0.05)
        fresh = pki.ca.server("server-next")
        replace_file(pki.server.key_path, fresh.key_pem())
        replace_file(pki.server.cert_path, fresh.pem())
        assert wait_for_metric(server, "eventstream_tls_reloads_total", 1, listener="public",
                               result="ok") == 1
        assert served_serial(server.grpc_port, pki.ca, pki.client) == fresh.serial
        assert served_serial(server.tcp_port, pki.ca, pki.client, alpn=()) == fresh.serial
        with Client(server.target, tls=pki.client_tls(pki.client)) as client:   # a new connection
            assert client.publish(Event("rotate/new", b"x")).offset >= 0
        marks = list(acked), tcp_acked[0]
        while min(a - b for a, b in zip(acked, marks[0])) == 0 or tcp_acked[0] == marks[1]:
            assert time.monotonic() < deadline and not errors, errors   # old connections go on
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(ROTATION_DEADLINE)
    assert not errors, errors


SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
DOC_TARGET = "events.example.com:9200"


def test_the_grpcurl_tls_recipes_run_as_written(start_server, pki, tmp_path):
    assert shutil.which("grpcurl"), "grpcurl not on PATH: run `make tools` (make test does)"
    recipes = grpcurl_recipes(SECURITY_DOC, "\ngrpcurl (with TLS")
    assert len(recipes) == 3 and sum("-cert " in recipe for recipe in recipes) == 2
    token = new_token()
    tokens = tmp_path / "tokens"
    tokens.write_text(token_line("app", token))
    mutual = tls_server(start_server, pki)
    with_token = tls_server(start_server, pki, client_auth="none", ingest={"udp_enabled": False},
                            auth={"enabled": True, "tokens_file": str(tokens), "identities": [
                                {"name": "app", "publish": {"allow": ["orders/#"]}}]})
    outputs = []
    for recipe in recipes:
        server = mutual if "-cert " in recipe else with_token
        result = subprocess.run(["bash", "-c", recipe.replace(DOC_TARGET, server.target)],
                                cwd=pki.directory, env={**os.environ, "TOKEN": token},
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{recipe}\n{result.stderr}"
        outputs.append(result.stdout)
    assert "eventstream.v1.PublishService" in outputs[0]
    assert all('"ack"' in output for output in outputs[1:]), outputs


def test_a_draining_server_stops_taking_tls_connections_and_exits_cleanly(start_server, pki):
    server = tls_server(start_server, pki, server={"drain_grace_seconds": 3,
                                                   "drain_timeout_seconds": 10})
    with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, tls=pki.context(pki.client),
                        server_hostname="localhost") as sender:
        sender.send("drain/x", b"x")
        assert len(sender.flush()) == 1
    server.signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while http_get(f"{server.http}/health", timeout=2)[0] != 503:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.tcp_port), timeout=10).close()
    assert server.process.wait(30) == 0


def test_a_key_that_is_not_the_certificates_stops_start_up(start_server, pki):
    other = pki.ca.issue("other", server=True)
    server = start_server({"tls": {**pki.tls_section(), "key_file": str(other.key_path)}},
                          wait=False)
    assert server.wait_exit() == 2
    log = server.log()
    assert "tls error" in log and str(pki.server.cert_path) in log and str(other.key_path) in log
