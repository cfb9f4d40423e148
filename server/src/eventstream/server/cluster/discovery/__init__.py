"""Peer discovery: who the cluster's members are and where their cluster ports are.

``peer_discovery(cluster)`` builds the component for ``cluster.discovery``:

- ``static``: ``cluster.peers`` (``StaticDiscovery``);
- ``dns``: the StatefulSet's pod names under the headless service: the
  initial voters, ordinals 0 to ``min(cluster.voters, cluster.replicas) - 1``,
  and this pod (``DnsDiscovery``);
- ``kubernetes``: the headless service's EndpointSlices, listed and watched
  through the API server (``KubernetesDiscovery``, imported only in this mode).

Each is a ``PeerDiscovery``: ``await start(on_change)`` returns the first
peer map (node id -> gRPC target of the cluster port, this node included)
once this node and a majority of the initial voters are found, or raises
``DiscoveryError`` (every problem naming its config key); ``await stop()``.

``initial_members(cluster)`` names the cluster's initial voters, the same on
every member whatever discovery has found so far: ``cluster.peers`` (static),
or ordinals 0 to ``min(cluster.voters, cluster.replicas) - 1`` under the
headless service (dns, kubernetes). ``joins(cluster)`` says whether this node
is not one of them and joins as a learner.
"""

from __future__ import annotations

from eventstream.server.cluster.settings import parse_peers
from eventstream.server.config.model import ClusterConfig

from ._base import DiscoveryError, PeerDiscovery, PeersChanged
from .dns import DnsDiscovery
from .statefulset import PodName, is_voter_ordinal, member_names, parse_pod_name, pod_host, voter_count
from .static import StaticDiscovery

__all__ = [
    "DiscoveryError",
    "DnsDiscovery",
    "PeerDiscovery",
    "PeersChanged",
    "PodName",
    "StaticDiscovery",
    "find_peers",
    "initial_members",
    "joins",
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


def initial_members(cluster: ClusterConfig) -> dict[str, str]:
    """The initial voters: node id -> ``host:port`` of its cluster port.

    Every member computes the same map from its settings alone (the cluster
    id is derived from it, see ``cluster.bootstrap``): ``cluster.peers`` with
    ``static``; otherwise the StatefulSet's pods of ordinals 0 to
    ``min(cluster.voters, cluster.replicas) - 1`` by their headless-service
    names (a pod beyond them joins: :func:`joins`).

    Raises:
        DiscoveryError: ``cluster.peers`` malformed (static); the node id is
            not a pod name (dns, kubernetes).
    """
    if cluster.discovery == "static":
        try:
            return parse_peers(cluster.peers)
        except ValueError as error:
            raise DiscoveryError(str(error).splitlines()) from None
    pod = _own_pod(cluster)
    return {name: f"{pod_host(name, cluster)}:{cluster.port}"
            for name in member_names(pod.statefulset, voter_count(cluster))}


def joins(cluster: ClusterConfig) -> bool:
    """Whether this node is not an initial voter and joins a running cluster as a learner.

    ``cluster.join`` with ``static`` discovery; with ``dns`` or ``kubernetes``,
    a pod whose ordinal is ``min(cluster.voters, cluster.replicas)`` or beyond.

    Raises:
        DiscoveryError: the node id is not a pod name (dns, kubernetes).
    """
    if cluster.discovery == "static":
        return cluster.join
    return not is_voter_ordinal(_own_pod(cluster), cluster)


def _own_pod(cluster: ClusterConfig) -> PodName:
    pod = parse_pod_name(cluster.node_id)
    if pod is None:
        raise DiscoveryError([
            f"cluster.node_id: {cluster.node_id!r} is not a StatefulSet pod name "
            f"(<statefulset>-<ordinal>): a replicated member with cluster.discovery "
            f"{cluster.discovery} takes its ordinal from it"])
    return pod
