"""The byte layouts raw-frame forwarding relies on (no sockets)."""

from __future__ import annotations

import struct

from eventstream.client.frames import encode_frame
from eventstream.server.ingest import messages
from eventstream.server.ingest.forwarding import frames_length, frames_of_datagrams


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
