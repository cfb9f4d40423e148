"""Events clients could not decode are refused.

An event is stored once for every reader: if it cannot be decoded (a header
that is not UTF-8, a publish_time outside the Timestamp range), every
subscriber and group reading its batch fails on it forever. Such events are
refused one by one at publish.
"""

from __future__ import annotations

import grpc
import pytest
from eventstream.client import AsyncClient
from eventstream.v1 import publish_pb2, subscribe_pb2

from tests.support.client import Stubs, collect, event, subscribe_request
from tests.support.server import metric

from .test_groups import GroupMember
from .test_request_checks import reason_of

pytestmark = pytest.mark.timeout(120)
EARLIEST = subscribe_pb2.START_FROM_EARLIEST
MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _header(key: bytes, value: bytes) -> bytes:
    return _field(6, _field(1, key) + _field(2, value))


def _publish_time(seconds: int | None = None, nanos: int | None = None) -> bytes:
    fields = (b"" if seconds is None else b"\x08" + _varint(seconds)) \
        + (b"" if nanos is None else b"\x10" + _varint(nanos))
    return _field(7, fields)


def _good(payload: bytes, *extra: bytes) -> bytes:
    return _field(2, b"pp/t") + _field(4, payload) + b"".join(extra)


async def test_undecodable_fields_are_refused_per_event_and_the_rest_is_readable(start_server):
    server = start_server({"storage": {"partitions": 1}})
    stubs = Stubs(server.target)
    events = [
        _good(b"first", _header(b"ok", b"yes")),
        _good(b"bad", _header(b"k", b"\xff\xfe")),
        _good(b"bad", _header(b"\xc3", b"v")),
        _good(b"bad", _publish_time(1 << 62)),
        _good(b"bad", _publish_time(0, -1)),
        _good(b"bad", _publish_time(MAX_SECONDS, 1_000_000_000)),
        _good(b"bounds", _publish_time(MAX_SECONDS, 999_999_999), _header(b"k", b"1"),
              _header(b"k", b"2")),
        _good(b"oldest", _publish_time(MIN_SECONDS)),
    ]
    async with grpc.aio.insecure_channel(server.target) as channel:
        batch = channel.unary_unary("/eventstream.v1.PublishService/PublishBatch")
        response = publish_pb2.PublishBatchResponse.FromString(
            await batch(b"".join(_field(1, e) for e in events)))
        single = channel.unary_unary("/eventstream.v1.PublishService/Publish")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await single(_field(1, _good(b"bad", _publish_time(1 << 62))))
    outcomes = [(r.error.reason, r.error.field) for r in response.results]
    assert outcomes == [
        ("", ""), ("HEADER_NOT_UTF8", "events[1].headers"), ("HEADER_NOT_UTF8", "events[2].headers"),
        ("PUBLISH_TIME_OUT_OF_RANGE", "events[3].publish_time"),
        ("PUBLISH_TIME_OUT_OF_RANGE", "events[4].publish_time"),
        ("PUBLISH_TIME_OUT_OF_RANGE", "events[5].publish_time"), ("", ""), ("", "")]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(error.value) == ("PUBLISH_TIME_OUT_OF_RANGE", "event.publish_time")
    assert "9999-12-31T23:59:59.999999999Z" in error.value.details()
    assert metric(server, "eventstream_events_rejected_total", transport="grpc",
                  reason="HEADER_NOT_UTF8") == 2
    assert metric(server, "eventstream_events_rejected_total", transport="grpc",
                  reason="PUBLISH_TIME_OUT_OF_RANGE") == 4

    # Every reader decodes every stored event: a subscriber, a group, the SDK.
    got = await collect(stubs.subscribe.Subscribe(subscribe_request("pp/#", start_from=EARLIEST)), 3)
    assert [e.payload for e in got] == [b"first", b"bounds", b"oldest"]
    assert got[1].headers["k"] == "2"          # a key sent twice: the last value wins
    member = GroupMember(stubs, "readers", patterns=["pp/#"], start_from=EARLIEST)
    assert [e.payload for e in await member.events(3)] == [b"first", b"bounds", b"oldest"]
    member.kill()
    async with AsyncClient(server.target) as client:
        async with client.subscribe("pp/#", start="earliest") as subscription:
            seen = []
            async for item in subscription:
                seen.append(item)
                if len(seen) == 3:
                    break
    assert [item.publish_time.year for item in seen[1:]] == [9999, 1]
    await stubs.close()
