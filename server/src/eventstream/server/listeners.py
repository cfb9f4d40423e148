"""The node's listeners, and what to tell the user when one cannot listen.

Before anything starts, :func:`check_listeners` binds every configured port
once and reports, one line per listener, each that cannot be used: which port,
why, and which flag, config key or environment variable moves it. While the
node starts, :func:`listening` turns a listener's bind failure (one that came
after the check) into the same message.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from .config.model import Config


@dataclass(frozen=True)
class Listener:
    """One listening socket of the node and the settings that place it.

    Attributes:
        name: what listens, as the start-up log says it.
        key: the config key of its port.
        flag: the command-line flag of its port.
        kind: ``socket.SOCK_STREAM`` or ``socket.SOCK_DGRAM``.
    """

    name: str
    key: str
    flag: str
    kind: int

    @property
    def env(self) -> str:
        """The environment variable of its port."""
        return env_name(self.key)

    def port(self, config: Config) -> int:
        """The configured port."""
        section, _, key = self.key.partition(".")
        return int(getattr(getattr(config, section), key))


def env_name(key: str) -> str:
    """``EVENTSTREAM_<SECTION>__<KEY>`` of a config key."""
    section, _, name = key.partition(".")
    return f"EVENTSTREAM_{section.upper()}__{name.upper()}"


GRPC = Listener("gRPC", "server.grpc_port", "--grpc-port", socket.SOCK_STREAM)
HTTP = Listener("HTTP", "metrics.port", "--http-port", socket.SOCK_STREAM)
TCP = Listener("TCP frames", "server.tcp_port", "--tcp-port", socket.SOCK_STREAM)
UDP = Listener("UDP frames", "server.udp_port", "--udp-port", socket.SOCK_DGRAM)
LISTENERS = (GRPC, HTTP, TCP, UDP)


class ListenError(Exception):
    """Listeners cannot listen; ``problems`` has one line per listener."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def explain(listener: Listener, host: str, port: int, error: OSError) -> str:
    """One line: which listener cannot listen where, why, and what moves it."""
    protocol = "UDP" if listener.kind == socket.SOCK_DGRAM else "TCP"
    move = (f"choose another with {listener.flag} PORT (config key {listener.key}, "
            f"env {listener.env})")
    if error.errno == errno.EADDRINUSE:
        return (f"{listener.name}: {protocol} port {port} on {host} is already in use "
                f"(another eventstream-server?); {move}")
    if error.errno == errno.EACCES:
        return (f"{listener.name}: no permission to listen on {protocol} port {port} "
                f"(ports below 1024 need privileges); {move}")
    where = f"{listener.name}: cannot listen on {host}:{port}"
    if error.errno == errno.EADDRNOTAVAIL or isinstance(error, socket.gaierror):
        return (f"{where}: {host} is not an address of this machine; change it with --host "
                f"(config key server.host, env {env_name('server.host')})")
    return f"{where}: {error.strerror or error}; {move}"


def _try_bind(host: str, port: int, kind: int) -> None:
    """Bind (and listen on) ``host:port`` as the listener will, then let it go."""
    for family, _, _, _, address in socket.getaddrinfo(host, port, type=kind,
                                                       flags=socket.AI_PASSIVE):
        with socket.socket(family, kind) as sock:
            if kind == socket.SOCK_STREAM:  # as the listeners do, so TIME_WAIT is no clash
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            if kind == socket.SOCK_STREAM:
                sock.listen()


def check_listeners(config: Config) -> None:
    """Bind every listener's port once, before anything starts.

    Raises:
        ListenError: one line for each listener that cannot listen.
    """
    host = config.server.host
    problems = []
    for listener in LISTENERS:
        if listener is UDP and not config.ingest.udp_enabled:
            continue
        port = listener.port(config)
        try:
            _try_bind(host, port, listener.kind)
        except OSError as error:
            problems.append(explain(listener, host, port, error))
    if problems:
        raise ListenError(problems)


@contextlib.contextmanager
def listening(listener: Listener, host: str, port: int) -> Iterator[None]:
    """Turn a failure to listen inside the block into :class:`ListenError`.

    gRPC reports a failed bind as a RuntimeError, without the reason.
    """
    try:
        yield
    except OSError as error:
        raise ListenError([explain(listener, host, port, error)]) from error
    except RuntimeError as error:
        unknown = OSError(None, "gRPC could not bind it (most often, the port is in use)")
        raise ListenError([explain(listener, host, port, unknown)]) from error
