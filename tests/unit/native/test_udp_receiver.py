"""The UDP receiver thread over real loopback sockets.

Datagrams reach the queue whole and in order, one record each; what finds the
queue full is counted, not lost silently; stop is clean and idempotent.
"""

from __future__ import annotations

import socket
import time

import pytest

from eventstream.server.native import (
    InvalidArgument,
    ReceiverStats,
    ShardQueue,
    UdpReceiver,
    iter_records,
    start_receiver,
)


@pytest.fixture
def sockets():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    yield rx, tx
    tx.close()
    rx.close()


def read_by(receiver, count: int) -> ReceiverStats:
    """The receiver's counters once it has read ``count`` datagrams (bounded wait)."""
    deadline = time.monotonic() + 10
    while (stats := receiver.stats()).datagrams < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return stats


def test_datagrams_arrive_whole_and_in_order(sockets):
    rx, tx = sockets
    queue = ShardQueue(capacity_records=10_000, capacity_bytes=8 * 1024 * 1024, shards=2)
    receiver = start_receiver(rx, queue, shard=1)
    assert isinstance(receiver, UdpReceiver)
    sent = [b"datagram %d" % i * (i % 5) for i in range(2000)]
    for datagram in sent:
        tx.send(datagram)
    stats = read_by(receiver, len(sent))
    final = receiver.stop()
    assert final.datagrams == stats.datagrams == len(sent)
    assert final.bytes == sum(map(len, sent))
    assert (final.queue_full, final.truncated, final.errors) == (0, 0, 0)
    assert queue.stats(0).pushes == 0
    got = []
    while len(got) < len(sent):
        got += [bytes(r) for r in iter_records(queue.pop(4096, shard=1))]
    assert got == sent
    assert receiver.stop() == final   # idempotent
    queue.destroy()


def test_datagrams_that_find_the_queue_full_are_counted(sockets):
    rx, tx = sockets
    queue = ShardQueue(capacity_records=10, capacity_bytes=1 << 16)
    receiver = start_receiver(rx, queue)
    for index in range(25):
        tx.send(b"%02d" % index + b"x" * 48)
    stats = read_by(receiver, 25)
    receiver.stop()
    assert stats.queue_full == 15
    assert queue.stats().depth == 10
    kept = [bytes(r)[:2] for r in iter_records(queue.pop(100))]
    assert kept == [b"%02d" % i for i in range(10)]   # the first ones, in order
    queue.destroy()


def test_bad_shard_is_refused(sockets):
    rx, _ = sockets
    queue = ShardQueue(capacity_records=10, capacity_bytes=1 << 16, shards=2)
    with pytest.raises(InvalidArgument):
        start_receiver(rx, queue, shard=2)
    queue.destroy()
