"""Raw UDP frame ingest against the real server: every datagram is accounted for."""

from __future__ import annotations

import socket
import time

from eventstream.client.frames import UdpFrameSender, encode_frame
from tests.support.server import metric

FRAMES_PER_DATAGRAM = 3


def datagram_accounting(server) -> tuple[float, float, float, float]:
    """(read by the server, dropped by reason, dropped by the kernel, events committed)."""
    read = metric(server, "eventstream_ingest_datagrams_total")
    dropped = sum(metric(server, "eventstream_ingest_datagrams_dropped_total", reason=reason)
                  for reason in ("TOPIC_NOT_UTF8", "FRAME_TRUNCATED", "LANE_FULL",
                                 "RECEIVE_QUEUE_FULL"))
    kernel = metric(server, "eventstream_ingest_udp_kernel_drops_total")
    committed = metric(server, "eventstream_events_committed_total", transport="udp")
    return read, dropped, kernel, committed


def settled_accounting(server, sent: int, extra_events: int = 0,
                       stall: float = 30.0) -> tuple[float, ...]:
    """The accounting once every datagram sent is read or counted by the kernel and
    every accepted one committed, or once nothing moved for ``stall`` seconds.

    A busy machine drains the receive queue slowly but steadily, so the wait lasts
    as long as the counts move. ``extra_events``: events beyond
    ``FRAMES_PER_DATAGRAM`` per accepted datagram that must be committed too.
    """
    last: tuple[float, ...] = ()
    deadline = time.monotonic() + stall
    while True:
        read, dropped, kernel, committed = counts = datagram_accounting(server)
        done = (read + kernel >= sent
                and committed >= (read - dropped) * FRAMES_PER_DATAGRAM + extra_events)
        if done or time.monotonic() > deadline:
            return counts
        if counts != last:
            last, deadline = counts, time.monotonic() + stall
        time.sleep(0.05)


def send_datagrams(port: int, count: int, bad_every: int, burst: int, pause: float) -> int:
    """Send ``count`` datagrams at a bounded rate; every ``bad_every``-th is invalid."""
    sender = UdpFrameSender("127.0.0.1", port, max_datagram=FRAMES_PER_DATAGRAM * 40)
    bad = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bad.connect(("127.0.0.1", port))
    bad_sent = 0
    try:
        for index in range(count):
            if bad_every and index % bad_every == bad_every - 1:
                bad.send(encode_frame("ok/1", b"x") + encode_frame(b"bad/\xff", b"x"))
                bad_sent += 1
            else:
                for frame in range(FRAMES_PER_DATAGRAM):
                    sender.send("udp/in", b"%08d" % (index * FRAMES_PER_DATAGRAM + frame))
                sender.flush()
            if index % burst == burst - 1:
                time.sleep(pause)
    finally:
        sender.close()
        bad.close()
    assert sender.datagrams_sent + bad_sent == count
    return bad_sent


def test_datagrams_read_plus_counted_drops_equal_sent(server):
    sent = 10_000
    # ~20,000 datagrams/s in bursts of 100: a modest rate for this server.
    bad_sent = send_datagrams(server.udp_port, sent, bad_every=100, burst=100, pause=0.005)
    read, dropped, kernel, committed = settled_accounting(server, sent)
    assert read + kernel == sent
    # Every datagram read was either accepted whole or dropped and counted.
    assert committed == (read - dropped) * FRAMES_PER_DATAGRAM
    if kernel == 0:
        assert dropped == bad_sent
        assert metric(server, "eventstream_events_rejected_total", transport="udp",
                      reason="TOPIC_NOT_UTF8") == 2 * bad_sent


def test_a_full_lane_holds_datagrams_in_the_receive_queue(start_server):
    """Small lanes fill at once; datagrams wait in the receive queue instead of being dropped."""
    server = start_server({"queues": {"batch_capacity": 8, "realtime_capacity": 8}})
    sent = 1000  # each commit takes two or three datagrams: enough to fill them, not minutes
    send_datagrams(server.udp_port, sent, bad_every=0, burst=500, pause=0.001)
    read, dropped, kernel, committed = settled_accounting(server, sent)
    assert read + kernel == sent
    assert committed == (read - dropped) * FRAMES_PER_DATAGRAM
    assert dropped == 0
    assert metric(server, "eventstream_queue_full_total", queue="batch") > 0  # the lane did fill


def test_datagrams_that_find_the_receive_queue_full_are_counted(start_server):
    server = start_server({"queues": {"batch_capacity": 3, "realtime_capacity": 3},
                           "ingest": {"udp_queue_bytes": 1024 * 1024}})
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", server.udp_port))
    try:
        sock.send(encode_frame("udp/in", b"x") * 4)   # more events than a lane holds: taken in parts
        # ~8 KiB datagrams, as fast as they go: the 1 MiB receive queue holds
        # about 128 of them, and the 3-event lanes take one per commit.
        big = encode_frame("udp/in", b"y" * 2700) * FRAMES_PER_DATAGRAM
        sent = 2000
        for _ in range(sent):
            sock.send(big)
    finally:
        sock.close()
    # The 4-event datagram is one event over FRAMES_PER_DATAGRAM.
    read, dropped, kernel, committed = settled_accounting(server, sent + 1, extra_events=1)
    assert read + kernel == sent + 1
    assert committed == 4 + (read - 1 - dropped) * FRAMES_PER_DATAGRAM
    queue_full = metric(server, "eventstream_ingest_datagrams_dropped_total",
                        reason="RECEIVE_QUEUE_FULL")
    assert queue_full > 0
    assert queue_full == dropped
    assert metric(server, "eventstream_ingest_backpressure_total", transport="udp") > 0
    assert metric(server, "eventstream_ingest_udp_queue_capacity_bytes") == 1 << 20
    assert metric(server, "eventstream_ingest_udp_queue_depth") == 0  # all taken
