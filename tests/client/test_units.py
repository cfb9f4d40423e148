"""Pure parts of the SDK: conversions, retry decisions, error decoding, resume positions."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from eventstream.client import (
    Event,
    EventStreamError,
    InvalidArgumentError,
    Priority,
    ResourceExhaustedError,
    RetryPolicy,
    UnavailableError,
)
from eventstream.client._errors import error_from_status, lost_connection, make_error
from eventstream.client._events import event_to_proto
from eventstream.client._leader import LeaderHint, PublishAttempts
from eventstream.client._retry import RetryBudget
from eventstream.client._subscription_state import ResumeState, subscribe_request
from eventstream.v1 import common_pb2, subscribe_pb2


@pytest.mark.parametrize("given,expected", [
    ("high", common_pb2.PRIORITY_HIGH), ("PRIORITY_LOW", common_pb2.PRIORITY_LOW),
    (Priority.CRITICAL, common_pb2.PRIORITY_CRITICAL), ("Batch", common_pb2.PRIORITY_BATCH),
])
def test_priorities_accept_names_in_any_case(given, expected):
    assert event_to_proto(Event("t", priority=given)).priority == expected


def test_a_priority_that_is_not_a_name_is_refused():
    with pytest.raises(ValueError):
        event_to_proto(Event("t", priority="urgent"))


def test_events_convert_with_a_random_id_when_none_is_given():
    first = event_to_proto(Event("t/a", "héllo", key="k", headers={"h": "v"},
                                 publish_time=datetime(2026, 1, 2, tzinfo=UTC)))
    second = event_to_proto(Event("t/a", b"x"))
    assert first.payload == "héllo".encode()
    assert (first.key, dict(first.headers)) == ("k", {"h": "v"})
    assert first.publish_time.ToDatetime(tzinfo=UTC).year == 2026
    assert first.id and second.id and first.id != second.id
    assert first.priority == common_pb2.PRIORITY_UNSPECIFIED
    assert event_to_proto(Event("t", id="mine")).id == "mine"


def test_only_unavailable_and_resource_exhausted_are_retried():
    policy = RetryPolicy(max_attempts=3)
    for code in grpc.StatusCode:
        expected = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert (policy.delay(make_error(code, "m"), 1) is not None) == expected, code
    assert policy.delay(make_error(grpc.StatusCode.UNAVAILABLE, "m"), 3) is None


def test_backoff_is_jittered_under_a_growing_bound_and_honours_the_hint():
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.1, max_backoff=0.5)
    rng = random.Random(7)
    unavailable = make_error(grpc.StatusCode.UNAVAILABLE, "m")
    waits = [policy.delay(unavailable, attempt, rng) for attempt in (1, 2, 3, 4, 9)]
    bounds = [0.1, 0.2, 0.4, 0.5, 0.5]
    assert all(0 <= w <= b for w, b in zip(waits, bounds))
    assert len(set(waits)) == len(waits)
    hinted = make_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "m", retry_delay=3.0)
    assert policy.delay(hinted, 1, rng) == 3.0


def test_a_budget_gives_up_when_the_wait_would_pass_the_deadline():
    now = [0.0]
    budget = RetryBudget(RetryPolicy(max_attempts=9), 1.0, clock=lambda: now[0])
    assert budget.remaining() == 1.0
    now[0] = 0.5
    assert budget.remaining() == 0.5
    hinted = make_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "m", retry_delay=0.6)
    assert budget.wait_after(hinted) is None


def test_the_default_budget_is_a_time_that_counts_from_the_first_failure_of_a_run():
    now = [100.0]
    budget = RetryBudget(RetryPolicy(), None, clock=lambda: now[0])
    unavailable = make_error(grpc.StatusCode.UNAVAILABLE, "m")
    now[0] = 500.0  # a stream that ran a long time before failing
    for attempt in range(1, 60):  # many more attempts than a count-based budget allowed
        budget.remaining()
        wait = budget.wait_after(unavailable)
        assert wait is not None and 0 <= wait <= 1.0, attempt
        now[0] += 0.5
    assert now[0] - 500.0 < 30.0
    now[0] = 531.0  # 31 s after the run's first failure
    budget.remaining()
    assert budget.wait_after(unavailable) is None
    budget.reset()  # the stream was accepted again: a new run
    budget.remaining()
    assert budget.wait_after(unavailable) is not None


def test_max_attempts_still_limits_a_run_and_a_call_never_passes_its_timeout():
    now = [0.0]
    unavailable = make_error(grpc.StatusCode.UNAVAILABLE, "m")
    counted = RetryBudget(RetryPolicy(max_attempts=2, deadline=None), None, clock=lambda: now[0])
    counted.remaining()
    assert counted.wait_after(unavailable) is not None
    counted.remaining()
    assert counted.wait_after(unavailable) is None
    call = RetryBudget(RetryPolicy(), 2.0, clock=lambda: now[0])
    call.remaining()
    hinted = make_error(grpc.StatusCode.UNAVAILABLE, "m", retry_delay=0.5)
    assert call.wait_after(hinted) == 0.5
    now[0] = 1.6
    assert call.wait_after(hinted) is None  # 1.6 + 0.5 passes the call's 2 s
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=-1.0)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_rich_details_are_decoded_into_the_typed_error():
    status = status_pb2.Status(code=8, message="the realtime lane is full")
    status.details.add().Pack(error_details_pb2.ErrorInfo(
        reason="LANE_FULL", domain="eventstream.v1", metadata={"field": "priority"}))
    status.details.add().Pack(error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(nanos=250_000_000)))
    error = error_from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "the realtime lane is full",
                              [("grpc-status-details-bin", status.SerializeToString()),
                               ("retry-after-ms", "50")])
    assert isinstance(error, ResourceExhaustedError) and error.retryable
    assert (error.reason, error.field, error.retry_delay) == ("LANE_FULL", "priority", 0.25)
    plain = error_from_status(grpc.StatusCode.UNAVAILABLE, "draining", [("retry-after-ms", "80")])
    assert isinstance(plain, UnavailableError) and plain.retry_delay == 0.08
    bad = error_from_status(grpc.StatusCode.INVALID_ARGUMENT, "x", [])
    assert isinstance(bad, InvalidArgumentError) and not bad.retryable
    other = error_from_status(grpc.StatusCode.NOT_FOUND, "x", [])
    assert type(other) is EventStreamError


def test_a_follower_refusal_names_the_leader():
    status = status_pb2.Status(code=14, message="node n2 is a follower")
    status.details.add().Pack(error_details_pb2.ErrorInfo(
        reason="NOT_LEADER", domain="eventstream.v1",
        metadata={"leader_id": "n1", "leader_address": "10.0.0.1:9200"}))
    error = error_from_status(grpc.StatusCode.UNAVAILABLE, "node n2 is a follower",
                              [("grpc-status-details-bin", status.SerializeToString())])
    assert isinstance(error, UnavailableError) and error.retryable
    assert (error.reason, error.leader_id, error.leader_address) == \
        ("NOT_LEADER", "n1", "10.0.0.1:9200")
    plain = error_from_status(grpc.StatusCode.UNAVAILABLE, "draining", [])
    assert (plain.leader_id, plain.leader_address) == ("", "")


def test_start_positions_build_their_requests():
    at = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    assert subscribe_request(("#",), None, "earliest", 0).start_from == \
        subscribe_pb2.START_FROM_EARLIEST
    timed = subscribe_request(("a/*",), "high", at, 10)
    assert (timed.start_from, timed.min_priority, timed.max_batch_events) == (
        subscribe_pb2.START_FROM_TIME, common_pb2.PRIORITY_HIGH, 10)
    assert timed.start_time.ToDatetime(tzinfo=UTC) == at
    offsets = subscribe_request(("#",), None, {1: 5, 0: 2}, 0)
    assert [(p.partition, p.offset) for p in offsets.start_offsets] == [(0, 2), (1, 5)]
    with pytest.raises(ValueError):
        subscribe_request(("#",), None, "newest", 0)  # type: ignore[arg-type]


def _event(partition: int, offset: int) -> common_pb2.Event:
    return common_pb2.Event(topic="t", partition=partition, offset=offset)


def test_resume_asks_for_the_next_offsets_and_drops_what_was_delivered():
    state = ResumeState(subscribe_request(("#",), None, {0: 3, 2: 9}, 0))
    assert [state.admit(_event(0, n)) for n in (3, 4)] == [True, True]
    assert state.admit(_event(1, 7))
    resumed = state.request()
    assert resumed.start_from == subscribe_pb2.START_FROM_OFFSETS
    assert [(p.partition, p.offset) for p in resumed.start_offsets] == [(0, 5), (1, 8), (2, 9)]
    assert not state.admit(_event(0, 4)) and state.admit(_event(0, 5))


def test_resume_from_earliest_repeats_the_start_and_skips_delivered_events():
    first = subscribe_request(("#",), None, "earliest", 0)
    state = ResumeState(first)
    assert state.admit(_event(0, 0)) and state.admit(_event(0, 1))
    assert state.request() == first
    assert [state.admit(_event(0, n)) for n in (0, 1, 2)] == [False, False, True]
    assert state.positions == {0: 3}


def test_queued_answers_become_one_request_per_run_of_acks_or_nacks():
    from eventstream.client._consume import MAX_POSITIONS, settle_requests

    settles = [(True, 0, 1), (True, 1, 5), (False, 0, 2), (True, 0, 3)]
    requests = settle_requests(settles)
    assert [r.WhichOneof("request") for r in requests] == ["ack", "nack", "ack"]
    assert [(p.partition, p.offset) for p in requests[0].ack.events] == [(0, 1), (1, 5)]
    assert [(p.partition, p.offset) for p in requests[1].nack.events] == [(0, 2)]
    many = settle_requests([(True, 0, n) for n in range(MAX_POSITIONS + 1)])
    assert [len(r.ack.events) for r in many] == [MAX_POSITIONS, 1]
    assert settle_requests([]) == []


def test_draining_the_answer_queue_stops_at_the_end_marker_or_when_empty():
    import queue

    from eventstream.client._consume import drain

    pending: queue.SimpleQueue = queue.SimpleQueue()
    for item in [(True, 0, 2), None, (True, 0, 3)]:
        pending.put(item)
    assert drain((True, 0, 1), pending.get_nowait, queue.Empty) == (
        [(True, 0, 1), (True, 0, 2)], True)
    assert drain(pending.get(), pending.get_nowait, queue.Empty) == ([(True, 0, 3)], False)
    assert drain(None, pending.get_nowait, queue.Empty) == ([], True)


def test_the_join_request_carries_the_settings_and_refuses_bad_ones():
    from eventstream.client._consume import consume_start

    start = consume_start("g", ("a/#",), "high", "earliest", 10, 5, 3).start
    assert (start.group, list(start.patterns), start.min_priority) == (
        "g", ["a/#"], common_pb2.PRIORITY_HIGH)
    assert start.start_from == subscribe_pb2.START_FROM_EARLIEST
    assert (start.max_in_flight, start.ack_deadline_seconds, start.max_deliveries) == (10, 5, 3)
    defaults = consume_start("g", ("a/#",), None, "latest", None, None, None).start
    assert defaults.start_from == subscribe_pb2.START_FROM_LATEST
    assert (defaults.max_in_flight, defaults.max_deliveries, defaults.min_priority) == (0, 0, 0)
    with pytest.raises(ValueError, match="max_deliveries"):
        consume_start("g", ("a/#",), None, "latest", None, None, 0)
    with pytest.raises(ValueError, match="start"):
        consume_start("g", ("a/#",), None, "offsets", None, None, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="patterns"):
        consume_start("g", (), None, "latest", None, None, None)


def test_calls_the_server_never_handled_count_as_unavailable_not_as_server_errors():
    local = make_error(grpc.StatusCode.INTERNAL, "Internal error from Core")
    assert isinstance(lost_connection(local), UnavailableError)
    assert lost_connection(local).retryable
    cancelled_by_shutdown = make_error(grpc.StatusCode.CANCELLED, "CANCELLED")
    assert isinstance(lost_connection(cancelled_by_shutdown), UnavailableError)
    closed = make_error(grpc.StatusCode.CANCELLED, "Locally cancelled by application!")
    assert lost_connection(closed) is closed
    server = make_error(grpc.StatusCode.INTERNAL, "Internal error from Core", reason="INTERNAL")
    assert lost_connection(server) is server
    other = make_error(grpc.StatusCode.INTERNAL, "boom (correlation id 7)")
    assert lost_connection(other) is other


def _refusal(code: grpc.StatusCode, reason: str = "", **metadata: str) -> grpc.aio.AioRpcError:
    """A failed call as grpc.aio reports it, with an ErrorInfo of ``reason`` when given."""
    trailers = grpc.aio.Metadata()
    if reason:
        status = status_pb2.Status(code=code.value[0], message="m")
        status.details.add().Pack(error_details_pb2.ErrorInfo(
            reason=reason, domain="eventstream.v1", metadata=metadata))
        trailers.add("grpc-status-details-bin", status.SerializeToString())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers, "m")


def test_a_publishs_attempts_follow_the_named_leader_and_fall_back_to_the_target():
    now = [0.0]
    hint = LeaderHint("10.0.0.2:9200", prefer_leader=False)
    attempts = PublishAttempts(hint, RetryBudget(RetryPolicy(), 10.0, clock=lambda: now[0]))
    assert attempts.next() == ("10.0.0.2:9200", 10.0)
    # A follower names the leader: the next attempt goes there at once.
    assert attempts.failed(_refusal(grpc.StatusCode.UNAVAILABLE, "NOT_LEADER",
                                    leader_address="10.0.0.1:9200")) == 0.0
    now[0] = 1.0
    assert attempts.next() == ("10.0.0.1:9200", 9.0)
    # That leader goes away: back to the target, after a retry wait.
    assert attempts.failed(_refusal(grpc.StatusCode.UNAVAILABLE)) >= 0.0
    assert attempts.next()[0] == "10.0.0.2:9200"
    # What is not retried is raised.
    with pytest.raises(InvalidArgumentError):
        attempts.failed(_refusal(grpc.StatusCode.INVALID_ARGUMENT, "TOPIC_INVALID"))
    attempts.answered([("eventstream-leader-address", "10.0.0.3:9200")])
    assert hint.address == "10.0.0.2:9200"  # trailers move it only with prefer_leader
