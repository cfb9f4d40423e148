"""Shared pieces of the durable-log tests: publish with ids, read a whole log back."""

from __future__ import annotations

import asyncio
import json

from eventstream.v1 import common_pb2, publish_pb2, subscribe_pb2
from tests.support.client import Stubs, event, subscribe_request
from tests.support.server import ServerProcess, http_get


def payload_of(event_id: str, size: int = 0) -> bytes:
    """The payload every test event carries: derived from its id, so a stored event can be checked whole.

    Repeated up to ``size`` bytes when that is longer.
    """
    payload = (event_id * 8).encode()
    if size > len(payload):
        payload = (payload * (size // len(payload) + 1))[:size]
    return payload


async def publish_batch(stubs: Stubs, ids: list[str], topic: str = "durable/t",
                        key: str = "") -> list[publish_pb2.PublishAck]:
    """Publish events with these ids in one batch; return their acknowledgements."""
    response = await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(
        events=[event(topic, payload_of(i), id=i, key=key) for i in ids]), timeout=30)
    acks = []
    for result in response.results:
        assert result.HasField("ack"), result
        acks.append(result.ack)
    return acks


async def publish_rounds(stubs: Stubs, prefix: str, rounds: int, size: int,
                         keys: int = 0) -> list[publish_pb2.PublishAck]:
    """Publish ``rounds`` batches of ``size`` events; return every acknowledgement.

    Ids are ``<prefix><round>-<i>``, keyed round-robin over ``keys`` keys
    (none when 0).
    """
    acks = []
    for number in range(rounds):
        acks += await publish_batch(stubs, [f"{prefix}{number}-{i}" for i in range(size)],
                                    key=f"k{number % keys}" if keys else "")
    return acks


def end_offsets(server: ServerProcess) -> list[int]:
    """The high watermark of every partition, from /status."""
    _, body = http_get(f"{server.http}/status")
    return json.loads(body)["log"]["end_offsets"]


async def read_range(stubs: Stubs, request: subscribe_pb2.SubscribeRequest,
                     until: list[int]) -> list[common_pb2.Event]:
    """Subscribe and collect until every partition delivered up to ``until`` (exclusive)."""
    events: list[common_pb2.Event] = []
    reached = [0] * len(until)
    if all(end == 0 for end in until):
        return events
    call = stubs.subscribe.Subscribe(request)
    try:
        async with asyncio.timeout(60):
            async for response in call:
                for item in response.events:
                    events.append(item)
                    reached[item.partition] = item.offset + 1
                if all(r >= end for r, end in zip(reached, until)):
                    break
    finally:
        call.cancel()
    return events


async def read_all(server: ServerProcess, stubs: Stubs) -> list[common_pb2.Event]:
    """Every committed event, read from the earliest offsets."""
    return await read_range(stubs, subscribe_request(
        "#", start_from=subscribe_pb2.START_FROM_EARLIEST), end_offsets(server))


def by_partition(events: list[common_pb2.Event]) -> dict[int, list[common_pb2.Event]]:
    """Events grouped by partition, in delivery order."""
    grouped: dict[int, list[common_pb2.Event]] = {}
    for item in events:
        grouped.setdefault(item.partition, []).append(item)
    return grouped


def assert_contiguous(events: list[common_pb2.Event], starts: dict[int, int] | None = None
                      ) -> None:
    """Per partition: offsets consecutive from the start (0 by default), no gap, no duplicate."""
    for partition, items in by_partition(events).items():
        first = (starts or {}).get(partition, 0)
        offsets = [item.offset for item in items]
        assert offsets == list(range(first, first + len(items))), (partition, offsets[:20])
