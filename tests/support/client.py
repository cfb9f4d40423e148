"""Small gRPC helpers for tests, over the generated stubs."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

from eventstream.v1 import (
    cluster_pb2_grpc,
    common_pb2,
    publish_pb2,
    publish_pb2_grpc,
    subscribe_pb2,
    subscribe_pb2_grpc,
)


class Stubs:
    """Async stubs of the three public services on one channel.

    Args:
        target: the server's gRPC address.
        options: gRPC channel arguments (name, value).
    """

    def __init__(self, target: str, options: list[tuple[str, int]] | None = None) -> None:
        self.channel = grpc.aio.insecure_channel(target, options=options)
        self.publish = publish_pb2_grpc.PublishServiceStub(self.channel)
        self.subscribe = subscribe_pb2_grpc.SubscribeServiceStub(self.channel)
        self.cluster = cluster_pb2_grpc.ClusterServiceStub(self.channel)

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()


def event(topic: str, payload: bytes = b"x", **fields: object) -> common_pb2.Event:
    """Build an Event."""
    return common_pb2.Event(topic=topic, payload=payload, **fields)


async def collect(call: grpc.aio.UnaryStreamCall, count: int) -> list[common_pb2.Event]:
    """Read responses of a Subscribe call until ``count`` events arrived."""
    events: list[common_pb2.Event] = []
    async for response in call:
        events.extend(response.events)
        if len(events) >= count:
            break
    return events


def subscribe_request(*patterns: str, **fields: object) -> subscribe_pb2.SubscribeRequest:
    """Build a SubscribeRequest."""
    return subscribe_pb2.SubscribeRequest(patterns=list(patterns), **fields)


def publish_request(topic: str, payload: bytes = b"x", **fields: object) -> publish_pb2.PublishRequest:
    """Build a PublishRequest for one event."""
    return publish_pb2.PublishRequest(event=event(topic, payload, **fields))


def error_info(error: grpc.aio.AioRpcError) -> tuple[str, str]:
    """(reason, field) of the google.rpc.ErrorInfo an error status carries."""
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return info.reason, info.metadata["field"]
    raise AssertionError(f"no ErrorInfo in the status: {error}")
