"""Queue behaviour through the Python wrapper, native and reference alike.

Codes become the right exceptions, batches round-trip, counters add up, the
eventfd wakes an asyncio loop, and the native queue and its plain-Python
reference give the same results for the same operations.
"""

from __future__ import annotations

import asyncio
import queue as stdlib_queue
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstream.server.native import (
    BufferTooSmall,
    InvalidArgument,
    MalformedInput,
    QueueClosed,
    QueueEmpty,
    QueueFull,
    RecordTooLarge,
    ShardQueue,
    alloc_buffer,
    encode_records,
    iter_records,
)
from tests.support.oracles.ring import PureShardQueue


def records_of(batch: bytes) -> list[bytes]:
    return [bytes(r) for r in iter_records(batch)]


def test_batch_round_trip_keeps_order(queue_cls: type) -> None:
    q = queue_cls(capacity_records=100, capacity_bytes=4096)
    batch = encode_records([b"one", b"", b"three"])
    assert q.push(batch) == 3
    assert q.pop() == batch
    with pytest.raises(QueueEmpty):
        q.pop()
    q.destroy()


def test_buffer_arguments_of_every_kind(queue_cls: type) -> None:
    q = queue_cls(capacity_records=100, capacity_bytes=4096)
    batch = encode_records([b"a", b"bc"])
    for arg in (batch, bytearray(batch), memoryview(batch), memoryview(bytearray(batch))):
        assert q.push(arg) == 2
    for out in (bytearray(64), memoryview(bytearray(64)), alloc_buffer(64)):
        n, nbytes = q.pop_into(out, 2)
        assert (n, bytes(memoryview(out).cast("B")[:nbytes])) == (2, batch)
    q.destroy()


def test_full_rejects_with_prefix_or_all_or_nothing(queue_cls: type) -> None:
    q = queue_cls(capacity_records=4, capacity_bytes=1024, max_record=100)
    batch = encode_records([b"abcdefgh"] * 6)
    with pytest.raises(QueueFull) as full:
        q.push(batch, all_or_nothing=True)
    assert isinstance(full.value, stdlib_queue.Full)
    assert q.stats().depth == 0
    assert q.push(batch) == 4  # the prefix that fits
    with pytest.raises(QueueFull):
        q.push(encode_records([b"x"]))
    stats = q.stats()
    assert (stats.depth, stats.pushes, stats.full_rejections) == (4, 4, 6 + 2 + 1)
    q.destroy()


def test_bounded_in_bytes(queue_cls: type) -> None:
    q = queue_cls(capacity_records=100, capacity_bytes=64, max_record=40)
    assert q.push(encode_records([b"x" * 20] * 3)) == 2  # 2 * 24 bytes of 64
    assert q.stats().depth_bytes == 48
    q.destroy()


def test_too_large_and_malformed(queue_cls: type) -> None:
    q = queue_cls(capacity_records=100, capacity_bytes=4096, max_record=10)
    assert q.max_record == 10
    with pytest.raises(RecordTooLarge) as too_large:
        q.push(encode_records([b"ok", b"x" * 11]))
    assert too_large.value.index == 1
    with pytest.raises(MalformedInput):
        q.push(encode_records([b"abc"])[:-1])
    with pytest.raises(MalformedInput):
        q.push(b"\x00\x00")
    stats = q.stats()
    assert (stats.depth, stats.too_large_rejections) == (0, 1)
    q.destroy()


def test_pop_reports_the_size_needed(queue_cls: type) -> None:
    q = queue_cls(capacity_records=100, capacity_bytes=4096)
    q.push(encode_records([b"x" * 10, b"y"]))
    with pytest.raises(BufferTooSmall) as small:
        q.pop_into(bytearray(5))
    assert small.value.needed == 14
    assert q.pop_into(bytearray(16)) == (1, 14)  # only whole records
    assert q.pop(max_bytes=1) == encode_records([b"y"])  # pop() grows its buffer
    q.destroy()


def test_bad_arguments(queue_cls: type) -> None:
    with pytest.raises(InvalidArgument):
        queue_cls(capacity_records=0, capacity_bytes=4096)
    with pytest.raises(InvalidArgument):
        queue_cls(capacity_records=1, capacity_bytes=64, max_record=100)
    q = queue_cls(capacity_records=10, capacity_bytes=4096, shards=2)
    with pytest.raises(InvalidArgument):
        q.push(encode_records([b"x"]), shard=2)
    with pytest.raises(InvalidArgument):
        q.stats(shard=5)
    q.destroy()
    with pytest.raises(InvalidArgument):
        q.push(encode_records([b"x"]))


def test_counters_per_shard_and_total(queue_cls: type) -> None:
    q = queue_cls(capacity_records=40, capacity_bytes=4096, shards=4)
    one = encode_records([b"x"])
    for _ in range(4):
        q.push(one)  # round-robin
    assert [q.stats(shard=i).depth for i in range(4)] == [1, 1, 1, 1]
    q.push(one, shard=3)
    assert records_of(q.pop(shard=3)) == [b"x", b"x"]
    total = q.stats()
    assert (total.shards, total.capacity_records, total.capacity_bytes) == (4, 40, 4096)
    assert (total.depth, total.pushes, total.pops) == (3, 5, 2)
    assert q.stats(shard=0).capacity_records == 10
    assert len(records_of(q.pop())) == 3
    assert q.stats().depth == 0
    q.destroy()


