"""Raw TCP frame ingest against the real server: delivery, acknowledgements, limits."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from eventstream.client.frames import FrameError, Priority, TcpFrameSender
from eventstream.v1 import common_pb2, subscribe_pb2
from tests.support.client import Stubs, collect, subscribe_request
from tests.support.server import metric, wait_for_metric

EARLIEST = subscribe_pb2.START_FROM_EARLIEST
SOCKET_TIMEOUT = 20.0


def read_message(sock: socket.socket) -> bytes | None:
    """One server message (kind byte first), or None when the server closed first."""
    inbox = b""
    while len(inbox) < 4 or len(inbox) < 4 + struct.unpack_from(">I", inbox)[0]:
        chunk = sock.recv(65536)
        if not chunk:
            assert not inbox, f"connection closed inside a message: {inbox!r}"
            return None
        inbox += chunk
    return inbox[4:]


def parse_error(message: bytes) -> tuple[int, str, str]:
    """(position, reason, text) of an ERROR message."""
    assert message[0] == 2, message
    position, reason_len = struct.unpack_from(">QB", message, 1)
    reason = message[10:10 + reason_len].decode()
    return position, reason, message[10 + reason_len:].decode()


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.tcp_port), timeout=SOCKET_TIMEOUT)


def send_all(port: int, topic: str, start: int, count: int) -> None:
    """Send ``count`` frames whose payload is their sequence number, fire-and-forget."""
    with TcpFrameSender("127.0.0.1", port, timeout=SOCKET_TIMEOUT) as sender:
        for seq in range(start, start + count):
            sender.send(topic, b"%d" % seq)


async def test_frames_over_four_connections_arrive_once_in_order(server):
    connections, per_connection = 4, 25_000
    stubs = Stubs(server.target)
    call = stubs.subscribe.Subscribe(subscribe_request("#", start_from=EARLIEST))
    await asyncio.gather(*[
        asyncio.to_thread(send_all, server.tcp_port, f"load/c{c}", 0, per_connection)
        for c in range(connections)])
    async with asyncio.timeout(60):
        events = await collect(call, connections * per_connection)
    call.cancel()
    await stubs.close()
    by_connection: dict[str, list[int]] = {f"load/c{c}": [] for c in range(connections)}
    for received in events:
        by_connection[received.topic].append(int(received.payload))
        assert received.priority == common_pb2.PRIORITY_MEDIUM
    for topic, sequence in by_connection.items():
        assert sequence == list(range(per_connection)), topic
    assert metric(server, "eventstream_events_committed_total", transport="tcp") == 100_000
    assert metric(server, "eventstream_ingest_connections_closed_total",
                  transport="tcp", reason="EOF") == connections


async def test_acknowledged_mode_returns_offsets_of_committed_frames(server):
    priorities = [Priority.LOW, Priority.CRITICAL, Priority.MEDIUM, Priority.HIGH] * 5
    with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, batch_bytes=200,
                        timeout=SOCKET_TIMEOUT) as sender:
        for index, priority in enumerate(priorities):
            sender.send(f"acked/{index % 3}", b"p%d" % index, priority)
        positions = sender.flush()
        assert sender.flush() == []
    assert len(positions) == len(priorities)
    stubs = Stubs(server.target)
    call = stubs.subscribe.Subscribe(subscribe_request("acked/#", start_from=EARLIEST))
    stored = {(e.partition, e.offset): e for e in await collect(call, len(priorities))}
    call.cancel()
    await stubs.close()
    for index, position in enumerate(positions):
        event = stored[position]
        assert event.payload == b"p%d" % index
        assert event.topic == f"acked/{index % 3}"
        assert event.priority == priorities[index] + 1  # the enum is the frame byte + 1


def frame(topic: bytes, payload: bytes = b"x", priority: int = 2) -> bytes:
    return struct.pack(">IBH", 3 + len(topic) + len(payload), priority, len(topic)) + topic + payload


BAD_FRAMES = [
    ("FRAME_TRUNCATED", struct.pack(">IBH", 50, 2, 3) + b"a/b" + b"only-part"),
    ("FRAME_TOO_LONG", struct.pack(">IBH", 5000, 2, 3) + b"a/b" + b"x" * 100),
    ("TOPIC_EMPTY", frame(b"")),
    ("TOPIC_NOT_UTF8", frame(b"bad/\xff\xfe")),
    ("PRIORITY_UNKNOWN", frame(b"a/b", priority=7)),
    ("FRAME_BAD_LENGTH", struct.pack(">IBH", 4, 2, 200) + b"a"),
    ("TOPIC_WILDCARD", frame(b"a/#")),
]


@pytest.mark.parametrize(("reason", "bad"), BAD_FRAMES, ids=[r for r, _ in BAD_FRAMES])
async def test_bad_frame_closes_only_its_connection_with_an_error(start_server, reason, bad):
    server = start_server({"ingest": {"max_frame_bytes": 1024}, "storage": {"partitions": 1}})
    rejected = {"transport": "tcp", "reason": reason}
    assert metric(server, "eventstream_events_rejected_total", **rejected) == 0
    bystander = TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, timeout=SOCKET_TIMEOUT)
    with connect(server) as sock:
        sock.sendall(frame(b"good/1") + frame(b"good/2") + bad)
        sock.shutdown(socket.SHUT_WR)  # a truncated frame is only known at the end
        message = read_message(sock)
        assert message is not None
        position, got_reason, text = parse_error(message)
        assert (got_reason, position) == (reason, 2)
        assert text.startswith("frame 2: ")
        assert read_message(sock) is None  # then the server closed
    # Frames before the bad one were accepted; the other connection goes on.
    bystander.send("good/3", b"y")
    assert len(bystander.flush()) == 1
    bystander.close()
    assert metric(server, "eventstream_events_rejected_total", **rejected) == 1
    assert metric(server, "eventstream_ingest_connections_closed_total", **rejected) == 1
    assert wait_for_metric(server, "eventstream_events_committed_total", 3, transport="tcp") == 3
    assert "closing 127.0.0.1:" in server.log() and reason in server.log()


def test_bad_frame_in_acknowledged_batch_refuses_that_batch(server):
    with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, timeout=SOCKET_TIMEOUT) as sender:
        sender.send("ok/1", b"a")
        assert len(sender.flush()) == 1
        sender.send("ok/2", b"b")
        sender.send_encoded(frame(b""))
        with pytest.raises(FrameError) as caught:
            sender.flush()
    error = caught.value
    assert (error.reason, error.position) == ("TOPIC_EMPTY", 1)
    assert error.message.startswith("batch 1 frame 1: ")
    # Nothing of the refused batch was queued.
    assert wait_for_metric(server, "eventstream_events_committed_total", 1, transport="tcp") == 1
    assert metric(server, "eventstream_events_rejected_total", transport="tcp",
                  reason="TOPIC_EMPTY") == 1


async def test_full_lane_pauses_reading_and_loses_nothing(start_server):
    server = start_server({"queues": {"batch_capacity": 16, "realtime_capacity": 16}})
    count = 20_000
    stubs = Stubs(server.target)
    call = stubs.subscribe.Subscribe(subscribe_request("#", start_from=EARLIEST))
    await asyncio.to_thread(send_all, server.tcp_port, "slow/lane", 0, count)
    async with asyncio.timeout(60):
        events = await collect(call, count)
    call.cancel()
    await stubs.close()
    assert [int(e.payload) for e in events] == list(range(count))
    assert metric(server, "eventstream_ingest_backpressure_total", transport="tcp") > 0
    assert metric(server, "eventstream_events_rejected_total", transport="tcp",
                  reason="LANE_FULL") == 0


def test_idle_timeout_closes_a_silent_connection(start_server):
    server = start_server({"ingest": {"idle_timeout_seconds": 0.3}})
    with connect(server) as sock:
        sock.sendall(frame(b"idle/1"))
        message = read_message(sock)
        assert message is not None
        position, reason, text = parse_error(message)
        assert (reason, position) == ("IDLE_TIMEOUT", 1)
        assert "ingest.idle_timeout_seconds" in text
        assert read_message(sock) is None
    assert metric(server, "eventstream_ingest_connections_closed_total", transport="tcp",
                  reason="IDLE_TIMEOUT") == 1


def test_max_connections_refuses_the_extra_one(start_server):
    server = start_server({"ingest": {"max_connections": 2}})
    first = TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, timeout=SOCKET_TIMEOUT)
    second = TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, timeout=SOCKET_TIMEOUT)
    assert wait_for_metric(server, "eventstream_ingest_connections", 2, transport="tcp") == 2
    with connect(server) as extra:
        message = read_message(extra)
        assert message is not None
        assert parse_error(message)[1] == "CONNECTION_LIMIT"
        assert read_message(extra) is None
    for sender in (first, second):
        sender.send("limit/ok", b"z")
        assert len(sender.flush()) == 1
        sender.close()
    assert metric(server, "eventstream_ingest_connections_closed_total", transport="tcp",
                  reason="CONNECTION_LIMIT") == 1


def test_oversized_acknowledged_batch_is_refused(start_server):
    server = start_server({"limits": {"max_batch_events": 3}})
    with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, batch_bytes=1 << 20,
                        timeout=SOCKET_TIMEOUT) as sender:
        for index in range(4):
            sender.send("big/batch", b"%d" % index)
        with pytest.raises(FrameError) as caught:
            sender.flush()
    assert (caught.value.reason, caught.value.position) == ("BATCH_TOO_LARGE", 0)
    assert "limits.max_batch_events" in caught.value.message
    assert metric(server, "eventstream_events_rejected_total", transport="tcp",
                  reason="BATCH_TOO_LARGE") == 1


def test_shutdown_answers_accepted_batches_then_says_so(server):
    with connect(server) as sock:
        batch = frame(b"drain/1") + frame(b"drain/2")
        sock.sendall(b"ESA1" + struct.pack(">I", len(batch)) + batch)
        ack = read_message(sock)
        assert ack is not None and ack[0] == 1
        assert struct.unpack_from(">QI", ack, 1) == (0, 2)
        server.signal()
        message = read_message(sock)
        assert message is not None
        assert parse_error(message)[:2] == (1, "SHUTTING_DOWN")
        assert read_message(sock) is None
    assert server.process.wait(30) == 0


def test_sender_reports_the_servers_error_when_it_keeps_sending(start_server):
    server = start_server({"ingest": {"max_frame_bytes": 64}})
    sender = TcpFrameSender("127.0.0.1", server.tcp_port, batch_bytes=1, timeout=SOCKET_TIMEOUT)
    sender.send("too/long", b"x" * 100)  # refused: the server answers and closes
    with pytest.raises(FrameError) as caught:
        for _ in range(10_000):  # bounded: a send fails once the close arrives
            sender.send("ok", b"y" * 1000)
        sender.close()
    assert caught.value.reason == "FRAME_TOO_LONG"
