"""Compare one language's conformance result with the scenario.

A result is the JSON a conformance program prints (tests/conformance/README.md).
:func:`deviations` lists every difference in words; an empty list means the
language conforms.
"""

from __future__ import annotations

from typing import Any

from eventstream.v1 import common_pb2

# The server stores an unspecified priority as MEDIUM (README, "Priorities").
MEDIUM = common_pb2.PRIORITY_MEDIUM


def expected_event(spec: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The delivered form of a scenario event published under ``prefix``."""
    priority = common_pb2.Priority.Value(spec.get("priority", "PRIORITY_UNSPECIFIED"))
    return {"topic": f"{prefix}/{spec['topic']}", "key": spec.get("key", ""),
            "payload": spec["payload"], "priority": priority or MEDIUM,
            "headers": spec.get("headers", {})}


def deviations(result: dict[str, Any], scenario: dict[str, Any], prefix: str) -> list[str]:
    """Every way ``result`` differs from what the scenario promises."""
    specs = scenario["events"]
    acks, delivered = result.get("acks", []), result.get("delivered", [])
    problems: list[str] = []
    if len(acks) != len(specs):
        return [f"{len(acks)} acknowledgements for {len(specs)} published events"]
    for index, (spec, ack) in enumerate(zip(specs, acks)):
        if spec.get("id") and ack["id"] != f"{prefix}/{spec['id']}":
            problems.append(f"event {index}: acknowledged id {ack['id']!r}, sent {prefix}/{spec['id']}")
        if not ack["id"]:
            problems.append(f"event {index}: acknowledged without an id")
    index_of = {ack["id"]: index for index, ack in enumerate(acks)}
    if len(index_of) != len(acks):
        problems.append("acknowledged ids are not unique")
    if sorted(event["id"] for event in delivered) != sorted(index_of):
        problems.append(f"delivered ids {[e['id'] for e in delivered]} != published {list(index_of)}")
        return problems

    last_offset: dict[int, int] = {}
    last_index: dict[str, int] = {}
    for event in delivered:
        index = index_of[event["id"]]
        ack = acks[index]
        want = expected_event(specs[index], prefix)
        got = {name: event[name] for name in want}
        if got != want:
            problems.append(f"event {index} ({event['id']}): delivered {got}, published {want}")
        if (event["partition"], event["offset"]) != (ack["partition"], ack["offset"]):
            problems.append(f"event {index}: delivered at {event['partition']}/{event['offset']}, "
                            f"acknowledged at {ack['partition']}/{ack['offset']}")
        if event["offset"] <= last_offset.get(event["partition"], -1):
            problems.append(f"partition {event['partition']}: offset {event['offset']} delivered "
                            f"after {last_offset[event['partition']]}")
        last_offset[event["partition"]] = event["offset"]
        # Events of one key (of one topic when keyless) keep their publish order.
        group = specs[index].get("key") or f"topic:{specs[index]['topic']}"
        if index <= last_index.get(group, -1):
            problems.append(f"key {group}: event {index} delivered after event {last_index[group]}")
        last_index[group] = index

    want_error = scenario["invalid_event_error"]
    got_error = result.get("error", {})
    for name in ("code", "reason", "field"):
        if got_error.get(name) != want_error[name]:
            problems.append(f"invalid event: {name} {got_error.get(name)!r}, expected {want_error[name]!r}")
    missing = set(want_error["details"]) - set(got_error.get("details", []))
    if missing:
        problems.append(f"invalid event: details {got_error.get('details')} lack {sorted(missing)}")
    return problems
