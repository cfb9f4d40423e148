"""Publish and subscribe through gRPC against the real server process."""

from __future__ import annotations

import asyncio
import collections

import grpc
import pytest

from eventstream.v1 import common_pb2, publish_pb2, subscribe_pb2
from tests.support.client import Stubs, collect, event, publish_request, subscribe_request

EARLIEST = subscribe_pb2.START_FROM_EARLIEST


async def test_patterns_and_min_priority_route_events(start_server):
    server = start_server({"storage": {"partitions": 1}})
    stubs = Stubs(server.target)
    published = [
        ("sensors/a", common_pb2.PRIORITY_LOW),
        ("sensors/b/c", common_pb2.PRIORITY_HIGH),
        ("other/x", common_pb2.PRIORITY_CRITICAL),
        ("sensors", common_pb2.PRIORITY_MEDIUM),
        ("sensors/zz", common_pb2.PRIORITY_CRITICAL),  # sentinel: matches every subscription
    ]
    for topic, priority in published:
        await stubs.publish.Publish(publish_request(topic, priority=priority))
    expected = {
        ("sensors/*",): ["sensors/a", "sensors/zz"],
        ("sensors/#",): ["sensors/a", "sensors/b/c", "sensors", "sensors/zz"],
        ("#",): ["sensors/a", "sensors/b/c", "other/x", "sensors", "sensors/zz"],
        ("sensors/*/c", "other/*", "sensors/zz"): ["sensors/b/c", "other/x", "sensors/zz"],
    }
    for patterns, topics in expected.items():
        call = stubs.subscribe.Subscribe(subscribe_request(*patterns, start_from=EARLIEST))
        got = await collect(call, len(topics))
        call.cancel()
        assert [e.topic for e in got] == topics, patterns
    call = stubs.subscribe.Subscribe(subscribe_request(
        "#", start_from=EARLIEST, min_priority=common_pb2.PRIORITY_HIGH))
    got = await collect(call, 3)
    call.cancel()
    assert [e.topic for e in got] == ["sensors/b/c", "other/x", "sensors/zz"]
    # The stored event says what the server did: MEDIUM for an unspecified priority.
    await stubs.publish.Publish(publish_request("defaults/p"))
    call = stubs.subscribe.Subscribe(subscribe_request("defaults/#", start_from=EARLIEST))
    (stored,) = await collect(call, 1)
    call.cancel()
    assert stored.priority == common_pb2.PRIORITY_MEDIUM
    await stubs.close()


async def test_live_subscription_sees_only_new_events_with_server_fields(server):
    stubs = Stubs(server.target)
    await stubs.publish.Publish(publish_request("live/old"))
    call = stubs.subscribe.Subscribe(subscribe_request("live/#"))
    responses = call.__aiter__()
    # The stream gives no signal when the subscription has started: publish until
    # one new event arrives. The old one must never show up.
    acks = {}
    got = None
    for _ in range(50):
        ack = (await stubs.publish.Publish(publish_request(
            "live/new", b"payload", key="k1", headers={"h": "v"}))).ack
        acks[ack.id] = ack
        try:
            response = await asyncio.wait_for(responses.__anext__(), 0.5)
        except TimeoutError:
            continue
        got = response.events[0]
        break
    call.cancel()
    assert got is not None, "no live event delivered"
    assert (got.topic, got.payload, got.key, dict(got.headers)) == ("live/new", b"payload", "k1", {"h": "v"})
    ack = acks[got.id]
    assert (got.partition, got.offset) == (ack.partition, ack.offset)
    assert got.ingest_time.ToNanoseconds() == ack.ingest_time.ToNanoseconds() > 0
    assert ack.durability == common_pb2.DURABILITY_FSYNCED  # the default: disk, fsync always
    await stubs.close()


PUBLISHERS = 8
TOTAL = 10_000
KEYS_PER_PUBLISHER = 4


async def _publish_unary(stubs, items):
    for item in items:
        await stubs.publish.Publish(publish_pb2.PublishRequest(event=item))


async def _publish_batches(stubs, items):
    for start in range(0, len(items), 100):
        response = await stubs.publish.PublishBatch(
            publish_pb2.PublishBatchRequest(events=items[start:start + 100]))
        assert all(r.HasField("ack") for r in response.results)


async def _publish_stream(stubs, items):
    async def requests():
        for sequence, start in enumerate(range(0, len(items), 50)):
            yield publish_pb2.PublishStreamRequest(sequence=sequence, events=items[start:start + 50])

    sequences = []
    async for response in stubs.publish.PublishStream(requests()):
        sequences.append(response.sequence)
        assert all(r.HasField("ack") for r in response.results)
    assert sequences == sorted(sequences) and len(sequences) == (len(items) + 49) // 50


