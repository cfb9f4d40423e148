"""The SDK's frame senders against plain loopback sockets (no server needed)."""

from __future__ import annotations

import socket
import struct

import pytest

from eventstream.client.frames import Priority, TcpFrameSender, UdpFrameSender, encode_frame


def test_encode_frame_layout():
    assert encode_frame("a/b", b"xy", Priority.HIGH) == struct.pack(">IBH", 8, 3, 3) + b"a/bxy"
    with pytest.raises(ValueError, match="priority"):
        encode_frame("a", b"", 5)
    with pytest.raises(ValueError, match="topic"):
        encode_frame("t" * 70000, b"")


def split_frames(datagram: bytes) -> list[bytes]:
    frames, pos = [], 0
    while pos < len(datagram):
        (length,) = struct.unpack_from(">I", datagram, pos)
        frames.append(datagram[pos:pos + 4 + length])
        pos += 4 + length
    assert pos == len(datagram)
    return frames


def test_udp_sender_packs_whole_frames_into_datagrams():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        frames = [encode_frame("u/p", b"%03d" % i) for i in range(10)]  # 14 bytes each
        with UdpFrameSender("127.0.0.1", receiver.getsockname()[1], max_datagram=50) as sender:
            for i in range(10):
                sender.send("u/p", b"%03d" % i)
        assert sender.datagrams_sent == 4
        got = [receiver.recv(65536) for _ in range(4)]
    assert all(len(d) <= 50 for d in got)
    assert [f for d in got for f in split_frames(d)] == frames


def test_tcp_sender_fire_and_forget_batches_and_waits_for_the_close():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = TcpFrameSender("127.0.0.1", listener.getsockname()[1], batch_bytes=100)
        peer, _ = listener.accept()
        with peer:
            for i in range(20):
                sender.send("t/p", b"%02d" % i)
            peer.settimeout(5)
            received = b""
            while len(received) < 100:  # a batch went out before close
                received += peer.recv(65536)
            peer.close()
            sender.close()
    assert received.startswith(encode_frame("t/p", b"00"))