def test_close_refuses_pushes_and_drains(queue_cls: type) -> None:
    q = queue_cls(capacity_records=10, capacity_bytes=4096)
    q.push(encode_records([b"last"]))
    q.close()
    assert q.closed
    with pytest.raises(QueueClosed):
        q.push(encode_records([b"late"]))
    assert q.wait(timeout=0) is True
    assert records_of(q.pop()) == [b"last"]
    with pytest.raises(QueueClosed):
        q.wait(timeout=1)
    q.destroy()


def test_wait_times_out_and_wakes_a_thread(queue_cls: type) -> None:
    q = queue_cls(capacity_records=10, capacity_bytes=4096)
    assert q.wait(timeout=0.01) is False
    got: list[bytes] = []

    def drain() -> None:
        while not got:
            try:
                got.append(q.pop())
            except QueueEmpty:
                q.wait(timeout=5)

    thread = threading.Thread(target=drain)
    thread.start()
    q.push(encode_records([b"wake"]))
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert records_of(got[0]) == [b"wake"]
    q.destroy()


async def test_eventfd_wakes_an_asyncio_loop(queue_cls: type) -> None:
    q = queue_cls(capacity_records=10, capacity_bytes=4096)
    waiter = asyncio.create_task(q.wait_async())
    await asyncio.sleep(0)  # the waiter is now parked on loop.add_reader
    assert not waiter.done()
    threading.Thread(target=q.push, args=(encode_records([b"hello"]),)).start()
    await asyncio.wait_for(waiter, timeout=10)
    assert records_of(q.pop()) == [b"hello"]
    assert q.stats().wakeups == 1
    # Records already waiting: no sleep at all.
    q.push(encode_records([b"again"]))
    await asyncio.wait_for(q.wait_async(), timeout=1)
    q.close()
    q.pop()
    with pytest.raises(QueueClosed):
        await asyncio.wait_for(q.wait_async(), timeout=10)
    q.destroy()


def test_many_threads_lose_nothing(queue_cls: type) -> None:
    q = queue_cls(capacity_records=64, capacity_bytes=1 << 14, shards=2)
    producers, per_producer = 3, 2000
    seen: list[bytes] = []
    done = threading.Event()

    def produce(pid: int) -> None:
        for start in range(0, per_producer, 50):
            batch = encode_records([b"%d:%d" % (pid, i) for i in range(start, start + 50)])
            view = memoryview(batch)
            while view:
                try:
                    n = q.push(view, shard=pid % 2)
                except QueueFull:
                    q.wait(timeout=0.001)  # let the consumer run (bounded)
                    continue
                view = view[sum(4 + len(r) for r in list(iter_records(view))[:n]):]

    def consume() -> None:
        while not (done.is_set() and q.stats().depth == 0):
            try:
                seen.extend(records_of(q.pop(64)))
            except QueueEmpty:
                q.wait(timeout=0.01)

    consumer = threading.Thread(target=consume)
    consumer.start()
    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    done.set()
    consumer.join(timeout=30)
    assert sorted(seen) == sorted(b"%d:%d" % (p, i) for p in range(producers) for i in range(per_producer))
    for p in range(producers):  # per-producer order is kept (one consumer)
        mine = [int(r.split(b":")[1]) for r in seen if r.startswith(b"%d:" % p)]
        assert mine == sorted(mine)
    q.destroy()


# -- native and pure agree on any sequence of operations ----------------------

_record = st.binary(max_size=40)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.lists(_record, max_size=8), st.one_of(st.none(), st.integers(0, 2)),
                  st.booleans()),
        st.tuples(st.just("pop"), st.integers(1, 8), st.one_of(st.none(), st.integers(0, 2)),
                  st.integers(0, 200)),
    ),
    max_size=40,
)


def _apply(q: ShardQueue | PureShardQueue, op: tuple) -> object:
    shard = None if op[2] is None else op[2] % q.shards
    try:
        if op[0] == "push":
            return ("pushed", q.push(encode_records(op[1]), shard=shard, all_or_nothing=op[3]))
        out = bytearray(op[3])
        n, nbytes = q.pop_into(out, op[1], shard=shard)
        return ("popped", n, bytes(out[:nbytes]))
    except (QueueFull, QueueEmpty, RecordTooLarge) as exc:
        return type(exc).__name__
    except BufferTooSmall as exc:
        return ("small", exc.needed)


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops, shards=st.integers(1, 3), capacity=st.integers(1, 12), shard_bytes=st.integers(34, 200))
def test_native_and_pure_agree(ops: list[tuple], shards: int, capacity: int, shard_bytes: int) -> None:
    kwargs = dict(capacity_records=capacity, capacity_bytes=shards * shard_bytes, shards=shards,
                  max_record=30)
    native, pure = ShardQueue(**kwargs), PureShardQueue(**kwargs)
    try:
        for op in ops:
            assert _apply(native, op) == _apply(pure, op), op
        assert native.stats() == pure.stats()
    finally:
        native.destroy()
        pure.destroy()
