"""The public RPCs of eventstream.v1: paths and message types, in one table.

Both clients bind these to their channel (``channel.unary_unary(*PUBLISH)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

from eventstream.v1 import cluster_pb2, publish_pb2, subscribe_pb2

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class Method(NamedTuple, Generic[Req, Resp]):
    """One RPC: its path, request serializer and response deserializer."""

    path: str
    serialize: Callable[[Req], bytes]
    deserialize: Callable[[bytes], Resp]


PUBLISH: Method[publish_pb2.PublishRequest, publish_pb2.PublishResponse] = Method(
    "/eventstream.v1.PublishService/Publish",
    publish_pb2.PublishRequest.SerializeToString, publish_pb2.PublishResponse.FromString)
PUBLISH_BATCH: Method[publish_pb2.PublishBatchRequest, publish_pb2.PublishBatchResponse] = Method(
    "/eventstream.v1.PublishService/PublishBatch",
    publish_pb2.PublishBatchRequest.SerializeToString, publish_pb2.PublishBatchResponse.FromString)
PUBLISH_STREAM: Method[publish_pb2.PublishStreamRequest, publish_pb2.PublishStreamResponse] = (
    Method("/eventstream.v1.PublishService/PublishStream",
           publish_pb2.PublishStreamRequest.SerializeToString,
           publish_pb2.PublishStreamResponse.FromString))
SUBSCRIBE: Method[subscribe_pb2.SubscribeRequest, subscribe_pb2.SubscribeResponse] = Method(
    "/eventstream.v1.SubscribeService/Subscribe",
    subscribe_pb2.SubscribeRequest.SerializeToString, subscribe_pb2.SubscribeResponse.FromString)
CONSUME: Method[subscribe_pb2.ConsumeRequest, subscribe_pb2.ConsumeResponse] = Method(
    "/eventstream.v1.SubscribeService/Consume",
    subscribe_pb2.ConsumeRequest.SerializeToString, subscribe_pb2.ConsumeResponse.FromString)
CLUSTER_STATUS: Method[cluster_pb2.GetClusterStatusRequest,
                       cluster_pb2.GetClusterStatusResponse] = Method(
    "/eventstream.v1.ClusterService/GetClusterStatus",
    cluster_pb2.GetClusterStatusRequest.SerializeToString,
    cluster_pb2.GetClusterStatusResponse.FromString)


def _cluster(name: str, request: Any, response: Any) -> Method[Any, Any]:
    return Method(f"/eventstream.v1.ClusterService/{name}", request.SerializeToString,
                  response.FromString)


# Administrative RPCs (the ``admin`` permission; served by the leader only).
ADD_MEMBER: Method[cluster_pb2.AddMemberRequest, cluster_pb2.AddMemberResponse] = _cluster(
    "AddMember", cluster_pb2.AddMemberRequest, cluster_pb2.AddMemberResponse)
PROMOTE_LEARNER: Method[cluster_pb2.PromoteLearnerRequest, cluster_pb2.PromoteLearnerResponse] = (
    _cluster("PromoteLearner", cluster_pb2.PromoteLearnerRequest,
             cluster_pb2.PromoteLearnerResponse))
REMOVE_MEMBER: Method[cluster_pb2.RemoveMemberRequest, cluster_pb2.RemoveMemberResponse] = (
    _cluster("RemoveMember", cluster_pb2.RemoveMemberRequest, cluster_pb2.RemoveMemberResponse))
TRANSFER_LEADERSHIP: Method[cluster_pb2.TransferLeadershipRequest,
                            cluster_pb2.TransferLeadershipResponse] = _cluster(
    "TransferLeadership", cluster_pb2.TransferLeadershipRequest,
    cluster_pb2.TransferLeadershipResponse)
