"""eventstream.v1.ClusterService on grpc.aio.

Without replication a node is the leader of a cluster of one; it reports the
write path's commit count as its commit index.
"""

from __future__ import annotations

import grpc

from eventstream.v1 import cluster_pb2

from ..broker.write_path import WritePath
from ..config.model import Config
from ..observability.metrics import Metrics
from ..security.access import Principal
from .convert import parse_request
from .guard import Guard
from .status import handles_errors

SERVICE = "eventstream.v1.ClusterService"


class ClusterServicer:
    """Handlers of ClusterService.

    Args:
        config: the node's configuration.
        write_path: source of the commit index.
        metrics: the server's metrics.
        guard: who calls; administrative methods declare ``guard.admin``.
    """

    def __init__(self, config: Config, write_path: WritePath, metrics: Metrics,
                 guard: Guard) -> None:
        self._config = config
        self._write_path = write_path
        self.get_cluster_status = handles_errors("GetClusterStatus", metrics)(
            guard.authenticated(self._status))

    def handlers(self) -> grpc.GenericRpcHandler:
        """The method handlers for grpc.aio's server."""
        return grpc.method_handlers_generic_handler(SERVICE, {
            "GetClusterStatus": grpc.unary_unary_rpc_method_handler(
                self.get_cluster_status, None,
                cluster_pb2.GetClusterStatusResponse.SerializeToString),
        })

    def status(self) -> cluster_pb2.GetClusterStatusResponse:
        """The cluster as this node sees it."""
        node_id = self._config.cluster.node_id
        commit_index = self._write_path.commit_count
        me = cluster_pb2.Member(
            node_id=node_id, address=f"{self._config.server.host}:{self._config.cluster.port}",
            role=cluster_pb2.ROLE_LEADER, match_index=commit_index, reachable=True)
        return cluster_pb2.GetClusterStatusResponse(
            node_id=node_id, role=cluster_pb2.ROLE_LEADER, term=1, commit_index=commit_index,
            leader_id=node_id, members=[me])

    async def _status(self, data: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                      principal: Principal) -> cluster_pb2.GetClusterStatusResponse:
        parse_request(cluster_pb2.GetClusterStatusRequest, data)  # no fields yet: only checked
        return self.status()
