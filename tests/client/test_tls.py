"""TLS options against the real server behind a TLS-terminating proxy.

The server itself speaks plaintext gRPC only; the proxy in front of it
terminates TLS (requiring a client certificate signed by the test CA), so the
SDK's TLS settings are exercised end to end. Certificates are made here with
the ``openssl`` command.
"""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from eventstream.client import NO_RETRY, AsyncClient, Client, Event, TLSConfig, UnavailableError


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.pem", cwd=directory)


def make_signed(directory: Path, name: str, ca: str, alt_names: str) -> None:
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
    (directory / f"{name}.ext").write_text(f"subjectAltName={alt_names}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
            cwd=directory)


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    make_ca(tmp_path, "ca")
    make_ca(tmp_path, "other-ca")
    make_signed(tmp_path, "server", "ca", "DNS:localhost,IP:127.0.0.1")
    make_signed(tmp_path, "client", "ca", "DNS:client")
    return tmp_path


@pytest.fixture
def tls_proxy(server, start_proxy, certs):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "server.pem", certs / "server.key")
    context.load_verify_locations(certs / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS
    context.set_alpn_protocols(["h2"])
    return start_proxy(server.target, tls=context)


def test_mutual_tls_publishes_and_subscribes(tls_proxy, certs):
    tls = TLSConfig.from_files(ca=certs / "ca.pem", cert=certs / "client.pem",
                               key=certs / "client.key")
    with Client(tls_proxy.target, tls=tls) as client:
        ack = client.publish(Event("tls/t", b"secret"))
        with client.subscribe("tls/#", start="earliest") as events:
            assert next(events).id == ack.id


async def test_the_async_client_verifies_a_server_name_override(tls_proxy, certs):
    tls = TLSConfig.from_files(ca=certs / "ca.pem", cert=certs / "client.pem",
                               key=certs / "client.key", server_name="localhost")
    async with AsyncClient(tls_proxy.target, tls=tls) as client:
        assert (await client.publish(Event("tls/a", b"x"))).id


@pytest.mark.parametrize("ca,client_cert", [("ca", False), ("other-ca", True)],
                         ids=["no-client-certificate", "untrusted-server"])
def test_a_failed_handshake_is_unavailable(tls_proxy, certs, ca, client_cert):
    tls = TLSConfig.from_files(ca=certs / f"{ca}.pem",
                               cert=certs / "client.pem" if client_cert else None,
                               key=certs / "client.key" if client_cert else None)
    with Client(tls_proxy.target, tls=tls, retry=NO_RETRY) as client, pytest.raises(UnavailableError):
        client.publish(Event("tls/t", b"x"))


def test_a_client_certificate_needs_its_key():
    with pytest.raises(ValueError, match="client_private_key"):
        TLSConfig(client_certificate=b"pem")
