"""A test PKI and servers that serve TLS from it (certificates from :mod:`.certs`)."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventstream.client import TLSConfig

from .certs import Authority, Issued
from .server import ServerProcess

RELOAD_SECONDS = 0.1
"""How often the test servers look at their certificate and rules files."""


@dataclass
class Pki:
    """A CA with a server and a client certificate, and certificates it must refuse."""

    directory: Path
    ca: Authority
    other_ca: Authority
    server: Issued
    client: Issued

    @classmethod
    def make(cls, directory: Path) -> Pki:
        """Make every certificate in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        ca = Authority(directory, "ca")
        other = Authority(directory, "other-ca")
        return cls(directory, ca, other, ca.server(), ca.issue("client", dns=("client.test",)))

    def tls_section(self, client_auth: str = "require", **extra: Any) -> dict[str, Any]:
        """The server's ``tls`` config section."""
        return {"enabled": True, "cert_file": str(self.server.cert_path),
                "key_file": str(self.server.key_path), "client_ca_file": str(self.ca.cert_path),
                "client_auth": client_auth, "reload_interval_seconds": RELOAD_SECONDS, **extra}

    def client_tls(self, client: Issued | None = None, ca: Authority | None = None) -> TLSConfig:
        """SDK TLS settings trusting ``ca`` (default: the CA), presenting ``client``."""
        return TLSConfig.from_files(ca=(ca or self.ca).cert_path,
                                    cert=client.cert_path if client else None,
                                    key=client.key_path if client else None,
                                    server_name="localhost")

    def context(self, client: Issued | None = None) -> ssl.SSLContext:
        """A client SSLContext for the TCP port, trusting the CA, presenting ``client``."""
        context = ssl.create_default_context(cafile=str(self.ca.cert_path))
        if client is not None:
            context.load_cert_chain(client.cert_path, client.key_path)
        return context


def replace_file(path: Path, data: bytes) -> None:
    """Replace a file at once, as a Secret volume update does (a rename, never a partial write)."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


def tls_server(start_server: Callable[..., ServerProcess], pki: Pki, client_auth: str = "require",
               **config: Any) -> ServerProcess:
    """A server serving TLS from ``pki`` on its gRPC and TCP ports."""
    return start_server({"tls": pki.tls_section(client_auth), **config})


def tls_refused(port: int, context: ssl.SSLContext) -> bool:
    """True when a TLS client with ``context`` cannot exchange data with ``port``.

    With TLS 1.3 the server checks a client certificate after the client
    thinks the handshake is done, so the refusal shows on the first read.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"ESA1")
            return sock.recv(1) == b""
    except (ssl.SSLError, ConnectionError):
        return True
