"""eventstream.v1.ClusterService on grpc.aio.

Reports the node's Raft group as its driver sees it: term, role, leader,
commit index and every member with its role (learners as ``ROLE_LEARNER``),
match index and link. A single node is the leader of a group of one voter.
The administrative RPCs (membership changes, leadership transfer) need the
``admin`` permission and are made by :class:`.cluster_admin.MembershipAdmin`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

import grpc

from eventstream.v1 import cluster_pb2

from ..config.model import Config
from ..observability.metrics import Metrics
from ..raft import Role, Status
from ..security.access import Principal
from .cluster_admin import MembershipAdmin
from .convert import parse_request
from .guard import Guard
from .status import handles_errors

SERVICE = "eventstream.v1.ClusterService"


_ROLES = {Role.LEADER: cluster_pb2.ROLE_LEADER, Role.FOLLOWER: cluster_pb2.ROLE_FOLLOWER,
          Role.CANDIDATE: cluster_pb2.ROLE_CANDIDATE, Role.PRE_CANDIDATE: cluster_pb2.ROLE_CANDIDATE}

# node_id (1) and address (2) of the admin requests, named when not UTF-8.
_NODE_STRINGS = {1: ("node_id", "MEMBER_INVALID"), 2: ("address", "MEMBER_INVALID")}

_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})
"""Hosts that bind every address: not one a client can be told."""

_ROLE_NAMES = {cluster_pb2.ROLE_LEADER: "leader", cluster_pb2.ROLE_FOLLOWER: "follower",
               cluster_pb2.ROLE_CANDIDATE: "candidate", cluster_pb2.ROLE_LEARNER: "learner",
               cluster_pb2.ROLE_UNSPECIFIED: ""}


class RaftGroup(Protocol):
    """What the service reports of the node's Raft driver (``cluster.node.RaftDriver``)."""

    def status(self) -> Status:
        """The core's summary: term, role, leader, indexes, membership, followers' progress."""
        ...

    def lag_seconds(self) -> dict[str, float]:
        """Per peer, the age of the oldest entry it lacks (on the leader; empty elsewhere)."""
        ...


