"""Peer discovery: who the cluster's members are and where their cluster ports are.

``peer_discovery(cluster)`` builds the component for ``cluster.discovery``:

- ``static``: ``cluster.peers`` (``StaticDiscovery``);
- ``dns``: the StatefulSet's pod names under the headless service, ordinals
  0 to ``cluster.replicas - 1`` (``DnsDiscovery``);
- ``kubernetes``: the headless service's EndpointSlices, listed and watched
  through the API server (``KubernetesDiscovery``, imported only in this mode).

Each is a ``PeerDiscovery``: ``await start(on_change)`` returns the first
peer map (node id -> gRPC target of the cluster port, this node included)
once this node and a majority of ``cluster.replicas`` are found, or raises
``DiscoveryError`` (every problem naming its config key); ``await stop()``.
"""

from __future__ import annotations

from eventstream.server.config.model import ClusterConfig

from ._base import DiscoveryError, PeerDiscovery, PeersChanged
from .dns import DnsDiscovery
from .statefulset import PodName, parse_pod_name
from .static import StaticDiscovery

__all__ = [
    "DiscoveryError",
    "DnsDiscovery",
    "PeerDiscovery",
    "PeersChanged",
    "PodName",
    "StaticDiscovery",
    "find_peers",
    "parse_pod_name",
    "peer_discovery",
]


def peer_discovery(cluster: ClusterConfig) -> PeerDiscovery:
    """The discovery of ``cluster.discovery``; no I/O until ``start``.

    Raises:
        DiscoveryError: settings that cannot work (e.g. ``static`` without
            this node in ``cluster.peers``, ``dns`` on a node id that is not a
            pod name).
    """
    if cluster.discovery == "static":
        return StaticDiscovery(cluster)
    if cluster.discovery == "dns":
        return DnsDiscovery(cluster)
    if cluster.discovery == "kubernetes":
        from .endpointslices import KubernetesDiscovery  # the client takes a second to import

        return KubernetesDiscovery(cluster)
    raise DiscoveryError([f"cluster.discovery: unknown mode {cluster.discovery!r}"])


async def find_peers(cluster: ClusterConfig) -> dict[str, str]:
    """Find the members once (start, then stop).

    The start-up check of a node that does not run replication yet.

    Raises:
        DiscoveryError: as ``peer_discovery`` and ``PeerDiscovery.start``.
    """
    discovery = peer_discovery(cluster)
    try:
        return await discovery.start()
    finally:
        await discovery.stop()
