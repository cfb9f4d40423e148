"""Start a replicated cluster of real ``eventstream-server`` processes on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eventstream.client import NO_RETRY, Client

from .server import ServerProcess, free_port, http_get, metric
from .toxiproxy import Mesh, Toxiproxy


def _mesh(toxiproxy: Toxiproxy, cluster_ports: dict[str, int]) -> Mesh:
    """A link per ordered pair of nodes, each on a free port none of the nodes will take.

    (The nodes listen only once started: a link must not pick their ports now.)
    """
    taken = set(cluster_ports.values())

    def fresh_port() -> int:
        while (port := free_port()) in taken:
            pass
        taken.add(port)
        return port
    return Mesh({(source, destination): toxiproxy.link(f"{source}->{destination}", upstream,
                                                       port=fresh_port())
                 for source in cluster_ports for destination, upstream in cluster_ports.items()
                 if source != destination})


class Cluster:
    """``size`` server processes that list each other as ``cluster.peers``.

    Args:
        workdir: each node gets ``workdir/<node id>`` (config, data, log).
        size: members.
        config: config sections merged over every node's.
        env: environment variables of every node.
        toxiproxy: when given, every node reaches every other through a link
            of a :class:`Mesh` on it (:attr:`mesh`), so faults can strike any
            direction between any pair; the nodes then share a
            ``cluster.name``, as their peer maps differ.
    """

    def __init__(self, workdir: Path, size: int = 3, config: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None, toxiproxy: Toxiproxy | None = None) -> None:
        ids = [f"n{i}" for i in range(1, size + 1)]
        cluster_ports = {node: free_port() for node in ids}
        self.mesh: Mesh | None = _mesh(toxiproxy, cluster_ports) if toxiproxy else None
        self.nodes: dict[str, ServerProcess] = {}
        for node in ids:
            (workdir / node).mkdir(parents=True)
            sections: dict[str, Any] = {key: dict(value) for key, value in (config or {}).items()}
            sections.setdefault("cluster", {}).update({
                "enabled": True, "node_id": node, "port": cluster_ports[node],
                "peers": [f"{peer}={self._peer_address(node, peer, cluster_ports)}"
                          for peer in ids]})
            if self.mesh is not None:
                sections["cluster"].setdefault("name", "faults")
            self.nodes[node] = ServerProcess(workdir / node, sections, env=env)
        self._workdir, self._config, self._env = workdir, config, env
        self._initial = [f"{node}=127.0.0.1:{cluster_ports[node]}" for node in ids]
        self.cluster_ports = dict(cluster_ports)
        """Node id -> its cluster port (joiners included)."""

    def joiner(self, node: str) -> ServerProcess:
        """A node that is not an initial member (``cluster.join``), not started.

        Its cluster address (for ``AddMember``) is :meth:`cluster_address`.
        """
        assert self.mesh is None, "joiners reach the members directly"
        (self._workdir / node).mkdir(parents=True)
        sections: dict[str, Any] = {key: dict(value) for key, value in (self._config or {}).items()}
        port = self.cluster_ports[node] = free_port()
        sections.setdefault("cluster", {}).update({
            "enabled": True, "node_id": node, "port": port, "join": True,
            "peers": list(self._initial)})
        server = self.nodes[node] = ServerProcess(self._workdir / node, sections, env=self._env)
        return server

    def add_learner(self, node: str, timeout: float = 60.0) -> ServerProcess:
        """Start joiner ``node``, have the leader add it (``AddMember``), and wait until it is ready.

        Ready: a learner that knows the leader and has caught up.
        """
        leader = self.wait_leader()
        server = self.joiner(node).start(wait=False)
        server.wait_healthy(timeout, path="/health/live")
        with Client(self.nodes[leader].target, retry=NO_RETRY) as admin:
            admin.add_member(node, self.cluster_address(node))
        server.wait_healthy(timeout)
        return server

    def cluster_address(self, node: str) -> str:
        """``host:port`` of a node's cluster port."""
        return f"127.0.0.1:{self.cluster_ports[node]}"

    def _peer_address(self, node: str, peer: str, cluster_ports: dict[str, int]) -> str:
        """Where ``node`` dials ``peer``: its own port directly, others through the mesh."""
        if self.mesh is None or node == peer:
            return f"127.0.0.1:{cluster_ports[peer]}"
        return self.mesh.address(node, peer)

    @classmethod
    def of(cls, nodes: dict[str, ServerProcess]) -> Cluster:
        """A cluster of servers configured by the caller (e.g. found by discovery, not listed)."""
        cluster = cls.__new__(cls)
        cluster.nodes = dict(nodes)
        return cluster

    def start(self, voting: bool = True) -> Cluster:
        """Start every node, wait until each is healthy and (with ``voting``) caught up."""
        for server in self.nodes.values():
            server.start(wait=False)
        for server in self.nodes.values():
            server.wait_healthy(60.0)
        if voting:
            self.wait_voting(list(self.nodes))
        return self

    def wait_voting(self, nodes: list[str], timeout: float = 30.0) -> None:
        """Wait until each node recorded that it caught up after its bootstrap (so it votes).

        Until then a member withholds its vote from candidates with a log
        (``cluster.vote_gate``): a test that kills members before would see
        no election.
        """
        deadline = time.monotonic() + timeout
        for node in nodes:
            path = self.nodes[node].workdir / "data" / "cluster.json"
            while not path.exists() or not json.loads(path.read_text()).get("caught_up"):
                assert time.monotonic() < deadline, f"{node} has not caught up"
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM every node still running."""
        for server in self.nodes.values():
            if server.process is not None and server.process.poll() is None:
                server.stop()

    def status(self, node: str) -> dict[str, Any]:
        """The node's /status document (raises OSError when it does not answer)."""
        _, body = http_get(f"{self.nodes[node].http}/status")
        document: dict[str, Any] = json.loads(body)
        return document

    def running(self) -> list[str]:
        """Ids of the nodes whose process runs."""
        return [node for node, server in self.nodes.items()
                if server.process is not None and server.process.poll() is None]

    def membership_changes(self, change: str, origin: str) -> float:
        """``eventstream_cluster_membership_changes_total`` summed over the running nodes.

        Each change is counted by the leader that made it, whichever node led then.
        """
        return sum(metric(self.nodes[node], "eventstream_cluster_membership_changes_total",
                          change=change, origin=origin) for node in self.running())

    def wait_leader(self, timeout: float = 30.0, among: list[str] | None = None) -> str:
        """The node that leads, once one running node reports itself leader and the others agree."""
        deadline = time.monotonic() + timeout
        while True:
            members = among or self.running()
            views = {}
            for node in members:
                try:
                    views[node] = self.status(node)["cluster"]
                except (OSError, ValueError, KeyError):
                    continue
            leaders = {node for node, view in views.items() if view.get("role") == "leader"}
            if len(leaders) == 1:
                leader = leaders.pop()
                if all(view.get("leader") == leader for view in views.values()) and \
                        len(views) == len(members):
                    return leader
            if time.monotonic() > deadline:
                raise AssertionError(f"no leader agreed on within {timeout}s: {views}")
            time.sleep(0.05)


@contextlib.contextmanager
def running_cluster(workdir: Path, size: int = 3,
                    config: dict[str, Any] | None = None) -> Iterator[Cluster]:
    """A started cluster of ``size`` real server processes, stopped on exit (a fixture's body)."""
    nodes = Cluster(workdir, size, config)
    try:
        yield nodes.start()
    finally:
        nodes.stop()
