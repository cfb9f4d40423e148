"""Events clients could not decode are refused, and one already stored stops no one.

An event is stored once for every reader: if it cannot be decoded (a header
that is not UTF-8, a publish_time outside the Timestamp range), every
subscriber and group reading its batch fails on it forever. Such events are
refused one by one at publish; one that is in the log already (written by an
earlier version) is moved to the dead-letter topic as bytes, and the group
goes on.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2
from google.protobuf.unknown_fields import UnknownFieldSet

from eventstream.client import AsyncClient
from eventstream.server.config.model import StorageConfig
from eventstream.server.native import NativeWire
from eventstream.server.storage.entries import EntryEncoder
from eventstream.server.storage.entry_log import DiskEntryLog
from eventstream.v1 import common_pb2, publish_pb2, subscribe_pb2
from tests.support.client import Stubs, collect, error_info, event, subscribe_request
from tests.support.server import ServerProcess, metric

from .test_groups import GroupMember, wait_for_metric

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
    assert error_info(error.value) == ("PUBLISH_TIME_OUT_OF_RANGE", "event.publish_time")
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


async def _store(data_dir: Path, events: list[bytes]) -> None:
    """Write events straight into a data dir, as an earlier version may have
    stored them (each with its partition and offset, like the server's records)."""
    wire = NativeWire()
    disk = DiskEntryLog(StorageConfig(data_dir=str(data_dir), partitions=1), wire)
    data, ends, topics = bytearray(), array("I"), array("I")
    for offset, body in enumerate(events):
        stored = body + b"\x48\x00\x50" + _varint(offset)
        record = b"\x0a" + _varint(len(stored)) + stored
        topics.extend((len(data) + len(record) - len(stored) + 2, 4))  # "pp/t" opens every body
        data += record
        ends.append(len(data))
    source = StoredRun(bytes(data), ends, topics, bytes([2] * len(events)), [len(events)])
    encoder = EntryEncoder(wire, disk.last_index() + 1)
    encoder.add_events(1, [source], array("Q", [disk.next_offset(0)]), time.time_ns())
    await disk.append(encoder.finish())
    disk.close()


@dataclass(frozen=True)
class StoredRun:
    """Records of one partition as the event encoder places them (what an EVENTS entry takes)."""

    records: bytes
    ends: array
    topics: array
    priorities: bytes
    part_counts: list[int]


def _fields(message: bytes) -> list:
    """The fields of an encoded message, read as wire data only (no UTF-8 checks)."""
    return list(UnknownFieldSet(empty_pb2.Empty.FromString(message)))


class RawMember:
    """A Consume stream in bytes: its responses hold an event protobuf refuses."""

    def __init__(self, channel: grpc.aio.Channel, start: subscribe_pb2.ConsumeStart) -> None:
        self._requests: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.send(subscribe_pb2.ConsumeRequest(start=start))
        consume = channel.stream_stream("/eventstream.v1.SubscribeService/Consume")
        self.call = consume(self._outgoing())

    async def _outgoing(self):
        while (request := await self._requests.get()) is not None:
            yield request

    def send(self, request: subscribe_pb2.ConsumeRequest) -> None:
        self._requests.put_nowait(request.SerializeToString())

    async def positions(self, count: int) -> set[tuple[int, int]]:
        """(partition, offset) of the events delivered, until ``count`` of them."""
        seen: set[tuple[int, int]] = set()
        while len(seen) < count:
            response = await self.call.read()
            assert response is not grpc.aio.EOF, "the stream ended"
            for item in _fields(response):
                if item.field_number == 1:   # ConsumeResponse.events
                    fields = {f.field_number: f.data for f in _fields(item.data)}
                    seen.add((fields.get(9, 0), fields.get(10, 0)))
        return seen

    def close(self) -> None:
        self._requests.put_nowait(None)
        self.call.cancel()


def _positions(*offsets: int) -> subscribe_pb2.EventPositions:
    return subscribe_pb2.EventPositions(
        events=[common_pb2.PartitionOffset(partition=0, offset=o) for o in offsets])


async def test_a_stored_event_that_does_not_decode_goes_to_the_dead_letters_as_bytes(tmp_path):
    workdir = tmp_path / "node"
    workdir.mkdir()
    poison = _good(b"poison", _header(b"k", b"\xff"))
    await _store(workdir / "data", [_good(b"before"), poison, _good(b"after")])
    server = ServerProcess(workdir, {"storage": {"partitions": 1}})
    try:
        server.start()   # although the poison is inside the de-duplication window
        async with grpc.aio.insecure_channel(server.target) as channel:
            member = RawMember(channel, subscribe_pb2.ConsumeStart(
                group="eaters", patterns=["pp/#"], start_from=EARLIEST, max_deliveries=1))
            assert await member.positions(3) == {(0, 0), (0, 1), (0, 2)}
            member.send(subscribe_pb2.ConsumeRequest(ack=_positions(0, 2)))
            # Nacked at max_deliveries: moved, and the group's committed offset passes it.
            member.send(subscribe_pb2.ConsumeRequest(nack=_positions(1)))
            await wait_for_metric(server, "eventstream_group_dead_lettered_total", 1,
                                  group="eaters")
            assert metric(server, "eventstream_events_rejected_total", transport="dead-letter",
                          reason="EVENT_UNDECODABLE") == 1
            # The dead-letter event (offset 3) is the group's to skip: then nothing is left.
            await wait_for_metric(server, "eventstream_log_end_offset", 4, partition="0")
            for _ in range(600):
                if metric(server, "eventstream_group_lag", group="eaters") == 0:
                    break
                await asyncio.sleep(0.05)
            assert metric(server, "eventstream_group_lag", group="eaters") == 0
            member.close()
        stubs = Stubs(server.target)
        moved = (await collect(stubs.subscribe.Subscribe(subscribe_request(
            "dead-letter/#", start_from=EARLIEST)), 1))[0]
        assert moved.topic == "dead-letter/eaters"
        assert moved.payload.startswith(poison)          # the stored event, as bytes
        assert moved.headers["dead-letter-offset"] == "1"
        assert moved.headers["dead-letter-raw"].startswith("the stored event does not decode")
        await stubs.close()
    finally:
        server.stop()
    assert "Traceback" not in server.log()


async def test_an_event_whose_dead_letter_copy_is_refused_goes_as_bytes(start_server):
    """A full set of headers leaves no room for the dead-letter ones: the copy is
    refused (once it was retried for ever), so the event goes in raw form."""
    server = start_server({"storage": {"partitions": 1}})
    stubs = Stubs(server.target)
    full = event("pp/t", b"full", headers={f"h{i}": "v" for i in range(64)})
    await stubs.publish.Publish(publish_pb2.PublishRequest(event=full))
    member = GroupMember(stubs, "strict", patterns=["pp/#"], start_from=EARLIEST,
                         max_deliveries=1)
    member.nack(await member.events(1))
    moved = (await collect(stubs.subscribe.Subscribe(subscribe_request(
        "dead-letter/#", start_from=EARLIEST)), 1))[0]
    member.kill()
    assert moved.headers["dead-letter-raw"] == "its copy was refused"
    original = common_pb2.Event.FromString(moved.payload)
    assert (original.payload, len(original.headers), original.offset) == (b"full", 64, 0)
    assert metric(server, "eventstream_events_rejected_total", transport="dead-letter",
                  reason="TOO_MANY_HEADERS") == 1
    await wait_for_metric(server, "eventstream_group_dead_lettered_total", 1, group="strict")
    await stubs.close()
