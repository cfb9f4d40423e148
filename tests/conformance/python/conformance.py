"""The conformance scenario over the generated Python stubs and grpcio.

Usage: conformance.py TARGET PREFIX SCENARIO_JSON. Prints one JSON result
(see tests/conformance/README.md).
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from eventstream.v1 import common_pb2, publish_pb2, publish_pb2_grpc, subscribe_pb2, subscribe_pb2_grpc

SUBSCRIBE_DEADLINE_SECONDS = 60


def build_event(spec: dict[str, Any], prefix: str) -> common_pb2.Event:
    """The scenario event with the language's prefix on its topic and id."""
    return common_pb2.Event(
        id=f"{prefix}/{spec['id']}" if spec.get("id") else "",
        topic=f"{prefix}/{spec['topic']}",
        key=spec.get("key", ""),
        payload=base64.b64decode(spec["payload"]),
        priority=common_pb2.Priority.Value(spec["priority"]),
        headers=spec["headers"],
    )


def describe_error(error: grpc.RpcError) -> dict[str, Any]:
    """Code, reason, field and detail types of a failed call."""
    result: dict[str, Any] = {"code": error.code().name, "reason": "", "field": "", "details": []}
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            result["details"].append(detail.type_url.rsplit("/", 1)[-1])
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                result["reason"], result["field"] = info.reason, info.metadata["field"]
    return result


def main(target: str, prefix: str, scenario_path: str) -> None:
    """Run the scenario at ``scenario_path`` against the server at ``target``."""
    with open(scenario_path, encoding="utf-8") as file:
        scenario = json.load(file)
    with grpc.insecure_channel(target) as channel:
        publisher = publish_pb2_grpc.PublishServiceStub(channel)
        acks = []
        for spec in scenario["events"]:
            ack = publisher.Publish(publish_pb2.PublishRequest(event=build_event(spec, prefix))).ack
            acks.append({"id": ack.id, "partition": ack.partition, "offset": ack.offset})

        subscriber = subscribe_pb2_grpc.SubscribeServiceStub(channel)
        call = subscriber.Subscribe(
            subscribe_pb2.SubscribeRequest(patterns=[f"{prefix}/#"],
                                           start_from=subscribe_pb2.START_FROM_EARLIEST),
            timeout=SUBSCRIBE_DEADLINE_SECONDS)
        delivered = []
        for response in call:
            delivered.extend({
                "id": event.id, "topic": event.topic, "key": event.key,
                "payload": base64.b64encode(event.payload).decode(), "priority": event.priority,
                "headers": dict(event.headers), "partition": event.partition, "offset": event.offset,
            } for event in response.events)
            if len(delivered) >= len(acks):
                break
        call.cancel()

        invalid = scenario["invalid_event"]
        try:
            publisher.Publish(publish_pb2.PublishRequest(event=common_pb2.Event(
                topic=invalid["topic"], payload=base64.b64decode(invalid["payload"]))))
            error: dict[str, Any] = {"code": "OK"}
        except grpc.RpcError as failure:
            error = describe_error(failure)
    print(json.dumps({"language": "python", "acks": acks, "delivered": delivered, "error": error}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
