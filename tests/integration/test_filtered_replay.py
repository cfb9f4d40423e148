"""A filtered replay finds its few events behind many others on an idle server."""

from __future__ import annotations

import asyncio

import pytest

from eventstream.v1 import publish_pb2, subscribe_pb2
from tests.support.client import Stubs, collect, event, subscribe_request

from .test_groups import GroupMember

pytestmark = pytest.mark.timeout(120)
EARLIEST = subscribe_pb2.START_FROM_EARLIEST


async def publish_needles_behind_hay(stubs: Stubs) -> None:
    """5,000 events of another topic, then 3 matching ones; nothing after them."""
    for start in range(0, 5000, 1000):
        await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(
            events=[event("hay/x", b"%d" % i) for i in range(start, start + 1000)]))
    await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(
        events=[event("needle/x", b"n%d" % i) for i in range(3)]))


@pytest.fixture
def one_partition(start_server):
    return start_server({"storage": {"partitions": 1}})


async def test_a_filtered_subscription_scans_past_unmatched_events(one_partition):
    stubs = Stubs(one_partition.target)
    await publish_needles_behind_hay(stubs)
    call = stubs.subscribe.Subscribe(subscribe_request("needle/#", start_from=EARLIEST))
    # The deadline is only the point at which the test gives up: no publish follows,
    # so a subscription that waits for the next commit never gets them.
    got = await asyncio.wait_for(collect(call, 3), 60)
    call.cancel()
    assert [e.payload for e in got] == [b"n0", b"n1", b"n2"]
    assert [e.offset for e in got] == [5000, 5001, 5002]
    await stubs.close()


async def test_a_filtered_group_scans_past_unmatched_events(one_partition):
    stubs = Stubs(one_partition.target)
    await publish_needles_behind_hay(stubs)
    member = GroupMember(stubs, "needles", patterns=["needle/#"], start_from=EARLIEST)
    got = await asyncio.wait_for(member.events(3), 60)
    assert [e.payload for e in got] == [b"n0", b"n1", b"n2"]
    member.kill()
    await stubs.close()
