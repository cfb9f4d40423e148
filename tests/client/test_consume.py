"""Consumer groups through the SDK, against the real server.

Sync and async members ack what they get; two members of one group share the
events and ack each once; a nacked event comes back; an event nacked
max_deliveries times lands in dead-letter/<group>; a member whose connection
is cut joins again and the group still gets everything.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from eventstream.client import (
    AsyncClient,
    Client,
    ConsumedEvent,
    Event,
    InvalidArgumentError,
    ReceivedEvent,
)
from tests.support.server import metric, wait_for_metric

pytestmark = pytest.mark.timeout(120)

CONFIG = {"storage": {"partitions": 4}}


def publish(client, topic, count, first=0):
    results = client.publish_batch([Event(topic, str(n), key=f"k{n % 13}", id=f"{topic}-{n}")
                                    for n in range(first, first + count)])
    return {(r.unwrap().partition, r.unwrap().offset) for r in results}


def position(event: ReceivedEvent) -> tuple[int, int]:
    return event.partition, event.offset


def until(condition, what):
    """Wait (bounded) for a condition the server makes true soon."""
    for _ in range(2000):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def async_until(condition, what):
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_a_blocking_consumer_acks_everything_and_the_group_goes_on_after_it(start_server):
    server = start_server(CONFIG)
    with Client(server.target) as client:
        published = publish(client, "jobs/new", 60)
        got = []
        with client.consume("workers", "jobs/#", start="earliest") as consumer:
            for event in consumer:
                assert isinstance(event, ConsumedEvent) and event.id.startswith("jobs/new-")
                got.append(position(event))
                event.ack()
                if len(got) == len(published):
                    break
            assert consumer.assignment is not None
            assert consumer.assignment.partitions == (0, 1, 2, 3)
        assert sorted(got) == sorted(published), "lost or repeated events"
        assert wait_for_metric(server, "eventstream_group_acks_total", 60, group="workers") == 60
        assert metric(server, "eventstream_group_lag", group="workers") == 0
        # A new member of the same group goes on after the acked events.
        last = publish(client, "jobs/new", 1, first=60)
        with client.consume("workers", "jobs/#", start="earliest") as consumer:
            event = next(consumer)
            event.ack()
        assert {position(event)} == last and event.text == "60"


async def test_an_async_consumer_acks_in_batches_through_the_consumer(start_server):
    server = start_server(CONFIG)
    async with AsyncClient(server.target) as client:
        results = await client.publish_batch([Event("metrics/cpu", str(n), key=f"h{n % 5}")
                                              for n in range(200)])
        published = {(r.unwrap().partition, r.unwrap().offset) for r in results}
        got: list[ReceivedEvent] = []
        async with client.consume("dash", "metrics/*", start="earliest",
                                  max_in_flight=50) as consumer:
            async for event in consumer:
                got.append(event)
                if len(got) % 20 == 0:
                    consumer.ack(*got[-20:])   # twenty positions in one request
                if len(got) == 200:
                    break
            assert consumer.assignment is not None and consumer.assignment.member_id
        assert sorted(position(e) for e in got) == sorted(published)
        acked = await asyncio.to_thread(wait_for_metric, server,
                                        "eventstream_group_acks_total", 200, group="dash")
        assert acked == 200
        assert metric(server, "eventstream_group_redeliveries_total", group="dash") == 0


async def test_two_members_share_the_events_and_each_is_acked_once(start_server):
    server = start_server(CONFIG)
    async with AsyncClient(server.target) as client:
        settings = dict(start="earliest", ack_deadline_seconds=120, max_in_flight=20)
        first = client.consume("billing", "orders/#", **settings)
        await async_until(lambda: first.assignment is not None, "first member assigned")
        second = client.consume("billing", "orders/#", **settings)
        await async_until(lambda: (second.assignment is not None and first.assignment
                                   and first.assignment.generation
                                   == second.assignment.generation), "both members assigned")
        assert sorted(first.assignment.partitions + second.assignment.partitions) == [0, 1, 2, 3]

        results = await client.publish_batch([Event("orders/new", str(n), key=f"c{n}")
                                              for n in range(400)])
        published = {(r.unwrap().partition, r.unwrap().offset) for r in results}
        acked: dict[str, list[tuple[int, int]]] = {"first": [], "second": []}
        everything_acked = asyncio.Event()

        async def work(name, consumer):
            async for event in consumer:
                acked[name].append(position(event))
                event.ack()
                if sum(map(len, acked.values())) >= len(published):
                    everything_acked.set()

        tasks = [asyncio.create_task(work("first", first)),
                 asyncio.create_task(work("second", second))]
        await everything_acked.wait()
        await first.close()
        await second.close()
        await asyncio.gather(*tasks)
    assert acked["first"] and acked["second"], "one member got nothing"
    all_acks = acked["first"] + acked["second"]
    assert len(all_acks) == len(set(all_acks)) == len(published), "an event was acked twice"
    assert set(all_acks) == published
    assert {p for p, _ in acked["first"]} <= set(first.assignment.partitions)
    assert await asyncio.to_thread(wait_for_metric, server, "eventstream_group_acks_total",
                                   400, group="billing") == 400
    assert metric(server, "eventstream_group_lag", group="billing") == 0


def test_a_nacked_event_is_delivered_again(server):
    with Client(server.target) as client:
        client.publish(Event("mail/out", b"retry me", id="mail-1"))
        # A long ack deadline: only the nack can bring the event back in time.
        with client.consume("mailer", "mail/#", start="earliest",
                            ack_deadline_seconds=3600) as consumer:
            first = next(consumer)
            first.nack()
            again = next(consumer)
            again.ack()
    assert (again.id, position(again)) == (first.id, position(first))
    assert wait_for_metric(server, "eventstream_group_acks_total", 1, group="mailer") == 1
    assert metric(server, "eventstream_group_redeliveries_total", group="mailer") >= 1


def test_an_event_nacked_max_deliveries_times_lands_in_the_dead_letter_topic(server):
    with Client(server.target) as client:
        client.publish_batch([Event("pay/in", b"poison", id="pay-1", headers={"origin": "t"}),
                              Event("pay/in", b"fine", id="pay-2")])
        deliveries = 0
        with client.consume("payments", "pay/#", start="earliest", max_deliveries=3,
                            ack_deadline_seconds=3600) as consumer:
            for event in consumer:
                if event.payload == b"fine":
                    event.ack()
                    continue
                deliveries += 1
                event.nack()
                if deliveries == 3:
                    break
            with client.subscribe("dead-letter/payments", start="earliest") as dead:
                moved = next(dead)
    assert (moved.topic, moved.payload) == ("dead-letter/payments", b"poison")
    assert moved.headers["origin"] == "t" and moved.headers["dead-letter-id"] == "pay-1"
    assert moved.headers["dead-letter-topic"] == "pay/in"
    assert moved.headers["dead-letter-deliveries"] == "3"
    assert wait_for_metric(server, "eventstream_group_dead_lettered_total", 1,
                           group="payments") == 1


def test_a_member_whose_connection_is_cut_joins_again(start_server, start_proxy):
    server = start_server(CONFIG)
    proxy = start_proxy(server.target)
    with Client(server.target) as direct, Client(proxy.target) as client:
        published = publish(direct, "cut/t", 120)
        seen: set[tuple[int, int]] = set()
        members = set()
        with client.consume("cutters", "cut/#", start="earliest", max_in_flight=10) as consumer:
            for event in consumer:
                seen.add(position(event))
                event.ack()
                if consumer.assignment is not None:
                    members.add(consumer.assignment.member_id)
                if len(seen) == 40 and proxy.connections == 1:
                    proxy.cut()
                if seen == published:
                    break
    assert proxy.connections >= 2, "the consumer never joined again"
    assert len(members) >= 2, "the rejoin did not make a new member"
    assert seen == published


async def test_an_async_member_joins_again_after_a_cut_and_keeps_acking(start_server,
                                                                          start_proxy):
    server = start_server(CONFIG)
    proxy = start_proxy(server.target)
    async with AsyncClient(server.target) as direct, AsyncClient(proxy.target) as client:
        results = await direct.publish_batch([Event("acut/t", str(n), key=f"k{n % 9}")
                                              for n in range(90)])
        published = {(r.unwrap().partition, r.unwrap().offset) for r in results}
        seen: set[tuple[int, int]] = set()
        members = set()
        async with client.consume("acutters", "acut/#", start="earliest",
                                  max_in_flight=10) as consumer:
            async for event in consumer:
                seen.add(position(event))
                consumer.ack(event)
                members.add(consumer.assignment.member_id)
                if len(seen) == 30 and proxy.connections == 1:
                    await asyncio.to_thread(proxy.cut)
                if seen == published:
                    break
    assert proxy.connections >= 2 and len(members) >= 2, "the consumer never joined again"
    assert seen == published


def test_a_member_with_other_patterns_is_refused_naming_the_field(server):
    with Client(server.target) as client, client.consume("same", "a/#") as first:
        until(lambda: first.assignment is not None, "first member assigned")
        with client.consume("same", "b/#") as other, pytest.raises(InvalidArgumentError) as error:
            next(other)
    assert error.value.field == "start.patterns"


def test_acks_may_come_from_worker_threads(server):
    with Client(server.target) as client:
        published = publish(client, "pool/t", 30)
        acked: list[tuple[int, int]] = []
        with client.consume("pool", "pool/#", start="earliest") as consumer:
            events = [next(consumer) for _ in range(30)]
            threads = [threading.Thread(target=lambda e=e: (e.ack(), acked.append(position(e))))
                       for e in events]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    assert sorted(acked) == sorted(published)
    assert wait_for_metric(server, "eventstream_group_acks_total", 30, group="pool") == 30
