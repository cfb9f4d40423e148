"""Bad input and full lanes: the right status, the field named, a counter moved."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from eventstream.v1 import common_pb2, publish_pb2, subscribe_pb2
from tests.support.client import Stubs, collect, event, subscribe_request
from tests.support.server import metric


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The google.rpc.Status carried in the trailers."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError("no grpc-status-details-bin trailer")


BAD_EVENTS = [
    ("TOPIC_EMPTY", "event.topic", event("", b"x")),
    ("TOPIC_WILDCARD", "event.topic", event("sensors/*", b"x")),
    ("TOPIC_WILDCARD", "event.topic", event("sensors/#", b"x")),
    ("TOPIC_EMPTY_LEVEL", "event.topic", event("sensors//a", b"x")),
    ("PAYLOAD_TOO_LARGE", "event.payload", event("big/t", b"x" * 1025)),
    ("PRIORITY_UNKNOWN", "event.priority", event("prio/t", b"x", priority=9)),
]


@pytest.mark.parametrize("reason,field,bad", BAD_EVENTS, ids=[f"{r}-{f}" for r, f, _ in BAD_EVENTS])
async def test_bad_events_get_invalid_argument_naming_the_field(start_server, reason, field, bad):
    server = start_server({"limits": {"max_message_bytes": 1024}})
    stubs = Stubs(server.target)
    before = metric(server, "eventstream_events_rejected_total", transport="grpc", reason=reason)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stubs.publish.Publish(publish_pb2.PublishRequest(event=bad))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"{field}:")
    status = rich_status(error.value)
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert (info.reason, info.metadata["field"]) == (reason, field)
    after = metric(server, "eventstream_events_rejected_total", transport="grpc", reason=reason)
    assert after == before + 1
    await stubs.close()


async def test_a_batch_refuses_bad_events_one_by_one_and_keeps_the_good(start_server):
    server = start_server({"limits": {"max_message_bytes": 1024}})
    stubs = Stubs(server.target)
    response = await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=[
        event("good/a", b"1"), event("", b"2"), event("good/b", b"x" * 2000), event("good/c", b"3"),
    ]))
    kinds = [r.WhichOneof("outcome") for r in response.results]
    assert kinds == ["ack", "error", "error", "ack"]
    assert response.results[1].error.field == "events[1].topic"
    assert response.results[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert response.results[2].error.reason == "PAYLOAD_TOO_LARGE"
    call = stubs.subscribe.Subscribe(
        subscribe_request("good/#", start_from=subscribe_pb2.START_FROM_EARLIEST))
    got = await collect(call, 2)
    call.cancel()
    assert sorted(e.payload for e in got) == [b"1", b"3"]
    await stubs.close()


def _framed(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


async def test_wire_level_problems_are_refused_per_event_or_per_request(server):
    """Events that protobuf cannot decode (bad UTF-8, broken fields) are refused
    one by one, naming the field; a request that is not protobuf at all is refused whole."""
    async with grpc.aio.insecure_channel(server.target) as channel:
        batch = channel.unary_unary("/eventstream.v1.PublishService/PublishBatch")
        good = _framed(2, b"good/a") + _framed(4, b"1")
        raw = b"".join(_framed(1, e) for e in [
            good, _framed(2, b"bad/\xff"), _framed(1, b"\xc3") + _framed(2, b"t"),
            b"\x12\x09short", good])
        response = publish_pb2.PublishBatchResponse.FromString(await batch(raw))
        outcomes = [(r.WhichOneof("outcome"), r.error.reason, r.error.field) for r in response.results]
        assert outcomes == [("ack", "", ""), ("error", "TOPIC_NOT_UTF8", "events[1].topic"),
                            ("error", "ID_NOT_UTF8", "events[2].id"),
                            ("error", "EVENT_MALFORMED", "events[3]"), ("ack", "", "")]
        before = metric(server, "eventstream_events_rejected_total", transport="grpc",
                        reason="REQUEST_MALFORMED")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await batch(b"\x0a\x20cut short")
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid protobuf message" in error.value.details()
        assert metric(server, "eventstream_events_rejected_total", transport="grpc",
                      reason="REQUEST_MALFORMED") == before + 1


async def test_bad_subscriptions_are_refused_naming_the_field(server):
    stubs = Stubs(server.target)
    for request, field in [
        (subscribe_request("a/#/b"), "patterns[0]"),
        (subscribe_request("ok/*", "a*"), "patterns[1]"),
        (subscribe_request(), "patterns"),
        (subscribe_request("#", start_from=subscribe_pb2.START_FROM_TIME), "start_time"),
        (subscribe_request("#", min_priority=42), "min_priority"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await collect(stubs.subscribe.Subscribe(request), 1)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert error.value.details().startswith(f"{field}:"), error.value.details()
    await stubs.close()


async def test_full_lane_gives_resource_exhausted_and_drops_nothing_accepted(start_server):
    server = start_server({"queues": {"realtime_capacity": 20, "batch_capacity": 20}})
    stubs = Stubs(server.target)
    high = common_pb2.PRIORITY_HIGH
    # A request larger than the lane can never fit: refused whole, with a retry hint.
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(
            events=[event("full/t", b"x", priority=high)] * 21))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "realtime lane is full" in error.value.details()
    retry = [d for d in rich_status(error.value).details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert retry, "RetryInfo detail expected"
    assert metric(server, "eventstream_events_rejected_total", transport="grpc",
                  reason="LANE_FULL") == 21

    # Concurrent batches, some too large for their lane (one of them only for the
    # batch lane): the refused ones leave nothing behind, every accepted event is
    # committed and delivered exactly once.
    async def one_batch(n: int) -> list[str]:
        size = 21 if n % 3 == 0 else 8
        events = [event("full/t", f"{n}-{i}".encode(), id=f"{n}-{i}",
                        priority=high if n % 2 else common_pb2.PRIORITY_LOW) for i in range(size)]
        if n == 1:  # fits the realtime lane, not the batch lane: refused whole
            events += [event("full/t", f"{n}-low-{i}".encode(), id=f"{n}-low-{i}")
                       for i in range(21)]
        try:
            response = await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=events))
        except grpc.aio.AioRpcError as refused:
            assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            return []
        return [r.ack.id for r in response.results]

    results = await asyncio.gather(*(one_batch(n) for n in range(60)))
    accepted = [i for r in results for i in r]
    # The oversized ones always fail; others may too when the lanes are busy.
    assert all(not results[n] for n in range(60) if n % 3 == 0 or n == 1)
    assert accepted, "nothing was accepted"
    call = stubs.subscribe.Subscribe(
        subscribe_request("full/#", start_from=subscribe_pb2.START_FROM_EARLIEST))
    got = await collect(call, len(accepted))
    call.cancel()
    assert sorted(e.id for e in got) == sorted(accepted)
    assert metric(server, "eventstream_queue_full_total", queue="realtime") >= 1
    assert metric(server, "eventstream_queue_full_total", queue="batch") >= 1
    await stubs.close()