async def test_concurrent_publishers_keep_order_per_key_without_loss_or_duplicates(server):
    stubs = [Stubs(server.target) for _ in range(PUBLISHERS)]
    modes = [_publish_unary, _publish_batches, _publish_stream, _publish_batches] * 2
    per_publisher = TOTAL // PUBLISHERS
    work = []
    for p in range(PUBLISHERS):
        items = []
        for n in range(per_publisher):
            k = n % KEYS_PER_PUBLISHER
            # One priority per key: order is kept per key within a lane.
            priority = common_pb2.PRIORITY_HIGH if k == 0 else common_pb2.PRIORITY_LOW
            items.append(event(f"orders/p{p}", f"{p}:{k}:{n}".encode(), key=f"key-{p}-{k}",
                               id=f"id-{p}-{n}", priority=priority))
        work.append(modes[p](stubs[p], items))
    reader = Stubs(server.target)
    call = reader.subscribe.Subscribe(subscribe_request("orders/#", start_from=EARLIEST))
    receiving = asyncio.create_task(collect(call, TOTAL))
    await asyncio.gather(*work)
    got = await asyncio.wait_for(receiving, 60)
    call.cancel()
    assert len(got) == TOTAL
    assert len({e.id for e in got}) == TOTAL
    last_seen: dict[str, int] = collections.defaultdict(lambda: -1)
    for e in got:
        _, _, n = e.payload.decode().split(":")
        assert int(n) > last_seen[e.key], f"key {e.key} out of order"
        last_seen[e.key] = int(n)
    # Offsets within each partition are dense and increasing.
    by_partition = collections.defaultdict(list)
    for e in got:
        by_partition[e.partition].append(e.offset)
    for offsets in by_partition.values():
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
    for s in [*stubs, reader]:
        await s.close()


async def test_duplicate_ids_are_acknowledged_with_the_first_offset_and_stored_once(server):
    stubs = Stubs(server.target)
    first = (await stubs.publish.Publish(publish_request("dedup/a", b"1", id="same-id"))).ack
    again = (await stubs.publish.Publish(publish_request("dedup/a", b"2", id="same-id"))).ack
    assert not first.duplicate and again.duplicate
    assert (again.partition, again.offset) == (first.partition, first.offset)
    # Duplicates inside one batch, and in flight together, are caught too.
    batch = await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(
        events=[event("dedup/a", b"3", id="batch-id"), event("dedup/a", b"4", id="batch-id")]))
    a, b = (r.ack for r in batch.results)
    assert (not a.duplicate, b.duplicate, b.offset) == (True, True, a.offset)
    await stubs.publish.Publish(publish_request("dedup/end", b"end"))
    call = stubs.subscribe.Subscribe(subscribe_request("dedup/#", start_from=EARLIEST))
    got = await collect(call, 3)
    call.cancel()
    assert sorted(e.payload for e in got) == [b"1", b"3", b"end"]
    await stubs.close()


async def test_publish_stream_answers_in_request_order(server):
    stubs = Stubs(server.target)

    async def requests():
        for sequence in range(200):
            priority = common_pb2.PRIORITY_CRITICAL if sequence % 2 else common_pb2.PRIORITY_BATCH
            yield publish_pb2.PublishStreamRequest(
                sequence=sequence * 10, events=[event("stream/t", b"e", priority=priority)] * 3)

    responses = [r async for r in stubs.publish.PublishStream(requests())]
    assert [r.sequence for r in responses] == [s * 10 for s in range(200)]
    assert all(len(r.results) == 3 and r.results[0].HasField("ack") for r in responses)
    await stubs.close()


async def test_start_from_offsets_and_time(start_server):
    server = start_server({"storage": {"partitions": 2}})
    stubs = Stubs(server.target)
    acks = []
    for n in range(10):
        acks.append((await stubs.publish.Publish(publish_request("replay/t", str(n).encode(),
                                                                 key="k"))).ack)
    partition = acks[0].partition
    call = stubs.subscribe.Subscribe(subscribe_request(
        "#", start_from=subscribe_pb2.START_FROM_OFFSETS,
        start_offsets=[common_pb2.PartitionOffset(partition=partition, offset=acks[6].offset)]))
    await stubs.publish.Publish(publish_request("replay/t", b"10", key="k"))
    got = await collect(call, 5)
    call.cancel()
    assert [e.payload for e in got] == [b"6", b"7", b"8", b"9", b"10"]
    request = subscribe_request("replay/#", start_from=subscribe_pb2.START_FROM_TIME)
    request.start_time.FromNanoseconds(acks[4].ingest_time.ToNanoseconds())
    call = stubs.subscribe.Subscribe(request)
    got = await collect(call, 7)
    call.cancel()
    assert [e.payload for e in got] == [str(n).encode() for n in range(4, 11)]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        bad = stubs.subscribe.Subscribe(subscribe_request(
            "#", start_from=subscribe_pb2.START_FROM_OFFSETS,
            start_offsets=[common_pb2.PartitionOffset(partition=7, offset=0)]))
        await collect(bad, 1)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "start_offsets[0].partition" in error.value.details()
    await stubs.close()
