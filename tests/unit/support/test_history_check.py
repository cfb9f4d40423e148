"""historycheck (porcupine, per-partition append-only log) on histories written by hand.

Valid histories pass: concurrent publishers, reads of the whole log and of
prefixes, reads from an offset, retries answered with the first offset,
publishes whose outcome was unknown (taken effect or not). Each kind of broken
history fails, so the checker is shown able to fail: an acknowledged event
missing from a later read, an offset given twice, a read going backwards, an
event stored twice, an event in two partitions, a refused event stored.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster_tools import install_cluster_tools
from tests.support.history import (
    HistoryCheckError,
    HistoryRecorder,
    check_history,
)


@pytest.fixture(scope="module", autouse=True)
def _checker() -> None:
    install_cluster_tools()


def publish(client: int, event_id: str, call: int, ret: int, partition: int | None = None,
            offset: int | None = None, status: str = "ok") -> dict[str, Any]:
    output: dict[str, Any] = {"status": status}
    if status == "ok":
        output.update(partition=partition, offset=offset)
    return {"client": client, "op": "publish", "input": {"id": event_id}, "output": output,
            "call": call, "return": ret}


def read(client: int, partition: int, ids: list[str], call: int, ret: int, start: int = 0,
         complete: bool = True) -> dict[str, Any]:
    return {"client": client, "op": "read", "input": {"partition": partition, "start": start},
            "output": {"status": "ok", "ids": ids, "complete": complete}, "call": call, "return": ret}


def check(tmp_path: Path, lines: list[dict[str, Any]], name: str = "history"):
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return check_history(path, timeout=60)


def assert_violation(tmp_path: Path, lines: list[dict[str, Any]], *expected: str):
    verdict = check(tmp_path, lines)
    assert not verdict.ok, verdict.report
    text = " ".join(verdict.problems)
    for words in expected:
        assert words in text, verdict.problems
    assert verdict.html is not None and verdict.html.read_text().lower().startswith("<!doctype html>")
    return verdict


# A valid base: two publishers race on partition 0, one on partition 1, readers see prefixes.
BASE = [
    publish(0, "a", 10, 40, 0, 1),   # a and b overlap: b was stored first
    publish(1, "b", 15, 30, 0, 0),
    publish(2, "x", 12, 20, 1, 0),
    read(3, 0, ["b"], 16, 25),       # between b's store and a's: the whole log then
    read(3, 0, ["b", "a"], 50, 60),
    read(4, 0, ["a"], 55, 65, start=1),
    read(4, 1, ["x"], 21, 22),
]


def test_concurrent_publishers_and_reads_of_prefixes_pass(tmp_path):
    verdict = check(tmp_path, BASE)
    assert verdict.ok, verdict.report
    assert verdict.report["result"] == "ok" and verdict.report["partitions"] == [0, 1]
    assert verdict.report["publishes_acknowledged"] == 3 and verdict.report["reads"] == 4
    assert verdict.html is None


def test_a_read_of_a_prefix_only_needs_those_entries(tmp_path):
    # An incomplete read (a lagging follower, a bounded read) may stop before the end.
    verdict = check(tmp_path, [*BASE, read(5, 0, ["b"], 70, 80, complete=False)])
    assert verdict.ok, verdict.report


def test_retries_get_the_first_offset_and_unknown_outcomes_go_either_way(tmp_path):
    lines = [
        *BASE,
        publish(0, "c", 70, 80, status="unknown"),       # took effect: read below
        publish(1, "d", 71, 81, status="unknown"),       # never took effect
        publish(2, "e", 72, 82, status="unknown"),       # named nowhere else: any partition
        read(3, 0, ["b", "a", "c"], 90, 95),
        publish(0, "c", 100, 110, 0, 2),                 # the retry: the first offset
        publish(1, "a", 101, 111, 0, 1),                 # a duplicate publish of a
        publish(2, "r", 102, 112, status="error"),       # refused, stored nowhere
        read(3, 0, ["b", "a", "c"], 120, 130),
        read(3, 1, ["x"], 120, 130),
    ]
    verdict = check(tmp_path, lines)
    assert verdict.ok, verdict.report
    assert verdict.report["publishes_unknown"] == 3
    assert verdict.report["publishes_unknown_unplaced"] == 2  # d and e


def test_an_unknown_publish_may_take_effect_long_after_its_call_failed(tmp_path):
    # The client gave up at 20; the entry committed later (after a failover).
    lines = [publish(0, "u", 10, 20, status="unknown"),
             publish(1, "v", 30, 40, 0, 0),
             read(2, 0, ["v"], 41, 42),
             read(2, 0, ["v", "u"], 60, 70)]
    assert check(tmp_path, lines).ok


def test_an_unknown_publish_fills_the_offset_an_acknowledgement_skipped(tmp_path):
    # Nothing read offset 0, yet w's offset 1 needs an entry there: the unknown one.
    assert check(tmp_path, [publish(0, "u", 1, 5, status="unknown"),
                            publish(1, "w", 10, 20, 0, 1)]).ok
    assert_violation(tmp_path, [publish(1, "w", 10, 20, 0, 1)], "partitions [0]")


def test_an_acknowledged_publish_missing_from_a_later_read_is_caught(tmp_path):
    verdict = assert_violation(tmp_path, [*BASE, read(5, 0, ["b"], 70, 80)],
                               "partitions [0] are not linearizable")
    assert verdict.report["failed_partitions"] == [0]


def test_an_acknowledged_publish_missing_in_the_middle_of_a_read_is_caught(tmp_path):
    lines = [*BASE, publish(0, "c", 70, 80, 0, 2),
             read(5, 0, ["b", "c"], 90, 95, complete=False)]
    assert_violation(tmp_path, lines, "partitions [0]")


def test_an_offset_given_twice_is_caught(tmp_path):
    assert_violation(tmp_path, [*BASE, publish(0, "c", 70, 80, 0, 2), publish(1, "d", 90, 95, 0, 2)],
                     "partitions [0]")


def test_an_offset_past_the_end_is_caught(tmp_path):
    assert_violation(tmp_path, [*BASE, publish(0, "c", 70, 80, 0, 5)], "partitions [0]")


def test_a_read_going_backwards_is_caught(tmp_path):
    lines = [publish(0, "a", 1, 2, 0, 0), publish(0, "b", 3, 4, 0, 1),
             read(1, 0, ["a", "b"], 5, 6), read(2, 0, ["a"], 7, 8)]
    assert_violation(tmp_path, lines, "partitions [0]")


def test_a_reordering_is_caught(tmp_path):
    # The acknowledgements say a then b; a read shows b then a.
    lines = [publish(0, "a", 1, 2, 0, 0), publish(0, "b", 3, 4, 0, 1), read(1, 0, ["b", "a"], 5, 6)]
    assert_violation(tmp_path, lines, "partitions [0]")
    # Two reads disagreeing on the order, with nothing acknowledged.
    lines = [publish(0, "a", 1, 2, status="unknown"), publish(1, "b", 1, 2, status="unknown"),
             read(2, 0, ["a", "b"], 5, 6), read(3, 0, ["b", "a"], 7, 8)]
    assert_violation(tmp_path, lines, "partitions [0]")


def test_a_read_that_changes_history_is_caught(tmp_path):
    # Same length, other contents: an entry was overwritten (a lost, re-used offset).
    lines = [publish(0, "a", 1, 2, 0, 0), publish(0, "b", 3, 4, 0, 1),
             read(1, 0, ["a", "b"], 5, 6), read(2, 0, ["a", "z"], 7, 8)]
    assert_violation(tmp_path, lines, "partitions [0]")


def test_an_event_stored_twice_is_caught(tmp_path):
    # A retry after an unknown outcome must be answered with the first offset.
    lines = [publish(0, "a", 1, 2, status="unknown"), read(1, 0, ["a"], 3, 4),
             publish(0, "a", 5, 6, 0, 1)]
    assert_violation(tmp_path, lines, "partitions [0]")
    # ... and a read must never show one id at two offsets.
    lines = [publish(0, "a", 1, 2, 0, 0), publish(0, "a", 3, 4, 0, 0), read(1, 0, ["a", "a"], 5, 6)]
    assert_violation(tmp_path, lines, "partitions [0]")


def test_an_event_in_two_partitions_is_caught(tmp_path):
    lines = [publish(0, "a", 1, 2, 0, 0), read(1, 1, ["a"], 3, 4)]
    assert_violation(tmp_path, lines, 'event "a" is in partition 0 and in partition 1')


def test_a_refused_publish_that_was_stored_is_caught(tmp_path):
    lines = [publish(0, "a", 1, 2, status="error"), read(1, 0, ["a"], 3, 4)]
    assert_violation(tmp_path, lines, "partitions [0]")


def simulate(seed: int, partitions: int = 4, operations: int = 1500) -> list[dict[str, Any]]:
    """A linearizable history: each operation takes effect at a point inside its interval."""
    rng = random.Random(seed)
    logs: dict[int, list[str]] = {p: [] for p in range(partitions)}
    lines, now = [], 1000
    for number in range(operations):
        now += rng.randint(1, 8)
        call, ret = now - rng.randint(0, 60), now + rng.randint(0, 60)
        client = rng.randrange(12)
        p = rng.randrange(partitions)
        log = logs[p]
        roll = rng.random()
        if roll < 0.65 or not log:
            log.append(f"e{number}")
            lines.append(publish(client, f"e{number}", call, ret, p, len(log) - 1))
        elif roll < 0.7:  # a retry of a stored event
            offset = rng.randrange(len(log))
            lines.append(publish(client, log[offset], call, ret, p, offset))
        elif roll < 0.75:  # an unknown outcome, stored or not
            if rng.random() < 0.5:
                log.append(f"e{number}")
            lines.append(publish(client, f"e{number}", call, ret, status="unknown"))
        else:
            start = rng.choice([0, 0, rng.randrange(len(log) + 1)])
            lines.append(read(client, p, log[start:], call, ret, start=start))
    for p, log in logs.items():
        lines.append(read(99, p, list(log), now + 100, now + 101))
    return lines


def test_a_long_concurrent_history_passes_and_one_lost_event_in_it_is_caught(tmp_path):
    lines = simulate(seed=7)
    verdict = check(tmp_path, lines, "long")
    assert verdict.ok, verdict.report
    assert verdict.report["operations"] == len(lines) > 1500
    # The checker's own bug switch: the same history with one event dropped from the final read.
    final = lines[-1]["output"]["ids"]
    final.pop(len(final) // 2)
    assert not check(tmp_path, lines, "long-broken").ok


def test_the_recorder_writes_what_the_checker_reads(tmp_path):
    recorder = HistoryRecorder()
    recorder.invoke(0, "publish", {"id": "a"}).complete({"status": "ok", "partition": 0, "offset": 0})
    recorder.invoke(1, "read", {"partition": 0, "start": 0}).complete(
        {"status": "ok", "ids": ["a"], "complete": True})
    assert check_history(recorder, tmp_path).ok
    recorder.invoke(1, "read", {"partition": 0, "start": 0}).complete(
        {"status": "ok", "ids": [], "complete": True})
    assert not check_history(recorder, tmp_path).ok


def test_an_operation_that_never_returned_is_written_as_unknown(tmp_path):
    recorder = HistoryRecorder()
    recorder.invoke(0, "publish", {"id": "a"})  # its task was cancelled mid-call
    done = recorder.invoke(1, "publish", {"id": "b"})
    done.complete({"status": "ok", "partition": 0, "offset": 1})
    done.complete({"status": "error"})  # only the first completion counts
    recorder.invoke(2, "read", {"partition": 0, "start": 0}).complete(
        {"status": "ok", "ids": ["a", "b"], "complete": True})
    assert recorder.pending == 1 and len(recorder) == 2
    lines = [json.loads(line) for line in recorder.lines()]
    assert lines[-1]["input"] == {"id": "a"} and lines[-1]["output"]["status"] == "unknown"
    assert [line["output"]["status"] for line in lines[:2]] == ["ok", "ok"]
    verdict = check_history(recorder, tmp_path)
    assert verdict.ok and verdict.report["publishes_unknown"] == 1, verdict.report


def test_threads_recording_at_once_lose_no_operation(tmp_path):
    threads, each = 8, 300

    def publish_in_order(recorder: HistoryRecorder, number: int) -> None:
        for offset in range(each):  # thread n owns partition n
            recorder.invoke(number, "publish", {"id": f"t{number}-{offset}"}).complete(
                {"status": "ok", "partition": number, "offset": offset})

    recorder = HistoryRecorder()
    workers = [threading.Thread(target=publish_in_order, args=(recorder, n)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    for number in range(threads):
        recorder.invoke("reader", "read", {"partition": number, "start": 0}).complete(
            {"status": "ok", "ids": [f"t{number}-{i}" for i in range(each)], "complete": True})
    verdict = check_history(recorder, tmp_path)
    assert verdict.ok, verdict.report
    assert verdict.report["publishes_acknowledged"] == threads * each and recorder.pending == 0


@pytest.mark.parametrize(("line", "reason"), [
    ("not json", "line 1: not a JSON object"),
    ('{"client":0,"op":"publish","input":{},"output":{"status":"ok"},"call":1,"return":2}',
     "a publish needs input.id"),
    ('{"client":0,"op":"publish","input":{"id":"a"},"output":{"status":"ok"},"call":1,"return":2}',
     "needs output.partition and output.offset"),
    ('{"client":0,"op":"read","input":{"partition":0},"output":{"status":"ok"},"call":3,"return":2}',
     "returns (2) before its call (3)"),
    ('{"client":0,"op":"delete","input":{},"output":{},"call":1,"return":2}', 'op "delete"'),
])
def test_a_malformed_history_cannot_be_checked(tmp_path, line, reason):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(HistoryCheckError, match="exited 2") as failed:
        check_history(path)
    assert reason in str(failed.value)
