"""``cluster.discovery: static``: the members are listed in ``cluster.peers``.

Pure apart from the component shape: no I/O.
"""

from __future__ import annotations

from eventstream.server.cluster.settings import parse_peers
from eventstream.server.config.model import ClusterConfig

from ._base import DiscoveryError, PeersChanged


class StaticDiscovery:
    """The peer map of ``cluster.peers``, checked at construction.

    Raises:
        DiscoveryError: ``cluster.peers`` empty, malformed, or not naming
            this node.
    """

    mode = "static"

    def __init__(self, cluster: ClusterConfig) -> None:
        try:
            peers = parse_peers(cluster.peers)
        except ValueError as error:
            raise DiscoveryError(str(error).splitlines()) from None
        if not peers:
            raise DiscoveryError(["cluster.peers: empty, but cluster.discovery: static takes the "
                                  "members from it (id=host:port of every member, this node included)"])
        if cluster.node_id not in peers and not cluster.join:
            raise DiscoveryError([f"cluster.peers: no entry for this node, cluster.node_id "
                                  f"{cluster.node_id!r} (ids: {', '.join(sorted(peers))})"])
        self._peers = peers

    async def start(self, on_change: PeersChanged | None = None) -> dict[str, str]:
        """The listed members (they never change)."""
        return dict(self._peers)

    async def stop(self) -> None:
        """Nothing to stop."""
