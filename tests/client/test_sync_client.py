"""The blocking Client against the real server: publish, batch, stream, subscribe, errors."""

from __future__ import annotations

import itertools
import threading

import pytest

from eventstream.client import (
    Client,
    Durability,
    Event,
    InvalidArgumentError,
    OutOfRangeError,
    Priority,
    PublishAck,
)


@pytest.fixture
def client(server):
    with Client(server.target) as client:
        yield client


def take(iterable, count):
    return list(itertools.islice(iterable, count))


def test_publish_then_subscribe_from_earliest_round_trips_every_field(client):
    ack = client.publish(Event("sensors/room-1", "21.5", key="room-1", priority="high",
                               headers={"unit": "C"}, id="reading-1"))
    assert (ack.id, ack.duplicate, ack.durability) == ("reading-1", False, Durability.FSYNCED)
    with client.subscribe("sensors/*", start="earliest") as events:
        [event] = take(events, 1)
    assert (event.id, event.topic, event.key, event.text, event.headers) == (
        "reading-1", "sensors/room-1", "room-1", "21.5", {"unit": "C"})
    assert event.priority is Priority.HIGH
    assert (event.partition, event.offset) == (ack.partition, ack.offset)
    assert event.ingest_time == ack.ingest_time


def test_the_same_id_published_twice_is_stored_once(client):
    first = client.publish(Event("orders/1", b"a", id="order-1"))
    second = client.publish(Event("orders/1", b"a", id="order-1"))
    assert second.duplicate and (second.partition, second.offset) == (first.partition,
                                                                         first.offset)


def test_a_batch_gives_one_result_per_event_and_keeps_the_good_ones(client):
    results = client.publish_batch([Event("batch/a", b"1", key="k"), Event("batch/*", b"2"),
                                    Event("batch/b", b"3", key="k")])
    assert [result.ok for result in results] == [True, False, True]
    error = results[1].error
    assert isinstance(error, InvalidArgumentError)
    assert (error.reason, error.field) == ("TOPIC_WILDCARD", "events[1].topic")
    with pytest.raises(InvalidArgumentError):
        results[1].unwrap()
    with client.subscribe("batch/#", start="earliest") as events:
        assert [e.payload for e in take(events, 2)] == [b"1", b"3"]


def test_a_stream_pipelines_and_answers_in_order(client):
    with client.publish_stream(window=8) as stream:
        singles = [stream.send(Event("stream/k", str(n), key="k")) for n in range(40)]
        batch = stream.send_batch([Event("stream/k", "last", key="k"), Event("", "bad")])
    offsets = [future.result().offset for future in singles]
    assert offsets == sorted(offsets) and len(set(offsets)) == 40
    last, bad = batch.result()
    assert isinstance(last.ack, PublishAck) and last.ack.offset > offsets[-1]
    assert bad.error is not None and bad.error.field == "events[1].topic"


def test_a_refused_single_event_in_a_stream_fails_its_own_future_only(client):
    with client.publish_stream() as stream:
        bad = stream.send(Event("bad/#", b"x"))
        good = stream.send(Event("good/t", b"x"))
    with pytest.raises(InvalidArgumentError) as error:
        bad.result()
    assert error.value.reason == "TOPIC_WILDCARD"
    assert good.result().id


def test_subscribe_filters_by_pattern_and_priority_and_starts_at_offsets(client):
    client.publish_batch([Event("filter/a", b"low", priority="low", key="k"),
                          Event("filter/a/deep", b"deep", priority="critical", key="k"),
                          Event("filter/b", b"high", priority=Priority.HIGH, key="k")])
    with client.subscribe("filter/*", min_priority="high", start="earliest") as events:
        [event] = take(events, 1)
        assert event.payload == b"high"
    with client.subscribe("filter/#", start={event.partition: event.offset}) as events:
        assert take(events, 1)[0].payload == b"high"


def test_typed_errors_carry_code_reason_and_field(client):
    with pytest.raises(InvalidArgumentError) as error:
        client.publish(Event("", b"x"))
    assert (error.value.reason, error.value.field) == ("TOPIC_EMPTY", "event.topic")
    assert error.value.message.startswith("event.topic:") and not error.value.retryable
    with pytest.raises(InvalidArgumentError) as error:
        take(client.subscribe("a/#/b"), 1)
    assert error.value.field == "patterns[0]"


def test_cluster_status_names_the_node(client):
    status = client.cluster_status()
    assert (status.node_id, status.role, status.leader_id) == ("test-node", "LEADER", "test-node")
    assert [member.node_id for member in status.members] == ["test-node"]
    # Alone, it leads at its own address, and lags behind no one.
    assert status.leader_address == client.publish_target
    assert (status.members[0].lag_entries, status.members[0].lag_seconds) == (0, 0.0)


def test_a_start_offset_no_longer_retained_is_out_of_range(start_server):
    server = start_server({"storage": {"engine": "memory", "memory_max_bytes": 4096,
                                       "partitions": 1}})
    with Client(server.target) as client:
        for _ in range(8):  # 8 rounds: the log evicts whole entries, the oldest first
            client.publish_batch([Event("evict/t", b"x" * 512) for _ in range(8)])
        with pytest.raises(OutOfRangeError) as error:
            take(client.subscribe("#", start={0: 0}), 1)
    assert error.value.field == "start_offsets[0].offset"


def test_close_from_another_thread_ends_a_blocked_iteration(client):
    subscription = client.subscribe("quiet/#")
    closer = threading.Timer(0.2, subscription.close)  # the iteration below blocks first
    closer.start()
    assert list(subscription) == []
    closer.join()
