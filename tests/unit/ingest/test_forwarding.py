"""Raw-frame forwarding: the byte layouts it relies on, and its bound in flight (no sockets)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from eventstream.client.frames import encode_frame
from eventstream.server.errors import EventStreamError
from eventstream.server.ingest import messages
from eventstream.server.ingest.forwarding import (
    FORWARD_FRAMES,
    Answer,
    FrameForwarder,
    frames_length,
    frames_of_datagrams,
)
from eventstream.server.observability.metrics import Metrics
from eventstream.server.rpc.status import status_details


def records(*datagrams: bytes) -> memoryview:
    """Datagrams as the UDP receive queue pops them (``u32 BE length + datagram`` each)."""
    return memoryview(b"".join(struct.pack(">I", len(d)) + d for d in datagrams))


def test_the_leaders_positions_make_the_same_ack_as_local_ones():
    positions = [0, 5, 3, 1 << 40, 1, 0]
    assert messages.encode_ack_of(7, messages.encode_positions(positions)) == \
        messages.encode_ack(7, positions)
    assert messages.encode_ack_of(2, b"") == messages.encode_ack(2, [])


def test_datagrams_become_their_frames_one_after_another_without_refused_ones():
    a = encode_frame("a/b", b"1") + encode_frame("a/c", b"22")
    b = encode_frame("b", b"333")
    c = encode_frame("c/d", b"")
    assert frames_of_datagrams(records(a, b, c), frozenset()) == a + b + c
    assert frames_of_datagrams(records(a, b, c), frozenset({1})) == a + c
    assert frames_of_datagrams(records(a, b, c), frozenset({0, 1, 2})) == b""
    assert frames_of_datagrams(records(), frozenset()) == b""


def test_frames_length_counts_whole_frames():
    frames = [encode_frame("t", b"x" * size) for size in (0, 3, 300)]
    data = memoryview(b"".join(frames) + b"\x00\x00")
    assert [frames_length(data, count) for count in range(4)] == \
        [0, len(frames[0]), len(frames[0]) + len(frames[1]), sum(map(len, frames))]


class HeldRelay:
    """A leader that answers only when told: the requests it holds, in order."""

    def __init__(self) -> None:
        self.held: list[tuple[bytes, asyncio.Future[Answer]]] = []
        self.transports: list[str] = []
        """The transport each request named (the leader counts its frames under it)."""

    def follows(self) -> bool:
        return True

    async def forward(self, kind: int, request: bytes, transport: str = "tcp") -> Answer:
        assert kind == FORWARD_FRAMES
        self.transports.append(transport)
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.held.append((request, answer))
        return await answer


async def test_at_most_max_in_flight_requests_wait_for_the_leader_and_answers_come_through():
    relay = HeldRelay()
    forwarder = FrameForwarder(relay, None, Metrics("n1"), max_in_flight=2)  # type: ignore[arg-type]
    first = await forwarder.send(b"a", 1, "tcp")
    second = await forwarder.send(b"b", 1, "udp")
    third = asyncio.ensure_future(forwarder.send(b"c", 1, "tcp"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert [request for request, _ in relay.held] == [b"a", b"b"] and not third.done()
    assert relay.transports == ["tcp", "udp"]
    relay.held[0][1].set_result((b"positions-a", 0, "", b""))
    assert await first == b"positions-a"
    started = await third  # room again: the third one goes
    for _ in range(5):
        await asyncio.sleep(0)
    assert [request for request, _ in relay.held] == [b"a", b"b", b"c"]
    # A refusal comes back as the leader's error.
    refusal = EventStreamError("NOT_LEADER", "gone", retry_after=0.25)
    relay.held[1][1].set_result((b"", refusal.code, refusal.message, status_details(refusal)))
    with pytest.raises(EventStreamError) as refused:
        await second
    assert refused.value.reason == "NOT_LEADER"
    await forwarder.close()
    assert started.cancelled()
