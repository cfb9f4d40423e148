"""The conformance checker notices each kind of deviation."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.conformance.checks import deviations, expected_event
from tests.conformance.languages import HERE

SCENARIO = json.loads((HERE / "scenario.json").read_text())
PREFIX = "conformance/test"


def conforming_result() -> dict[str, Any]:
    """A result as a conforming program prints it: one partition per key."""
    acks, delivered, partitions = [], [], {}
    for index, spec in enumerate(SCENARIO["events"]):
        partition = partitions.setdefault(spec.get("key") or spec["topic"], len(partitions))
        offset = index
        event_id = f"{PREFIX}/{spec['id']}" if spec.get("id") else f"server-{index}"
        acks.append({"id": event_id, "partition": partition, "offset": offset})
        delivered.append({"id": event_id, "partition": partition, "offset": offset,
                          **expected_event(spec, PREFIX)})
    error = {**SCENARIO["invalid_event_error"]}
    return {"language": "test", "acks": acks, "delivered": delivered, "error": error}


def test_a_conforming_result_has_no_deviations() -> None:
    assert deviations(conforming_result(), SCENARIO, PREFIX) == []


def swap_first_two_of_key(result: dict[str, Any]) -> None:
    result["delivered"][0], result["delivered"][1] = result["delivered"][1], result["delivered"][0]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda r: r["delivered"][0].update(payload="eA=="), "event 0"),
    (lambda r: r["delivered"][1]["headers"].update(extra="1"), "event 1"),
    (lambda r: r["delivered"][6].update(priority=0), "event 6"),
    (lambda r: r["delivered"].pop(), "delivered ids"),
    (lambda r: r["acks"][0].update(id="other"), "acknowledged id"),
    (swap_first_two_of_key, "key customer-1"),
    (lambda r: r["error"].update(code="OK"), "invalid event: code"),
    (lambda r: r["error"].update(details=["google.rpc.ErrorInfo"]), "lack ['google.rpc.BadRequest']"),
])
def test_each_deviation_is_reported(change: Any, expected: str) -> None:
    result = copy.deepcopy(conforming_result())
    change(result)
    problems = deviations(result, SCENARIO, PREFIX)
    assert any(expected in problem for problem in problems), problems
