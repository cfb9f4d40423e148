"""Certificates made by the tests themselves with ``cryptography``: CAs, leaves, expired ones.

Keys are P-256 (fast to make). Every certificate gets a fresh random serial,
so a test can tell which one a server serves.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import secrets
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Issued:
    """A certificate and its key, as objects and PEM files."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path

    @property
    def serial(self) -> int:
        """The certificate's serial number."""
        return self.certificate.serial_number

    def pem(self) -> bytes:
        """The certificate as PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The key as PEM (PKCS#8, unencrypted)."""
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Authority:
    """A CA that issues certificates into ``directory``.

    Args:
        directory: where the PEM files go.
        name: the CA's common name (and file name prefix).
    """

    def __init__(self, directory: Path, name: str = "test-ca") -> None:
        self.directory = directory
        self.name = name
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
        self.issued = self._write(name, certificate, key)

    @property
    def cert_path(self) -> Path:
        """The CA certificate's PEM file."""
        return self.issued.cert_path

    def pem(self) -> bytes:
        """The CA certificate as PEM."""
        return self.issued.pem()

    def issue(self, common_name: str, *, dns: tuple[str, ...] = (), ips: tuple[str, ...] = (),
              uris: tuple[str, ...] = (), server: bool = False, client: bool = False,
              expired: bool = False, file_name: str | None = None) -> Issued:
        """A leaf certificate signed by this CA.

        Args:
            common_name: the subject CN.
            dns: DNS subject alternative names.
            ips: IP address subject alternative names.
            uris: URI subject alternative names.
            server: for a server (serverAuth) rather than a client (clientAuth).
            client: with ``server``: for both (a cluster member serves and calls).
            expired: valid yesterday only.
            file_name: file name prefix (default: the CN).
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        start, end = ((now - datetime.timedelta(days=2), now - datetime.timedelta(days=1))
                      if expired else (now - datetime.timedelta(hours=1),
                                       now + datetime.timedelta(days=1)))
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        names += [x509.UniformResourceIdentifier(uri) for uri in uris]
        ca = self.issued
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if server and client
                else [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.key.public_key()), critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(ca.key, hashes.SHA256())
        return self._write(file_name or common_name, certificate, key)

    def server(self, file_name: str = "server") -> Issued:
        """A server certificate for 127.0.0.1 and localhost."""
        return self.issue("localhost", dns=("localhost",), ips=("127.0.0.1",), server=True,
                          file_name=file_name)

    def _write(self, name: str, certificate: x509.Certificate,
               key: ec.EllipticCurvePrivateKey) -> Issued:
        issued = Issued(certificate, key, self.directory / f"{name}.pem",
                        self.directory / f"{name}.key")
        issued.cert_path.write_bytes(issued.pem())
        issued.key_path.write_bytes(issued.key_pem())
        return issued


def served_serial(port: int, ca: Authority, client: Issued | None = None,
                  alpn: tuple[str, ...] = ("h2",)) -> int:
    """The serial of the certificate a TLS port on 127.0.0.1 serves (after a full handshake)."""
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    context.check_hostname = False
    if client is not None:
        context.load_cert_chain(client.cert_path, client.key_path)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def token_line(identity: str, token: str) -> str:
    """A tokens file line for ``token`` (its SHA-256, never the token)."""
    return f"{identity} sha256:{hashlib.sha256(token.encode()).hexdigest()}\n"


def new_token() -> str:
    """A random bearer token."""
    return secrets.token_hex(32)
