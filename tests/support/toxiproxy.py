"""A real toxiproxy-server process and its HTTP API, for faults between processes.

:class:`Toxiproxy` starts ``toxiproxy-server`` (installed into ``.tools/bin``
by ``tools/install-cluster-tools.sh``) with its API on a free loopback port,
and drives it: a proxy per link (a free 127.0.0.1 port forwarding to an
upstream port), toxics on a link (latency, bandwidth, a timeout that swallows
every byte: a partition that keeps connections open), and cutting a link
(the proxy is disabled: its connections are closed and new ones refused)
and restoring it. A :class:`Mesh` puts a link on every ordered pair of nodes,
to split a cluster into sides or isolate one node.

Example:
    >>> with Toxiproxy(workdir) as toxiproxy:
    ...     link = toxiproxy.link("a-b", upstream=server.grpc_port)
    ...     link.add_latency(100)           # 100 ms on every response
    ...     link.cut(); link.restore()
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
TOXIPROXY_SERVER = ROOT / ".tools" / "bin" / "toxiproxy-server"

Direction = Literal["upstream", "downstream"]
"""``upstream``: bytes from the client to the upstream; ``downstream``: the replies."""


class ToxiproxyError(RuntimeError):
    """The API refused a request (its status and message), or the server did not start."""


class Link:
    """One proxy: ``127.0.0.1:port`` forwarding to ``upstream``.

    Made by :meth:`Toxiproxy.link`; its methods call the API at once.
    """

    def __init__(self, api: Toxiproxy, name: str, port: int, upstream: str) -> None:
        self._api = api
        self.name = name
        """The proxy's name in the API."""
        self.port = port
        """The loopback port clients connect to."""
        self.upstream = upstream
        """``host:port`` the link forwards to."""

    @property
    def target(self) -> str:
        """``127.0.0.1:port``: where a client goes to pass through this link."""
        return f"127.0.0.1:{self.port}"

    def add_toxic(self, kind: str, attributes: dict[str, int], *, stream: Direction = "downstream",
                  name: str | None = None, toxicity: float = 1.0) -> str:
        """Add a toxic of any type toxiproxy knows; return its name.

        Args:
            kind: the toxic type (``latency``, ``bandwidth``, ``timeout``,
                ``slow_close``, ``reset_peer``, ``limit_data``, ``slicer``).
            attributes: the type's attributes (milliseconds, KB/s, bytes).
            stream: which direction it acts on.
            name: the toxic's name (default ``<kind>_<stream>``).
            toxicity: the share of connections it applies to.
        """
        name = name or f"{kind}_{stream}"
        self._api.request("POST", f"/proxies/{self.name}/toxics", {
            "name": name, "type": kind, "stream": stream, "toxicity": toxicity,
            "attributes": attributes})
        return name

    def add_latency(self, milliseconds: int, jitter: int = 0, *,
                    stream: Direction = "downstream") -> str:
        """Delay every chunk of data by ``milliseconds`` (± ``jitter``)."""
        return self.add_toxic("latency", {"latency": milliseconds, "jitter": jitter}, stream=stream)

    def add_bandwidth(self, kilobytes_per_second: int, *, stream: Direction = "downstream") -> str:
        """Limit the throughput to ``kilobytes_per_second``."""
        return self.add_toxic("bandwidth", {"rate": kilobytes_per_second}, stream=stream)

    def add_timeout(self, milliseconds: int = 0, *, stream: Direction = "downstream") -> str:
        """Swallow every byte; close the connection after ``milliseconds`` (0: never).

        With 0 on both directions, the link is partitioned while its
        connections stay open, as a dead network path behaves.
        """
        return self.add_toxic("timeout", {"timeout": milliseconds}, stream=stream)

    def partition(self) -> None:
        """Swallow every byte both ways, connections left open (:meth:`heal` undoes it)."""
        self.add_timeout(0, stream="upstream")
        self.add_timeout(0, stream="downstream")

    def heal(self) -> None:
        """Remove every toxic of this link."""
        for toxic in self.toxics():
            self.remove_toxic(toxic["name"])

    def remove_toxic(self, name: str) -> None:
        """Remove one toxic."""
        self._api.request("DELETE", f"/proxies/{self.name}/toxics/{name}")

    def toxics(self) -> list[dict[str, Any]]:
        """The toxics on this link, as the API describes them."""
        return list(self._api.request("GET", f"/proxies/{self.name}/toxics"))

    def cut(self) -> None:
        """Disable the link: its open connections are closed and new ones refused."""
        self._api.request("POST", f"/proxies/{self.name}", {"enabled": False})

    def restore(self) -> None:
        """Enable the link again on the same port."""
        self._api.request("POST", f"/proxies/{self.name}", {"enabled": True})

    @property
    def enabled(self) -> bool:
        """Whether the link forwards (False while cut)."""
        return bool(self._api.request("GET", f"/proxies/{self.name}")["enabled"])


