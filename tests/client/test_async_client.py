"""The AsyncClient against the real server: publish, batch, stream, subscribe, errors."""

from __future__ import annotations

import asyncio

import pytest

from eventstream.client import AsyncClient, Event, InvalidArgumentError, Priority


@pytest.fixture
async def client(server):
    async with AsyncClient(server.target) as client:
        yield client


async def take(subscription, count):
    events = []
    async with subscription:
        async for event in subscription:
            events.append(event)
            if len(events) == count:
                break
    return events


async def test_publish_batch_and_subscribe_from_earliest(client):
    ack = await client.publish(Event("async/a", b"one", key="k", headers={"h": "1"}))
    results = await client.publish_batch([Event("async/b", "two", key="k"),
                                          Event("async/#", b"bad")])
    assert results[0].ok and results[1].error is not None
    assert results[1].error.reason == "TOPIC_WILDCARD"
    events = await take(client.subscribe("async/#", start="earliest"), 2)
    assert [(e.id, e.payload, e.headers) for e in events] == [
        (ack.id, b"one", {"h": "1"}), (results[0].unwrap().id, b"two", {})]
    assert events[1].priority is Priority.MEDIUM


async def test_a_stream_resolves_sends_in_order(client):
    async with client.publish_stream(window=4) as stream:
        pending = [await stream.send(Event("astream/k", str(n), key="k")) for n in range(30)]
        batch = await stream.send_batch([Event("astream/k", "b", key="k"), Event("", "x")])
        acks = await asyncio.gather(*pending)
        results = await batch
    offsets = [ack.offset for ack in acks]
    assert offsets == sorted(offsets) and len(set(offsets)) == 30
    assert results[0].unwrap().offset == offsets[-1] + 1
    assert isinstance(results[1].error, InvalidArgumentError)


async def test_a_refused_event_fails_its_future_and_the_stream_goes_on(client):
    async with client.publish_stream() as stream:
        bad = await stream.send(Event("bad/*", b"x"))
        good = await stream.send(Event("good/t", b"x"))
        with pytest.raises(InvalidArgumentError) as error:
            await bad
        assert error.value.field == "events[0].topic"
        assert (await good).id


async def test_a_live_subscription_gets_events_published_after_it(client):
    subscription = client.subscribe("live/#", start="latest")
    reader = asyncio.create_task(take(subscription, 3))
    # Publish until the subscription has seen three: it may start after the first ones.
    sent = 0
    while not reader.done():
        await client.publish(Event("live/t", str(sent), key="k"))
        sent += 1
        await asyncio.wait([reader], timeout=0.05)
    events = reader.result()
    offsets = [e.offset for e in events]
    assert offsets == list(range(offsets[0], offsets[0] + 3))


async def test_typed_errors_and_cluster_status(client):
    with pytest.raises(InvalidArgumentError) as error:
        await client.publish(Event("t", b"x", priority="critical", key="k" * 2000))
    assert (error.value.reason, error.value.field) == ("KEY_TOO_LONG", "event.key")
    with pytest.raises(InvalidArgumentError) as error:
        await take(client.subscribe(), 1)
    assert error.value.field == "patterns"
    status = await client.cluster_status()
    assert status.role == "LEADER" and status.commit_index >= 0


async def test_an_error_inside_a_stream_block_cancels_the_stream_and_propagates(client):
    with pytest.raises(RuntimeError, match="producer failed"):
        async with client.publish_stream() as stream:
            await stream.send(Event("cancel/t", b"x"))
            raise RuntimeError("producer failed")


async def test_close_ends_a_waiting_async_iteration(client):
    subscription = client.subscribe("quiet/#")
    reader = asyncio.create_task(take(subscription, 1))
    await asyncio.sleep(0.2)  # let the iteration wait for a first event
    subscription.close()
    assert await reader == []
