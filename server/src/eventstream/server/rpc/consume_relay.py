"""A follower's consumer-group members, served by the leader: Consume piped to its public port.

A group's members must be coordinated in one place (the assignment of its
partitions, the deliveries in flight) and its state is written through the
leader's log, so a follower does not run a Consume stream itself: once it
has checked the caller (authenticated, allowed to consume as the group, a
subscription slot taken), it opens the same call on the leader's public gRPC
port and pipes the requests and responses through, as bytes. The caller's
``authorization`` metadata goes along, so the leader applies the same rules.
When the leader goes away the stream ends with UNAVAILABLE: the member joins
again (through this node or another), and the group resumes from the
offsets committed in the log, on whichever node leads then.

Not piped when the public port serves TLS (a follower has no client
certificate for it): members there are served locally, and get
COMMIT_FAILED naming the leader when they would create the group.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc

from ..errors import EventStreamError
from .status import error_from_status

CONSUME = "/eventstream.v1.SubscribeService/Consume"
RETRY_SECONDS = 0.25
"""The retry delay a member gets while this node knows no leader."""
_PASSED_ON = frozenset({"authorization"})
"""Request metadata the leader needs to see as the member sent it."""


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


class ConsumeRelay:
    """Pipes a follower's Consume streams to the leader (see the module docstring).

    Args:
        follows: whether this node follows now.
        leader_hint: the leader's node id and public gRPC address ("" when unknown).
        node_id: this node's id (for messages).
    """

    def __init__(self, follows: Callable[[], bool], leader_hint: Callable[[], tuple[str, str]],
                 node_id: str) -> None:
        self._follows = follows
        self._leader_hint = leader_hint
        self._node_id = node_id
        self._channels: dict[str, grpc.aio.Channel] = {}

    def leader_address(self) -> str | None:
        """Where this node's members go now: the leader's address, or None to serve them here.

        Raises:
            EventStreamError: NOT_LEADER (UNAVAILABLE, retryable) when no
                leader's address is known.
        """
        if not self._follows():
            return None
        leader, address = self._leader_hint()
        if not address:
            raise EventStreamError(
                "NOT_LEADER", f"node {self._node_id} knows no leader now to serve the group "
                "(an election is under way, or most members are out of reach); join again",
                retry_after=RETRY_SECONDS, leader_id=leader)
        return address

    async def pipe(self, address: str, first: bytes, requests: AsyncIterator[bytes],
                   context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        """Run the member's stream on the leader at ``address``; ``first`` is its ConsumeStart.

        Raises:
            EventStreamError: the leader's status (UNAVAILABLE when it went away).
        """
        metadata = tuple((key, value) for key, value in context.invocation_metadata() or ()
                         if key in _PASSED_ON)
        call: grpc.aio.StreamStreamCall[bytes, bytes] = self._channel(address).stream_stream(
            CONSUME)(metadata=metadata)

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

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(address)
        return channel

    async def close(self) -> None:
        """Close the channels to the leaders (at shutdown)."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()


__all__ = ["CONSUME", "ConsumeRelay"]
