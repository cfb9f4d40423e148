"""Channel options: TLS material and the channels built from it."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

ChannelOption = tuple[str, Any]

# Deliveries are bounded by the server (events per batch times its largest
# payload); the client accepts whatever the server chose to send. A lost
# connection is tried again after 0.1 s, then at most every second: with
# gRPC's defaults (1 s, growing to 120 s) a client found a server restarted
# after a 2.5 s outage 2-4 s late, with these within about a second.
_DEFAULT_OPTIONS: tuple[ChannelOption, ...] = (
    ("grpc.max_receive_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


@dataclass(frozen=True)
class TLSConfig:
    """TLS for the channel. ``TLSConfig()`` verifies the server with the system's roots.

    Attributes:
        root_certificates: PEM of the CAs that may sign the server's
            certificate; None uses the system's roots.
        client_certificate: PEM certificate chain for mutual TLS (with the key).
        client_private_key: PEM private key of ``client_certificate``.
        server_name: the name to verify in the server's certificate when it
            differs from the target's host (e.g. when connecting by IP address).

    Example:
        >>> tls = TLSConfig.from_files(ca="ca.pem", cert="client.pem", key="client.key")
        >>> client = Client("events.example.com:9200", tls=tls)
    """

    root_certificates: bytes | None = None
    client_certificate: bytes | None = None
    client_private_key: bytes | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.client_certificate is None) != (self.client_private_key is None):
            raise ValueError("client_certificate and client_private_key go together")

    @classmethod
    def from_files(cls, ca: str | Path | None = None, cert: str | Path | None = None,
                   key: str | Path | None = None, server_name: str | None = None) -> TLSConfig:
        """Read PEM files: the CA bundle and, for mutual TLS, the client's cert and key."""
        def read(path: str | Path | None) -> bytes | None:
            return None if path is None else Path(path).read_bytes()

        return cls(read(ca), read(cert), read(key), server_name)

    def credentials(self) -> grpc.ChannelCredentials:
        """The gRPC channel credentials."""
        return grpc.ssl_channel_credentials(self.root_certificates, self.client_private_key,
                                            self.client_certificate)

    def options(self) -> tuple[ChannelOption, ...]:
        """Channel options this config needs."""
        if self.server_name is None:
            return ()
        return (("grpc.ssl_target_name_override", self.server_name),)


def channel_options(tls: TLSConfig | None,
                    extra: Sequence[ChannelOption]) -> list[ChannelOption]:
    """The SDK's defaults, then TLS's, then the caller's (later ones win)."""
    return [*_DEFAULT_OPTIONS, *(tls.options() if tls else ()), *extra]


def sync_channel(target: str, tls: TLSConfig | None,
                 options: Sequence[ChannelOption]) -> grpc.Channel:
    """A blocking channel; insecure when ``tls`` is None."""
    opts = channel_options(tls, options)
    return (grpc.secure_channel(target, tls.credentials(), opts) if tls
            else grpc.insecure_channel(target, opts))


def async_channel(target: str, tls: TLSConfig | None, options: Sequence[ChannelOption],
                  interceptors: Sequence[grpc.aio.ClientInterceptor]) -> grpc.aio.Channel:
    """A grpc.aio channel; insecure when ``tls`` is None."""
    opts = channel_options(tls, options)
    if tls:
        return grpc.aio.secure_channel(target, tls.credentials(), opts,
                                       interceptors=interceptors or None)
    return grpc.aio.insecure_channel(target, opts, interceptors=interceptors or None)


_HEALTH_CHECK = "/grpc.health.v1.Health/Check"


class Pause:
    """Waits between the attempts of a blocking channel, keeping its reconnection going.

    A blocking channel handles the outcome of its connection attempts only
    while a call is in flight on it: a client that merely slept between failed
    attempts sometimes found a restarted server more than 8 s late. So while
    it waits, a health check that waits for the connection is in flight (one
    small request once the channel connects; cancelled at the end of the wait).

    Args:
        channel: the channel, without interceptors (they do not see the check).
    """

    def __init__(self, channel: grpc.Channel) -> None:
        self._check: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            _HEALTH_CHECK)

    def __call__(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Wait ``seconds``, or less when ``stop`` is set."""
        check = self._check.future(b"", timeout=seconds, wait_for_ready=True)
        try:
            if stop is None:
                time.sleep(seconds)
            else:
                stop.wait(seconds)
        finally:
            check.cancel()