class Mesh:
    """A link for every ordered pair of nodes.

    ``source`` reaches ``destination`` only through ``links[source, destination]``.
    Made by :meth:`Toxiproxy.mesh`. Give each node, as the address of each
    peer, :meth:`address` of that pair; then faults can strike any one
    direction of any pair.
    """

    def __init__(self, links: dict[tuple[str, str], Link]) -> None:
        self.links = links
        """Every link, by (source, destination)."""

    @property
    def nodes(self) -> list[str]:
        """The nodes' names, sorted."""
        return sorted({source for source, _ in self.links})

    def address(self, source: str, destination: str) -> str:
        """``host:port`` that ``source`` dials to reach ``destination``."""
        return self.links[source, destination].target

    def between(self, side: set[str]) -> list[Link]:
        """The links crossing from ``side`` to the other nodes, and back."""
        return [link for (source, destination), link in self.links.items()
                if (source in side) != (destination in side)]

    def split(self, side: set[str]) -> None:
        """Partition ``side`` from the rest: every crossing link swallows every byte."""
        for link in self.between(side):
            link.partition()

    def isolate(self, node: str) -> None:
        """Partition one node from every other."""
        self.split({node})

    def heal(self) -> None:
        """Remove every toxic of every link."""
        for link in self.links.values():
            link.heal()


class Toxiproxy:
    """A ``toxiproxy-server`` process with its API on a free loopback port.

    Args:
        workdir: where its log goes.
        binary: the server executable.
    """

    def __init__(self, workdir: Path, binary: Path = TOXIPROXY_SERVER) -> None:
        self.api_port = free_port()
        self._binary = binary
        self.log_path = workdir / "toxiproxy.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._links: dict[str, Link] = {}

    @property
    def api(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, timeout: float = 15.0) -> Toxiproxy:
        """Start the process and wait until its API answers."""
        if not self._binary.is_file():
            raise ToxiproxyError(f"{self._binary} is missing: run tools/install-cluster-tools.sh")
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [str(self._binary), "-host", "127.0.0.1", "-port", str(self.api_port)],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise ToxiproxyError(f"toxiproxy-server exited with {self._process.returncode}: "
                                     f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                self.version()
                return self
            except (OSError, ToxiproxyError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise ToxiproxyError(f"toxiproxy-server API not up after {timeout}s") from None
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout``); every link goes with it."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> Toxiproxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def link(self, name: str, upstream: int | str, port: int | None = None) -> Link:
        """Create a proxy ``name`` from a free loopback port (or ``port``) to ``upstream``.

        Args:
            name: the proxy's name, e.g. ``"n1-n2"``.
            upstream: a port on 127.0.0.1, or ``host:port``.
            port: the port to listen on (default: a free one).
        """
        upstream = f"127.0.0.1:{upstream}" if isinstance(upstream, int) else upstream
        port = port or free_port()
        self.request("POST", "/proxies", {"name": name, "listen": f"127.0.0.1:{port}",
                                          "upstream": upstream, "enabled": True})
        self._links[name] = Link(self, name, port, upstream)
        return self._links[name]

    def mesh(self, upstreams: dict[str, int | str]) -> Mesh:
        """A link for every ordered pair of ``upstreams`` (name -> port or ``host:port``).

        The link named ``a->b`` forwards to ``b``'s upstream; node ``a`` should
        dial it to reach ``b``.
        """
        return Mesh({(source, destination): self.link(f"{source}->{destination}", upstream)
                     for source in upstreams for destination, upstream in upstreams.items()
                     if source != destination})

    def links(self) -> dict[str, Link]:
        """Every link made by :meth:`link`, by name."""
        return dict(self._links)

    def reset(self) -> None:
        """Enable every link and remove every toxic."""
        self.request("POST", "/reset")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call; its decoded JSON answer (None when empty; text for a text answer).

        Raises:
            ToxiproxyError: the API answered with an error status.
            OSError: nothing answered.
        """
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.api}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                payload = response.read()
                is_json = response.headers.get_content_type() == "application/json"
        except urllib.error.HTTPError as error:
            raise ToxiproxyError(f"{method} {path}: {error.code} "
                                 f"{error.read().decode(errors='replace')[:500]}") from None
        if not is_json:
            return payload.decode()  # /version answers plain text
        return json.loads(payload) if payload.strip() else None

    def version(self) -> str:
        """The server's version, e.g. ``2.5.0``."""
        return str(self.request("GET", "/version"))


__all__ = ["TOXIPROXY_SERVER", "Direction", "Link", "Mesh", "Toxiproxy", "ToxiproxyError"]
