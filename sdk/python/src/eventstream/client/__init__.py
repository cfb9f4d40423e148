"""EventStream's Python client: a blocking :class:`Client` and an asyncio :class:`AsyncClient`.

Both publish (one event, a batch, or a pipelined stream), subscribe with
iterators that resume after a disconnect, consume as members of a consumer
group (ack/nack, at-least-once), read the cluster status and change its
members (administrators). Inputs
and outputs are the plain types below; the generated ``eventstream.v1``
messages stay at the gRPC boundary.

Example:
    >>> from eventstream.client import Client, Event
    >>> with Client("127.0.0.1:9200") as client:
    ...     client.publish(Event("orders/created", b'{"id": 7}', key="customer-7"))
    ...     for event in client.subscribe("orders/#", start="earliest"):
    ...         print(event.offset, event.payload)
"""

from ._async_client import AsyncClient
from ._channel import TLSConfig
from ._client import Client
from ._consume import Assignment, ConsumedEvent, GroupStart
from ._consumer import AsyncConsumer, Consumer
from ._errors import (
    DeadlineExceededError,
    EventStreamError,
    InternalError,
    InvalidArgumentError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from ._events import Durability, Event, Priority, ReceivedEvent
from ._publisher import AsyncPublisher, Publisher
from ._results import ClusterStatus, Member, MembershipResult, PublishAck, PublishResult
from ._retry import NO_RETRY, RetryPolicy
from ._subscription import AsyncSubscription, Subscription
from ._subscription_state import StartPosition

__all__ = [
    "NO_RETRY",
    "Assignment",
    "AsyncClient",
    "AsyncConsumer",
    "AsyncPublisher",
    "AsyncSubscription",
    "Client",
    "ClusterStatus",
    "ConsumedEvent",
    "Consumer",
    "DeadlineExceededError",
    "Durability",
    "Event",
    "EventStreamError",
    "GroupStart",
    "InternalError",
    "InvalidArgumentError",
    "Member",
    "MembershipResult",
    "OutOfRangeError",
    "PermissionDeniedError",
    "Priority",
    "PublishAck",
    "PublishResult",
    "Publisher",
    "ReceivedEvent",
    "ResourceExhaustedError",
    "RetryPolicy",
    "StartPosition",
    "Subscription",
    "TLSConfig",
    "UnauthenticatedError",
    "UnavailableError",
]
