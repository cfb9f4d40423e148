"""eventstream.v1.ClusterService on grpc.aio.

Without replication a node is the leader of a Raft group of one voter; it
reports that group's term and commit index.
"""

from __future__ import annotations

from typing import Protocol

import grpc

from eventstream.v1 import cluster_pb2

from ..config.model import Config
from ..observability.metrics import Metrics
from .convert import parse_request
from .status import handles_errors

SERVICE = "eventstream.v1.ClusterService"


class RaftGroup(Protocol):
    """What the service reports of the node's Raft driver (``cluster.node.RaftDriver``)."""

    @property
    def term(self) -> int:
        """The current term."""
        ...

    @property
    def commit_index(self) -> int:
        """The last committed index."""
        ...

    @property
    def is_leader(self) -> bool:
        """Whether this node leads."""
        ...


class ClusterServicer:
    """Handlers of ClusterService.

    Args:
        config: the node's configuration.
        raft: the node's Raft driver (term, commit index, role).
        metrics: the server's metrics.
    """

    def __init__(self, config: Config, raft: RaftGroup, metrics: Metrics) -> None:
        self._config = config
        self._raft = raft
        self.get_cluster_status = handles_errors("GetClusterStatus", metrics)(self._status)

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
        raft = self._raft
        commit_index = raft.commit_index
        role = cluster_pb2.ROLE_LEADER if raft.is_leader else cluster_pb2.ROLE_CANDIDATE
        me = cluster_pb2.Member(
            node_id=node_id, address=f"{self._config.server.host}:{self._config.cluster.port}",
            role=role, match_index=commit_index, reachable=True)
        return cluster_pb2.GetClusterStatusResponse(
            node_id=node_id, role=role, term=raft.term, commit_index=commit_index,
            leader_id=node_id if raft.is_leader else "", members=[me])

    async def _status(self, data: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
                      ) -> cluster_pb2.GetClusterStatusResponse:
        parse_request(cluster_pb2.GetClusterStatusRequest, data)  # no fields yet: only checked
        return self.status()
