"""The durability checker of the storage tests fails on each broken promise it looks for."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from eventstream.client import Durability, Priority, PublishAck, ReceivedEvent
from tests.support.durable import payload_of
from tests.support.ledger import Ledger, check_stored


def ack(event_id: str, partition: int, offset: int) -> PublishAck:
    return PublishAck(event_id, partition, offset, False, Durability.FSYNCED, None)


def stored(event_id: str, partition: int, offset: int, payload: bytes | None = None
           ) -> ReceivedEvent:
    return ReceivedEvent(event_id, "t", payload_of(event_id) if payload is None else payload, "",
                         Priority.MEDIUM, {}, partition, offset, None, datetime.now())


def ledger_of(*acks: tuple[str, int, int], unknown: tuple[str, ...] = ()) -> Ledger:
    ledger = Ledger()
    for event_id, partition, offset in acks:
        ledger.ack(ack(event_id, partition, offset))
    ledger.unknown.update(unknown)
    return ledger


GOOD = [("a", 0, 0), ("b", 0, 1), ("c", 1, 0)]


def test_what_keeps_every_promise_passes():
    ledger = ledger_of(*GOOD, unknown=("d",))
    verdict = check_stored(ledger, [stored(*event) for event in GOOD] + [stored("d", 1, 1)])
    assert (verdict.stored, verdict.acknowledged, verdict.unknown_stored) == (4, 3, 1)


@pytest.mark.parametrize("events, names", [
    ([("a", 0, 0), ("c", 1, 0)], "acknowledged events lost: ['b']"),
    ([("a", 0, 0), ("b", 0, 1), ("b", 0, 2), ("c", 1, 0)], "stored twice"),
    ([("a", 0, 0), ("x", 0, 1), ("b", 0, 2), ("c", 1, 0)], "(0, 1) acknowledged to b holds x"),
    ([("a", 0, 0), ("b", 0, 2), ("c", 1, 0)], "offsets not consecutive"),
    ([("a", 0, 0), ("b", 0, 1), ("c", 1, 0), ("z", 1, 1)], "never acknowledged nor in doubt"),
])
def test_each_broken_promise_is_named(events, names):
    with pytest.raises(AssertionError, match=re.escape(names)):
        check_stored(ledger_of(*GOOD), [stored(*event) for event in events])


def test_a_changed_payload_is_named():
    events = [stored(*GOOD[0]), stored(*GOOD[1], payload=b"other"), stored(*GOOD[2])]
    with pytest.raises(AssertionError, match="payload changed"):
        check_stored(ledger_of(*GOOD), events)
