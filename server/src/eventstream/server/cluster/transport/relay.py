"""Relaying a follower's consumer-group members to the leader: ``PeerService.RelayConsume``.

A group's members are coordinated by the leader, so a follower runs the
Consume stream of a member connected to it on the leader, over the peer link
it already has (mutual TLS when ``cluster.tls`` is set): :func:`open_relay`
opens the call on the follower, :func:`relay_handler` serves it on the
leader with the node's :data:`RelayTarget` (the public service's own code).
Both ends see the public messages as bytes: the wrapping in
``RelayConsumeRequest`` / ``RelayConsumeResponse`` happens in the
serializers, so the target reads and writes what a Consume stream does.

The member's identity travels as ``eventstream-identity-bin`` (UTF-8): the
follower authenticated the member, and the leader, trusting a checked peer,
applies that identity's rules as its own configuration defines them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from eventstream.peer.v1 import raft_pb2 as pb

RELAY_CONSUME = "/eventstream.peer.v1.PeerService/RelayConsume"
IDENTITY = "eventstream-identity-bin"
"""Metadata naming the member's identity (UTF-8 bytes)."""
MAX_IDENTITY_BYTES = 255
"""Longest identity name accepted in the metadata."""

_Context = grpc.aio.ServicerContext[Any, Any]
RelayTarget = Callable[[str, AsyncIterator[bytes], _Context], Awaitable[None]]
"""Serves one relayed member on the leader: (identity, its ConsumeRequest bytes, the call's
context, whose ``write`` takes ConsumeResponse bytes). Ends the call with the status Consume
would answer."""


def _request(data: bytes) -> bytes:
    return bytes(pb.RelayConsumeRequest(request=data).SerializeToString())


def _unwrap_request(data: bytes) -> bytes:
    return bytes(pb.RelayConsumeRequest.FromString(data).request)


def _response(data: bytes) -> bytes:
    return bytes(pb.RelayConsumeResponse(response=data).SerializeToString())


def _unwrap_response(data: bytes) -> bytes:
    return bytes(pb.RelayConsumeResponse.FromString(data).response)


def open_relay(channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]], identity: str
               ) -> grpc.aio.StreamStreamCall[bytes, bytes]:
    """Open a relayed Consume call on the leader's cluster port (writes and reads bytes).

    Args:
        channel: the leader's link channel.
        metadata: the peer identity metadata of calls to the leader.
        identity: the member's identity name.
    """
    call: grpc.aio.StreamStreamCall[bytes, bytes] = channel.stream_stream(
        RELAY_CONSUME, request_serializer=_request, response_deserializer=_unwrap_response)(
        metadata=(*metadata, (IDENTITY, identity.encode())))
    return call


def relay_handler(node_id: str, target: Callable[[], RelayTarget | None]
                  ) -> grpc.RpcMethodHandler[bytes, bytes]:
    """The handler of RelayConsume calls (from a checked peer) on this node."""
    async def relay(requests: AsyncIterator[bytes], context: _Context) -> None:
        serve = target()
        if serve is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"node {node_id} is starting")
        assert serve is not None
        identity = None
        for key, value in context.invocation_metadata() or ():
            if key == IDENTITY and isinstance(value, bytes) and 0 < len(value) <= MAX_IDENTITY_BYTES:
                identity = value.decode("utf-8", "replace")
        if identity is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"{IDENTITY}: a relayed member needs its identity "
                                f"(1 to {MAX_IDENTITY_BYTES} bytes)")
        assert identity is not None
        await serve(identity, requests, context)
    return grpc.stream_stream_rpc_method_handler(
        relay, request_deserializer=_unwrap_request, response_serializer=_response)


__all__ = ["IDENTITY", "RELAY_CONSUME", "RelayTarget", "open_relay", "relay_handler"]
