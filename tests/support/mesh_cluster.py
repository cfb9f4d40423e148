"""A 3-node replicated cluster whose peers reach each other only through toxiproxy links.

Shared by the fault tests: :func:`mesh_cluster` starts ``toxiproxy-server``
and the nodes (each peer address a link of the :class:`~tests.support.toxiproxy.Mesh`),
and stops every process it started, also on failure (continuing stopped ones first).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.cluster import Cluster
from tests.support.cluster_tools import install_cluster_tools
from tests.support.toxiproxy import Mesh, Toxiproxy


@contextmanager
def mesh_cluster(workdir: Path, env: dict[str, str] | None = None,
                 partitions: int = 2) -> Iterator[tuple[Cluster, Mesh]]:
    """Start toxiproxy and three nodes linked through it; yield the cluster and its mesh."""
    install_cluster_tools()
    with Toxiproxy(workdir) as toxiproxy:
        cluster = Cluster(workdir, 3, {"storage": {"partitions": partitions}}, env=env,
                          toxiproxy=toxiproxy)
        assert cluster.mesh is not None
        try:
            cluster.start()
            yield cluster, cluster.mesh
        finally:
            for node in cluster.running():
                cluster.nodes[node].signal(signal.SIGCONT)
            cluster.stop()


def wait_role(cluster: Cluster, node: str, unwanted: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until ``node``'s /status role is no longer ``unwanted``; its cluster view then."""
    deadline = time.monotonic() + timeout
    while (view := cluster.status(node)["cluster"])["role"] == unwanted:
        assert time.monotonic() < deadline, f"{node} is still {unwanted}: {view}"
        time.sleep(0.05)
    return view


__all__ = ["mesh_cluster", "wait_role"]
