"""Raw frames a follower reads, forwarded to the leader, and the leader's side of them.

On a member of a replicated cluster that does not lead, the TCP connections
and the UDP listener do not queue their good frames in the local lanes
(whose write gate refuses them): they hand the frames' bytes as they came
(the frames of one TCP read or one acknowledged batch, the frames of the
good datagrams of one UDP pop) to :class:`FrameForwarder`, which sends them
to the leader as one ``FORWARD_KIND_FRAMES`` request on the cluster link's
pipelined ``Forward`` stream: one request carries many frames. The leader
(:class:`ForwardedFrames`) decodes them again, queues them in its lanes as
it queues its own frames, and answers once they are committed with their
partition and offset per frame, laid out as the TCP ACK message carries
them, so an acknowledging connection answers its batch with the leader's
positions, in order.

Bounds: at most ``max_in_flight`` forwarded requests on the node; waiting
for room pauses the reader (a TCP connection stops reading, so TCP flow
control reaches the producer; UDP datagrams wait in the receive queue).
A TCP connection also keeps at most its acknowledged window, or
:data:`CONNECTION_IN_FLIGHT` fire-and-forget requests, in flight.

The follower decides what the client may publish and charges its rates
before forwarding, as for gRPC; the leader only validates and queues.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from ..errors import EventStreamError
from ..observability.metrics import Metrics
from ..rpc.status import error_from_status, status_details
from . import messages
from .frames import FrameDecoder
from .sink import BrokerSink, positions_of

log = logging.getLogger(__name__)

FORWARD_FRAMES = 4
"""``eventstream.peer.v1.ForwardKind`` of forwarded raw frames (``FORWARD_KIND_FRAMES``)."""
MAX_IN_FLIGHT = 256
"""Forwarded frame requests of the whole node waiting for the leader's answer."""
CONNECTION_IN_FLIGHT = 8
"""Forwarded requests of one fire-and-forget TCP connection waiting for the leader's answer."""

Answer = tuple[bytes, int, str, bytes]
"""A forwarded request's answer: (response bytes, status code (0: OK), message, details)."""


class Relay(Protocol):
    """Sends a request to the leader (``cluster.replicated.ClusterMember``)."""

    def follows(self) -> bool:
        """Whether writes go to another node now (this one does not lead)."""
        ...

    async def forward(self, kind: int, request: bytes, transport: str = "tcp") -> Answer | None:
        """The leader's answer, or None when this node leads.

        ``transport`` says which transport raw frames came in on.

        Raises:
            EventStreamError: NOT_LEADER (UNAVAILABLE) when no leader is known
                or the stream to it failed.
        """
        ...


class ForwardedFrames:
    """The leader's side: queues forwarded frames and answers with their positions.

    Args:
        decoder: the frame decoder (the follower validated the frames already;
            they are checked again, as every byte from the network is).
        sinks: the lanes the frames go to, by the transport they came in on
            (``tcp``, ``udp``: the label they are counted under).
    """

    def __init__(self, decoder: FrameDecoder, sinks: dict[str, BrokerSink]) -> None:
        self._decoder = decoder
        self._sinks = sinks

    async def positions(self, frames: bytes, transport: str) -> bytes:
        """Queue ``frames`` (whole frames, one after another); their encoded positions once committed.

        ``transport`` is the one the frames came in on (the follower's).

        Waits while a lane is full.

        Raises:
            EventStreamError: REQUEST_MALFORMED (a bad frame: nothing was
                queued), NOT_LEADER, SHUTTING_DOWN, ... from the broker.
        """
        decoded = self._decoder.decode(frames, final=True)
        rejection = decoded.rejection
        if rejection is not None or decoded.consumed != len(frames):
            problem = (f"frame {rejection.index}: {rejection.reason}: {rejection.message}"
                       if rejection is not None else "trailing bytes after the last frame")
            raise EventStreamError("REQUEST_MALFORMED", f"request: forwarded frames: {problem}")
        if decoded.accepted is None:
            return b""
        queued = await self._sinks[transport].put(decoded.accepted)
        return messages.encode_positions(await positions_of(queued))

    async def serve(self, request: bytes, transport: str) -> Answer:
        """Serve a ``FORWARD_KIND_FRAMES`` request a follower sent: its answer, never an exception."""
        try:
            return await self.positions(request, transport), 0, "", b""
        except EventStreamError as error:
            return b"", error.code, error.message, status_details(error)
        except Exception:  # the follower's client must get an answer, not a hang
            log.exception("forwarded frames failed")
            internal = EventStreamError("INTERNAL", "internal error serving forwarded frames")
            return b"", internal.code, internal.message, status_details(internal)