class ClusterServicer:
    """Handlers of ClusterService.

    Args:
        config: the node's configuration.
        raft: the node's Raft driver.
        metrics: the server's metrics.
        guard: who calls; administrative methods declare ``guard.admin``.
        addresses: node id -> cluster address of every member (this node's own
            for a single node); read on every call, so a member's updates show.
        connected: the peers whose link is up now.
        leader_hint: the leader's node id and public gRPC address ("" for what
            is not known; None: this node runs alone and leads, at its own
            ``server.host:server.grpc_port``, "" when that host is a wildcard).
        admin: makes the administrative changes (None: each is refused as not
            replicated: this node runs alone).
    """

    def __init__(self, config: Config, raft: RaftGroup, metrics: Metrics, guard: Guard, *,
                 addresses: Mapping[str, str] | None = None,
                 connected: Callable[[], Collection[str]] = frozenset,
                 leader_hint: Callable[[], tuple[str, str]] | None = None,
                 admin: MembershipAdmin) -> None:
        self._config = config
        self._raft = raft
        node_id = config.cluster.node_id
        # Not copied: a member's map changes when discovery sees a peer move.
        self._addresses = addresses or {node_id: f"{config.server.host}:{config.cluster.port}"}
        self._connected = connected
        host = config.server.host
        # Alone, it leads; bound to every address, it cannot tell which one clients use.
        alone = (node_id, "" if host in _WILDCARDS else f"{host}:{config.server.grpc_port}")
        self._leader_hint = leader_hint or (lambda: alone)
        self._admin = admin
        self.get_cluster_status = handles_errors("GetClusterStatus", metrics)(
            guard.authenticated(self._status))
        self.add_member = handles_errors("AddMember", metrics)(guard.admin(self._add_member))
        self.promote_learner = handles_errors("PromoteLearner", metrics)(
            guard.admin(self._promote_learner))
        self.remove_member = handles_errors("RemoveMember", metrics)(
            guard.admin(self._remove_member))
        self.transfer_leadership = handles_errors("TransferLeadership", metrics)(
            guard.admin(self._transfer_leadership))

    def handlers(self) -> grpc.GenericRpcHandler:
        """The method handlers for grpc.aio's server."""
        def unary(handler: Any, response: Any) -> grpc.RpcMethodHandler[Any, Any]:
            return grpc.unary_unary_rpc_method_handler(handler, None, response.SerializeToString)
        return grpc.method_handlers_generic_handler(SERVICE, {
            "GetClusterStatus": unary(self.get_cluster_status, cluster_pb2.GetClusterStatusResponse),
            "AddMember": unary(self.add_member, cluster_pb2.AddMemberResponse),
            "PromoteLearner": unary(self.promote_learner, cluster_pb2.PromoteLearnerResponse),
            "RemoveMember": unary(self.remove_member, cluster_pb2.RemoveMemberResponse),
            "TransferLeadership": unary(self.transfer_leadership,
                                        cluster_pb2.TransferLeadershipResponse),
        })

    def status(self) -> cluster_pb2.GetClusterStatusResponse:
        """The cluster as this node sees it.

        A member's match index is the leader's view of it (the last entry known
        stored there): only the leader knows it for the others; a follower
        reports its own last index and 0 for the others. So the lags (entries
        behind the commit index, age of the oldest entry lacked) are set for
        every member on the leader, and for itself only on another node.
        """
        node_id = self._config.cluster.node_id
        raft = self._raft.status()
        leads = raft.role is Role.LEADER
        ages = self._raft.lag_seconds() if leads else {}
        connected = set(self._connected())
        membership = raft.membership
        members = []
        for member in membership.members():
            progress = raft.progress.get(member)
            if member in membership.learners:
                role = cluster_pb2.ROLE_LEARNER
            elif member == node_id:
                role = _ROLES[raft.role]
            else:
                role = cluster_pb2.ROLE_LEADER if member == raft.leader else \
                    cluster_pb2.ROLE_FOLLOWER
            if member == node_id:
                match, reachable = raft.last_index, True
            else:
                match = progress.match if progress is not None else 0
                reachable = member in connected
            entry = cluster_pb2.Member(
                node_id=member, address=self._addresses.get(member, ""), role=role,
                match_index=match, reachable=reachable)
            if leads or member == node_id:
                entry.lag_entries = max(raft.commit - match, 0)
                entry.lag_seconds = 0.0 if member == node_id else ages.get(member, 0.0)
            members.append(entry)
        role = cluster_pb2.ROLE_LEARNER if node_id in membership.learners else _ROLES[raft.role]
        leader, leader_address = self._leader_hint() if raft.leader else ("", "")
        return cluster_pb2.GetClusterStatusResponse(
            node_id=node_id, role=role, term=raft.term, commit_index=raft.commit,
            leader_id=raft.leader or "", members=members,
            leader_address=leader_address if leader == raft.leader else "")

    def summary(self) -> dict[str, Any]:
        """The cluster as /status shows it: :meth:`status` as JSON values.

        A member's lag is its entries behind the commit index, and
        ``lag_seconds`` the age of the oldest entry it lacks; None where this
        node does not know them (only the leader knows the others' match index).
        """
        status = self.status()
        return {
            "role": _ROLE_NAMES[status.role], "term": status.term,
            "commit_index": status.commit_index, "leader": status.leader_id,
            "leader_address": status.leader_address,
            "members": [{"node_id": member.node_id, "address": member.address,
                         "role": _ROLE_NAMES[member.role], "match_index": member.match_index,
                         "lag": member.lag_entries if member.HasField("lag_entries") else None,
                         "lag_seconds": (member.lag_seconds if member.HasField("lag_seconds")
                                         else None),
                         "reachable": member.reachable} for member in status.members]}

    async def _status(self, data: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                      principal: Principal) -> cluster_pb2.GetClusterStatusResponse:
        parse_request(cluster_pb2.GetClusterStatusRequest, data)  # no fields yet: only checked
        return self.status()

    async def _add_member(self, data: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                          principal: Principal) -> cluster_pb2.AddMemberResponse:
        request = parse_request(cluster_pb2.AddMemberRequest, data, _NODE_STRINGS)
        index = await self._admin.add_member(request.node_id, request.address)
        return cluster_pb2.AddMemberResponse(log_index=index, members=self.status().members)

    async def _promote_learner(self, data: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                               principal: Principal) -> cluster_pb2.PromoteLearnerResponse:
        request = parse_request(cluster_pb2.PromoteLearnerRequest, data, _NODE_STRINGS)
        index = await self._admin.promote_learner(request.node_id, request.max_lag)
        return cluster_pb2.PromoteLearnerResponse(log_index=index, members=self.status().members)

    async def _remove_member(self, data: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                             principal: Principal) -> cluster_pb2.RemoveMemberResponse:
        request = parse_request(cluster_pb2.RemoveMemberRequest, data, _NODE_STRINGS)
        index = await self._admin.remove_member(request.node_id)
        return cluster_pb2.RemoveMemberResponse(log_index=index, members=self.status().members)

    async def _transfer_leadership(self, data: bytes,
                                   context: grpc.aio.ServicerContext[bytes, bytes],
                                   principal: Principal) -> cluster_pb2.TransferLeadershipResponse:
        request = parse_request(cluster_pb2.TransferLeadershipRequest, data, _NODE_STRINGS)
        leader = await self._admin.transfer_leadership(request.node_id)
        return cluster_pb2.TransferLeadershipResponse(leader_id=leader)
