"""Forwarding public requests from a follower to the leader: ``PeerService.Forward``.

A follower keeps one ``Forward`` stream to the leader it knows
(:class:`ForwardStream`, over that peer's link channel): each request is
written as it comes, with a sequence unique on the stream, and answered by
sequence in any order, so many requests are in flight on one HTTP/2 stream
(pipelined; gRPC batches the writes that are ready into frames). When the
stream fails, every request waiting on it fails with :class:`ForwardFailed`
(the follower answers UNAVAILABLE: its client retries, and event ids keep
that safe), and the next request opens a new stream.

The leader serves the stream (:func:`forward_handler`): each request is
handed to the node's :data:`ForwardTarget` (the public service's own code),
at most ``max_in_flight`` at once per stream (beyond that it stops reading:
HTTP/2 flow control holds the follower back), and its answer is written
back: the response bytes, or the status (code, message, details) the
client would have got from the leader itself.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from eventstream.peer.v1 import raft_pb2 as pb

log = logging.getLogger(__name__)

FORWARD = "/eventstream.peer.v1.PeerService/Forward"
PUBLISH = pb.FORWARD_KIND_PUBLISH
"""Kind of a forwarded ``eventstream.v1.PublishRequest``."""
PUBLISH_BATCH = pb.FORWARD_KIND_PUBLISH_BATCH
"""Kind of a forwarded ``eventstream.v1.PublishBatchRequest``."""
PUBLISH_STREAM = pb.FORWARD_KIND_PUBLISH_STREAM
"""Kind of one forwarded ``eventstream.v1.PublishStreamRequest``."""
FRAMES = pb.FORWARD_KIND_FRAMES
"""Kind of forwarded raw TCP/UDP frames, one after another (answered with their positions)."""
KINDS = frozenset({PUBLISH, PUBLISH_BATCH, PUBLISH_STREAM, FRAMES})
"""The kinds this version serves."""
MAX_IN_FLIGHT = 1024
"""Forwarded requests served at once per stream."""

Answer = tuple[bytes, int, str, bytes]
"""A forwarded request's answer: (response bytes, status code (0: OK), message, details)."""
ForwardTarget = Callable[[int, bytes, str], Awaitable[Answer]]
"""Serves one forwarded request of a kind (:data:`KINDS`) on the leader, with the
transport raw frames came in on (``tcp`` or ``udp``)."""
FRAME_TRANSPORTS = {"tcp": pb.FRAME_TRANSPORT_TCP, "udp": pb.FRAME_TRANSPORT_UDP}
"""The ``FrameTransport`` of each transport label."""


class ForwardFailed(Exception):
    """The stream to the leader failed before the answer came (the outcome is unknown)."""


class ForwardStream:
    """A follower's stream of forwarded requests to one leader (see the module docstring).

    Args:
        leader: the leader's node id.
        channel: a channel to the leader's cluster port (owned by its peer link).
        metadata: the identity metadata of the call.
        group_id: the Raft group whose leader serves the requests.
    """

    def __init__(self, leader: str, channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]],
                 group_id: int = 0) -> None:
        self.leader = leader
        self._call: Any = channel.stream_stream(
            FORWARD, request_serializer=pb.ForwardRequest.SerializeToString,
            response_deserializer=pb.ForwardResponse.FromString)(metadata=tuple(metadata))
        self._group_id = group_id
        self._sequence = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Answer]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read(),
                                                              name=f"forward-{leader}")
        self._write_lock = asyncio.Lock()
        self.failed: str | None = None
        """Why the stream ended (None while it is open)."""

    async def forward(self, kind: int, request: bytes, transport: str = "tcp") -> Answer:
        """Send one request and wait for its answer (``transport``: of raw frames).

        Raises:
            ForwardFailed: the stream failed first.
        """
        if self.failed is not None:
            raise ForwardFailed(self.failed)
        sequence = next(self._sequence)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[sequence] = future
        try:
            async with self._write_lock:
                await self._call.write(pb.ForwardRequest(
                    group_id=self._group_id, sequence=sequence,
                    kind=pb.ForwardKind.Name(kind), request=request,
                    frame_transport=FRAME_TRANSPORTS.get(transport, pb.FRAME_TRANSPORT_TCP)))
        except (grpc.RpcError, asyncio.InvalidStateError, RuntimeError) as error:
            self._fail(f"the stream to the leader {self.leader} failed: {error}")
        try:
            return await future
        finally:
            self._waiting.pop(sequence, None)  # the caller gave up (its deadline) or it came

    async def _read(self) -> None:
        try:
            async for response in self._call:
                future = self._waiting.pop(response.sequence, None)
                if future is not None and not future.done():
                    future.set_result((response.response, response.status_code,
                                       response.status_message, response.status_details))
            self._fail(f"the leader {self.leader} ended the stream")
        except grpc.RpcError as error:
            self._fail(f"the stream to the leader {self.leader} failed: "
                       f"{error.code().name if isinstance(error, grpc.aio.AioRpcError) else error}")
        except asyncio.CancelledError:
            self._fail("the stream was closed")
            raise

    def _fail(self, why: str) -> None:
        if self.failed is None:
            self.failed = why
            self._call.cancel()
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(ForwardFailed(why))

    async def close(self) -> None:
        """End the stream; requests still waiting fail."""
        self._reader.cancel()
        try:
            await self._reader
        except asyncio.CancelledError:
            pass


def forward_handler(sender: str, node_id: str, groups: frozenset[int],
                    target: Callable[[], ForwardTarget | None],
                    max_in_flight: int = MAX_IN_FLIGHT) -> Callable[..., Any]:
    """The leader's side of a ``Forward`` stream from ``sender`` (see the module docstring)."""

    async def serve(requests: AsyncIterator[pb.ForwardRequest],
                    context: grpc.aio.ServicerContext[Any, Any]) -> None:
        room = asyncio.Semaphore(max_in_flight)
        write_lock = asyncio.Lock()
        tasks: set[asyncio.Task[None]] = set()

        async def answer(request: pb.ForwardRequest) -> None:
            try:
                serving = target()
                if request.group_id not in groups:
                    response = pb.ForwardResponse(
                        sequence=request.sequence, status_code=grpc.StatusCode.NOT_FOUND.value[0],
                        status_message=f"group_id: node {node_id} is not in group "
                                       f"{request.group_id}")
                elif request.kind not in KINDS or serving is None:
                    response = pb.ForwardResponse(
                        sequence=request.sequence,
                        status_code=grpc.StatusCode.UNIMPLEMENTED.value[0],
                        status_message=f"kind: node {node_id} does not serve forwarded "
                                       f"requests of kind {request.kind}")
                else:
                    transport = ("udp" if request.frame_transport == pb.FRAME_TRANSPORT_UDP
                                 else "tcp")
                    body, code, message, details = await serving(request.kind, request.request,
                                                                  transport)
                    response = pb.ForwardResponse(sequence=request.sequence, response=body,
                                                  status_code=code, status_message=message,
                                                  status_details=details)
                async with write_lock:
                    await context.write(response)
            finally:
                room.release()

        try:
            async for request in requests:
                await room.acquire()
                task = asyncio.get_running_loop().create_task(answer(request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            while tasks:
                await asyncio.gather(*list(tasks), return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()

    return serve


__all__ = ["FRAMES", "KINDS", "PUBLISH", "PUBLISH_BATCH", "PUBLISH_STREAM", "Answer",
           "ForwardFailed", "ForwardStream", "ForwardTarget", "forward_handler"]