class FrameForwarder:
    """A follower's side: sends frames to the leader, bounded in flight (see the module docstring).

    Args:
        relay: the cluster link to the leader.
        here: serves frames on this node when it leads by the time they are sent.
        metrics: counts the frames forwarded, by transport.
        max_in_flight: forwarded requests of the node waiting for an answer.
    """

    def __init__(self, relay: Relay, here: ForwardedFrames, metrics: Metrics,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._relay = relay
        self._here = here
        self._metrics = metrics
        self._room = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[bytes]] = set()

    def follows(self) -> bool:
        """Whether frames read now go to another node."""
        return self._relay.follows()

    async def send(self, frames: bytes, count: int, transport: str,
                   on_wait: Callable[[], None] | None = None) -> asyncio.Task[bytes]:
        """Send ``count`` whole frames to the leader once fewer than the limit are in flight.

        ``on_wait`` is called when the node has the limit in flight (the
        caller stops reading meanwhile: counted as backpressure).

        Returns:
            A task whose result is the frames' positions, laid out as
            :func:`.messages.encode_positions` does; it raises
            :class:`EventStreamError` (NOT_LEADER when no leader is known or
            the link to it failed: the outcome is then unknown, or the
            leader's refusal). The forwarder owns it: it runs to its end
            whether or not anyone awaits it.
        """
        if self._room.locked() and on_wait is not None:
            on_wait()
        await self._room.acquire()
        task = asyncio.get_running_loop().create_task(self._forward(frames, count, transport))
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def _forward(self, frames: bytes, count: int, transport: str) -> bytes:
        answer = await self._relay.forward(FORWARD_FRAMES, frames, transport)
        if answer is None:  # this node leads by now
            return await self._here.positions(frames, transport)
        self._metrics.frames_forwarded.add(count, {"transport": transport})
        body, code, message, details = answer
        if code:
            raise error_from_status(code, message, details)
        return body

    def _done(self, task: asyncio.Task[bytes]) -> None:
        self._room.release()
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a reader that gave up need not see it

    async def close(self) -> None:
        """Cancel what is still in flight (at shutdown, after the listeners closed)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def frames_length(data: memoryview, count: int) -> int:
    """Bytes of the first ``count`` whole frames of ``data`` (a slow path: a walk in Python)."""
    at = 0
    for _ in range(count):
        at += 4 + int.from_bytes(data[at:at + 4], "big")
    return at


def frames_of_datagrams(records: memoryview, refused: frozenset[int]) -> bytes:
    """The frames of the datagrams of a UDP pop, one after another, without ``refused`` ones.

    Args:
        records: ``u32 BE length + datagram`` records (each datagram whole frames).
        refused: positions of the datagrams to leave out.
    """
    parts: list[memoryview] = []
    at = position = 0
    while at < len(records):
        length = int.from_bytes(records[at:at + 4], "big")
        if position not in refused:
            parts.append(records[at + 4:at + 4 + length])
        at += 4 + length
        position += 1
    return b"".join(parts)


__all__ = ["CONNECTION_IN_FLIGHT", "FORWARD_FRAMES", "MAX_IN_FLIGHT", "ForwardedFrames",
           "FrameForwarder", "Relay", "frames_length", "frames_of_datagrams"]
