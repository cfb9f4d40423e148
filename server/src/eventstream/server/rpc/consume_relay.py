"""A follower's consumer-group members, served by the leader: Consume relayed over the peer link.

A group's members must be coordinated in one place (the assignment of its
partitions, the deliveries in flight) and its state is written through the
leader's log, so a follower does not run a Consume stream itself: once it
has checked the caller (authenticated, allowed to consume as the group, a
subscription slot taken), it opens ``PeerService.RelayConsume`` on the
leader's cluster port (the link the members already keep, mutual TLS with
``cluster.tls``; the public port's TLS plays no part) and pipes the requests
and responses through, as bytes. The caller's identity goes along: the
leader checks that identity's rules again under its own configuration and
serves the member (:meth:`.consume.ConsumeServicer.serve_relayed`).
When the leader goes away the stream ends with UNAVAILABLE: the member joins
again (through this node or another), and the group resumes from the
offsets committed in the log, on whichever node leads then.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc

from ..errors import EventStreamError
from .status import error_from_status

RETRY_SECONDS = 0.25
"""The retry delay a member gets while this node knows no leader."""
OpenRelay = Callable[[str, str], "grpc.aio.StreamStreamCall[bytes, bytes] | None"]
"""Opens a relayed Consume call: (leader's node id, member's identity) -> the call, or None
when the leader is no peer of this node (``cluster.transport.GrpcTransport.relay_consume``)."""


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


class ConsumeRelay:
    """Pipes a follower's Consume streams to the leader (see the module docstring).

    Args:
        follows: whether this node follows now.
        leader_hint: the leader's node id and public gRPC address ("" when unknown).
        node_id: this node's id (for messages).
        open_relay: opens the relayed call on the leader.
    """

    def __init__(self, follows: Callable[[], bool], leader_hint: Callable[[], tuple[str, str]],
                 node_id: str, open_relay: OpenRelay) -> None:
        self._follows = follows
        self._leader_hint = leader_hint
        self._node_id = node_id
        self._open_relay = open_relay

    def follows(self) -> bool:
        """Whether this node follows now (its members are relayed)."""
        return self._follows()

    def leader(self) -> str | None:
        """Where this node's members go now: the leader's node id, or None to serve them here.

        Raises:
            EventStreamError: NOT_LEADER (UNAVAILABLE, retryable) when no
                leader is known.
        """
        if not self._follows():
            return None
        leader, _ = self._leader_hint()
        if not leader:
            raise self.not_leader("knows no leader now to serve the group (an election is "
                                  "under way, or most members are out of reach)")
        return leader

    def not_leader(self, why: str) -> EventStreamError:
        """NOT_LEADER for a member: this node ``why``; join again (naming the leader if known)."""
        leader, address = self._leader_hint()
        return EventStreamError("NOT_LEADER", f"node {self._node_id} {why}; join again",
                                retry_after=RETRY_SECONDS, leader_id=leader,
                                leader_address=address)

    async def pipe(self, leader: str, identity: str, first: bytes, requests: AsyncIterator[bytes],
                   context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        """Run the member's stream on ``leader``; ``first`` is its ConsumeStart.

        Raises:
            EventStreamError: the leader's status (UNAVAILABLE when it went away).
        """
        call = self._open_relay(leader, identity)
        if call is None:
            raise self.not_leader(f"has no link to the leader {leader}")

        async def send() -> None:
            await call.write(first)
            async for data in requests:
                await call.write(data)
            await call.done_writing()

        sender = asyncio.get_running_loop().create_task(send())
        sender.add_done_callback(_retrieve)
        try:
            async for response in call:  # every write to the member happens here
                await context.write(response)
        except grpc.aio.AioRpcError as error:
            details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin", b"")
            raise error_from_status(error.code().value[0], error.details() or "",
                                    details if isinstance(details, bytes) else b"") from None
        finally:
            sender.cancel()
            call.cancel()


__all__ = ["ConsumeRelay", "OpenRelay"]
