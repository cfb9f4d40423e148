"""Deliveries are bounded in bytes, and every event the node accepts can be delivered."""

from __future__ import annotations

import grpc
import pytest

from eventstream.v1 import publish_pb2, subscribe_pb2
from tests.support.client import Stubs, error_info, event, subscribe_request
from tests.support.server import metric

from .test_groups import GroupMember

pytestmark = pytest.mark.timeout(180)
EARLIEST = subscribe_pb2.START_FROM_EARLIEST
MIB = 1024 * 1024


async def publish_one_by_one(stubs: Stubs, events) -> None:
    for one in events:
        await stubs.publish.Publish(publish_pb2.PublishRequest(event=one))


async def subscription_responses(stubs: Stubs, pattern: str, count: int
                                 ) -> list[subscribe_pb2.SubscribeResponse]:
    """The responses of a subscription from the earliest event until ``count`` events."""
    call = stubs.subscribe.Subscribe(subscribe_request(pattern, start_from=EARLIEST))
    responses, seen = [], 0
    async for response in call:
        responses.append(response)
        seen += len(response.events)
        if seen >= count:
            break
    call.cancel()
    return responses


@pytest.fixture
def one_partition(start_server):
    return start_server({"storage": {"partitions": 1}})


async def test_twenty_events_of_a_mebibyte_reach_a_subscriber_and_a_group(one_partition):
    """Together 20 MiB, over the 16 MiB send limit and a client's 4 MiB receive
    limit: each delivery carries what fits (here one event), with a default client."""
    stubs = Stubs(one_partition.target)
    await publish_one_by_one(stubs, [event("big/t", bytes([i]) * MIB) for i in range(20)])
    responses = await subscription_responses(stubs, "big/#", 20)
    got = [e for r in responses for e in r.events]
    assert [e.payload[:1] for e in got] == [bytes([i]) for i in range(20)]
    assert all(len(r.events) == 1 for r in responses)

    member = GroupMember(stubs, "big", patterns=["big/#"], start_from=EARLIEST)
    got = await member.events(20)
    assert sorted(e.payload[0] for e in got) == list(range(20))
    member.ack(got)
    member.kill()
    await stubs.close()


async def test_the_largest_event_is_delivered_and_headers_count_toward_it(one_partition):
    stubs = Stubs(one_partition.target)
    # Payload at its limit plus headers within the event limit (payload + 64 KiB).
    largest = event("big/t", b"p" * MIB, headers={f"h{i}": "v" * 1000 for i in range(60)})
    await publish_one_by_one(stubs, [largest])
    # 8.5 MB of headers (within the count limit): refused, naming the event and the limit.
    heavy = event("big/t", b"x", headers={f"h{i}": "v" * 212_500 for i in range(40)})
    before = metric(one_partition, "eventstream_events_rejected_total", transport="grpc",
                    reason="EVENT_TOO_LARGE")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stubs.publish.Publish(publish_pb2.PublishRequest(event=heavy))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error.value) == ("EVENT_TOO_LARGE", "event")
    assert error.value.details().startswith(f"event: {heavy.ByteSize()} bytes is over the limit "
                                            f"of {MIB + 65536} bytes")
    batch = await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(
        events=[heavy, event("big/t", b"after")]))
    assert batch.results[0].error.reason == "EVENT_TOO_LARGE"
    assert batch.results[0].error.field == "events[0]"
    assert batch.results[1].HasField("ack")
    assert metric(one_partition, "eventstream_events_rejected_total", transport="grpc",
                  reason="EVENT_TOO_LARGE") == before + 2
    responses = await subscription_responses(stubs, "big/#", 2)
    got = [e for r in responses for e in r.events]
    assert [len(got[0].payload), len(got[0].headers), got[1].payload] == [MIB, 60, b"after"]
    await stubs.close()


async def test_deliveries_stop_at_the_configured_bytes(start_server):
    server = start_server({"storage": {"partitions": 1}, "subscribe": {"max_batch_bytes": 4096},
                           "groups": {"max_batch_bytes": 4096}})
    stubs = Stubs(server.target)
    sizes = [100, 1500, 3000, 5000, 200, 200, 100] * 5
    await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(
        events=[event("s/t", b"%05d" % i + b"x" * (size - 5)) for i, size in enumerate(sizes)]))

    def check(responses: list, count: int) -> None:
        for response in responses:   # within the bound, or one event alone
            assert response.ByteSize() <= 4096 or len(response.events) == 1
        payloads = [e.payload[:5] for r in responses for e in r.events]
        assert sorted(payloads) == [b"%05d" % i for i in range(count)]

    check(await subscription_responses(stubs, "s/#", len(sizes)), len(sizes))
    member = GroupMember(stubs, "bounded", patterns=["s/#"], start_from=EARLIEST)
    responses = []
    while sum(len(r.events) for r in responses) < len(sizes):
        response = await member.call.read()
        assert response is not grpc.aio.EOF
        if response.events:
            responses.append(response)
            member.ack(list(response.events))
    check(responses, len(sizes))
    member.kill()
    await stubs.close()
