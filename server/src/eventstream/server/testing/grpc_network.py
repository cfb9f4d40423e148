"""Real gRPC transports for a group in one process, each link through a cuttable TCP proxy.

Every node gets a :class:`~eventstream.server.cluster.transport.GrpcTransport`
listening on a free loopback port; node A reaches node B through its own
:class:`~.tcp_proxy.LinkProxy`, so :meth:`GrpcNetwork.isolate` cuts a node off
for real (its connections reset, new ones refused) and :meth:`GrpcNetwork.heal`
lets them reconnect.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventstream.server.cluster.transport import GrpcTransport

from .tcp_proxy import LinkProxy


class GrpcNetwork:
    """Transports for ``node_ids`` of cluster ``cluster_id``, linked through proxies.

    Args:
        node_ids: the nodes.
        cluster_id: their cluster's id.
        proxied: route every link through a proxy (needed for ``isolate``);
            False links nodes directly (benchmarks).
        options: more keyword arguments for every ``GrpcTransport``.
    """

    def __init__(self, node_ids: Iterable[str], cluster_id: str = "test-cluster", *,
                 proxied: bool = True, **options: Any) -> None:
        self.node_ids = sorted(node_ids)
        self.transports = {node_id: GrpcTransport(node_id, cluster_id, {}, **options)
                           for node_id in self.node_ids}
        self._proxied = proxied
        self.proxies: dict[tuple[str, str], LinkProxy] = {}

    async def start(self) -> dict[str, GrpcTransport]:
        """Start every server on a free port, then the proxies, then the links."""
        for transport in self.transports.values():
            await transport.start("127.0.0.1", 0)
        for sender in self.node_ids:
            peers = {}
            for recipient in self.node_ids:
                if recipient == sender:
                    continue
                address = f"127.0.0.1:{self.transports[recipient].port}"
                if self._proxied:
                    proxy = self.proxies[(sender, recipient)] = LinkProxy(address)
                    await proxy.start()
                    address = proxy.address
                peers[recipient] = address
            await self.transports[sender].set_peers(peers)
        return self.transports

    def isolate(self, node_id: str) -> None:
        """Cut every link to and from ``node_id``."""
        for (sender, recipient), proxy in self.proxies.items():
            if node_id in (sender, recipient):
                proxy.cut()

    def heal(self) -> None:
        """Let every link connect again."""
        for proxy in self.proxies.values():
            proxy.heal()

    async def stop(self) -> None:
        """Stop every transport and proxy."""
        for transport in self.transports.values():
            await transport.stop(grace=0.1)
        for proxy in self.proxies.values():
            await proxy.stop()
