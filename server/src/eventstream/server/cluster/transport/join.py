"""``PeerService.Join`` on the cluster port: a node asks to be added, to rejoin, or to leave.

Both halves: :func:`join_handler` serves a call with the node's
:data:`JoinTarget` (``cluster.joining``), :func:`ask_join` makes one. The
identity check in front of the handler (``identity.check_call``) already let
the caller through, as a peer or as a plausible joiner; this module checks the
request's own fields and bounds what it reads of an answer.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from eventstream.peer.v1 import raft_pb2 as pb

from .identity import JOIN

MAX_ADDRESS_BYTES = 255
"""Longest cluster address a request may carry (the admin RPC's bound)."""
MAX_MEMBERS = 1000
"""Most members read from an answer."""

_Context = grpc.aio.ServicerContext[Any, Any]


class JoinIntent(enum.IntEnum):
    """What a node asks for (``eventstream.peer.v1.JoinIntent``)."""

    JOIN = pb.JOIN_INTENT_JOIN
    """Add me as a learner."""
    REJOIN = pb.JOIN_INTENT_REJOIN
    """I am an initial voter on an empty data dir: remove me if I am a voter, add me as a learner."""
    LEAVE = pb.JOIN_INTENT_LEAVE
    """Remove me (a learner)."""


@dataclass(frozen=True, slots=True)
class JoinReply:
    """What the answering node says (``JoinResponse``)."""

    member: bool
    """The caller is a member, as the answering node has applied it."""
    leader_id: str = ""
    leader_address: str = ""
    """The leader's cluster address ("" when unknown)."""
    members: dict[str, str] = field(default_factory=dict)
    """Node id -> cluster address of every member the answering node has applied."""
    voters: frozenset[str] = frozenset()
    last_index: int = 0
    """The answering node's last log index: 0 when it has no log."""
    applied_index: int = 0
    detail: str = ""
    """Why nothing was done ("" when the change was made or not needed)."""


_INTENTS = frozenset(intent.value for intent in JoinIntent)

JoinTarget = Callable[[str, JoinIntent, str], Awaitable[JoinReply]]
"""Answers a Join: (the caller's node id, its intent, its cluster address) -> the reply."""


class JoinFailed(Exception):
    """The Join call failed (refused, unreachable, timed out); the message says how."""


class JoinRefused(Exception):
    """The caller may not ask for this (answered PERMISSION_DENIED and counted)."""


def join_handler(sender: str, target: Callable[[], JoinTarget | None],
                 refused: Callable[[], None]) -> grpc.RpcMethodHandler[Any, Any]:
    """The unary handler of one checked Join call from ``sender``; ``refused`` counts a refusal."""
    async def join(request: pb.JoinRequest, context: _Context) -> pb.JoinResponse:
        value = int(request.intent)
        if value not in _INTENTS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"intent: {value} is not a known JoinIntent")
        intent = JoinIntent(value)
        if len(request.address.encode()) > MAX_ADDRESS_BYTES or \
                (intent is not JoinIntent.LEAVE and not request.address):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"address: 1 to {MAX_ADDRESS_BYTES} bytes (host:port of the "
                                "cluster port)")
        serve = target()
        if serve is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "this node is starting")
        assert serve is not None
        try:
            reply = await serve(sender, intent, request.address)
        except JoinRefused as error:
            refused()
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))
        return _to_proto(reply)
    return grpc.unary_unary_rpc_method_handler(
        join, request_deserializer=pb.JoinRequest.FromString,
        response_serializer=pb.JoinResponse.SerializeToString)


async def ask_join(channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]],
                   intent: JoinIntent, address: str, timeout: float) -> JoinReply:
    """Call Join on ``channel``; the reply.

    Raises:
        JoinFailed: the call did not succeed (its status and details).
    """
    call = channel.unary_unary(JOIN, request_serializer=pb.JoinRequest.SerializeToString,
                               response_deserializer=pb.JoinResponse.FromString)
    try:
        response = await call(pb.JoinRequest(intent=intent.value, address=address),
                              metadata=metadata, timeout=timeout)
    except grpc.aio.AioRpcError as error:
        raise JoinFailed(f"{error.code().name}: {error.details()}") from None
    return _from_proto(response)


def _to_proto(reply: JoinReply) -> pb.JoinResponse:
    return pb.JoinResponse(
        member=reply.member, leader_id=reply.leader_id, leader_address=reply.leader_address,
        members=[pb.JoinMember(node_id=node, address=address, voter=node in reply.voters)
                 for node, address in sorted(reply.members.items())],
        last_index=reply.last_index, applied_index=reply.applied_index, detail=reply.detail)


def _from_proto(response: pb.JoinResponse) -> JoinReply:
    members = {m.node_id: m.address for m in response.members[:MAX_MEMBERS]
               if m.node_id and 0 < len(m.address.encode()) <= MAX_ADDRESS_BYTES}
    voters = frozenset(m.node_id for m in response.members[:MAX_MEMBERS] if m.voter)
    return JoinReply(response.member, response.leader_id, response.leader_address, members,
                     voters, response.last_index, response.applied_index, response.detail[:1000])


__all__ = ["JoinFailed", "JoinIntent", "JoinRefused", "JoinReply", "JoinTarget", "ask_join", "join_handler"]
