"""Events as plain dataclasses, and their conversion to and from eventstream.v1 messages.

Pure: no I/O. The rest of the SDK takes and returns these types; generated
messages appear only at the gRPC boundary.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from eventstream.v1 import common_pb2


class Priority(str, enum.Enum):
    """Priority of an event: HIGH and CRITICAL take the server's realtime lane.

    Strings are accepted wherever a priority is, in any case and with or
    without the ``PRIORITY_`` prefix of the proto enum.

    Example:
        >>> Priority("high") is Priority.HIGH
        True
    """

    BATCH = "BATCH"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @classmethod
    def _missing_(cls, value: object) -> Priority | None:
        if isinstance(value, str):
            name = value.upper().removeprefix("PRIORITY_")
            if name in cls.__members__:
                return cls[name]
        return None

    @property
    def proto(self) -> common_pb2.Priority:
        """The ``eventstream.v1.Priority`` value."""
        return _PROTO_PRIORITY[self]

    @classmethod
    def from_proto(cls, value: int) -> Priority:
        """The priority of a proto value; UNSPECIFIED means MEDIUM, as on the server.

        Raises:
            ValueError: the value is not a known priority.
        """
        if value == common_pb2.PRIORITY_UNSPECIFIED:
            return cls.MEDIUM
        return cls(common_pb2.Priority.Name(value))


_PROTO_PRIORITY = {
    Priority.BATCH: common_pb2.PRIORITY_BATCH,
    Priority.LOW: common_pb2.PRIORITY_LOW,
    Priority.MEDIUM: common_pb2.PRIORITY_MEDIUM,
    Priority.HIGH: common_pb2.PRIORITY_HIGH,
    Priority.CRITICAL: common_pb2.PRIORITY_CRITICAL,
}


class Durability(str, enum.Enum):
    """How durable an acknowledged event is (see ``eventstream.v1.Durability``)."""

    UNSPECIFIED = "UNSPECIFIED"
    MEMORY = "MEMORY"
    WRITTEN = "WRITTEN"
    FSYNCED = "FSYNCED"
    REPLICATED = "REPLICATED"

    @classmethod
    def from_proto(cls, value: int) -> Durability:
        """The durability of a proto value (unknown values read as UNSPECIFIED)."""
        try:
            return cls(common_pb2.Durability.Name(value).removeprefix("DURABILITY_"))
        except ValueError:
            return cls.UNSPECIFIED


@dataclass(frozen=True)
class Event:
    """An event to publish.

    Attributes:
        topic: ``/``-separated levels, no wildcards, e.g. ``"sensors/room-1"``.
        payload: bytes, or a str sent as UTF-8.
        key: events with the same key keep their order ("" for none).
        priority: a :class:`Priority` or its name; None lets the server use MEDIUM.
        headers: string headers delivered with the event.
        id: de-duplication id. Left empty, the SDK fills a random one before
            the first attempt, so a retried publish is never stored twice.
        publish_time: when the producer created the event (optional).

    Example:
        >>> Event("orders/created", '{"id": 7}', key="customer-7", priority="high",
        ...       headers={"content-type": "application/json"}).priority
        'high'
    """

    topic: str
    payload: bytes | str = b""
    key: str = ""
    priority: Priority | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    id: str = ""
    publish_time: datetime | None = None


@dataclass(frozen=True)
class ReceivedEvent:
    """An event delivered by a subscription, with the fields the server set.

    Attributes:
        id: the producer's id (or the server's when the producer left it empty).
        topic: the event's topic.
        payload: the payload bytes (:attr:`text` decodes them).
        key: the ordering key ("" for none).
        priority: the priority the event was stored with.
        headers: the event's headers.
        partition: the partition holding the event.
        offset: the event's position in its partition.
        publish_time: the producer's time, if it set one.
        ingest_time: when the server accepted the event into the log.
    """

    id: str
    topic: str
    payload: bytes
    key: str
    priority: Priority
    headers: dict[str, str]
    partition: int
    offset: int
    publish_time: datetime | None
    ingest_time: datetime | None

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8."""
        return self.payload.decode()


def new_event_id() -> str:
    """A random event id (128 bits, hex) for events published without one."""
    return uuid.uuid4().hex


def event_to_proto(event: Event) -> common_pb2.Event:
    """Build the message for ``event``, filling a random id when it has none.

    Raises:
        ValueError: the priority is not a known name.
    """
    payload = event.payload.encode() if isinstance(event.payload, str) else bytes(event.payload)
    message = common_pb2.Event(id=event.id or new_event_id(), topic=event.topic, key=event.key,
                               payload=payload, headers=dict(event.headers))
    if event.priority is not None:
        message.priority = Priority(event.priority).proto
    if event.publish_time is not None:
        message.publish_time.CopyFrom(timestamp_from_datetime(event.publish_time))
    return message


def event_from_proto(message: common_pb2.Event) -> ReceivedEvent:
    """Convert a delivered message."""
    return ReceivedEvent(
        id=message.id, topic=message.topic, payload=message.payload, key=message.key,
        priority=Priority.from_proto(message.priority), headers=dict(message.headers),
        partition=message.partition, offset=message.offset,
        publish_time=(datetime_from_timestamp(message.publish_time)
                      if message.HasField("publish_time") else None),
        ingest_time=(datetime_from_timestamp(message.ingest_time)
                     if message.HasField("ingest_time") else None))


def timestamp_from_datetime(moment: datetime) -> timestamp_pb2.Timestamp:
    """A Timestamp; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def datetime_from_timestamp(stamp: timestamp_pb2.Timestamp) -> datetime:
    """An aware UTC datetime."""
    return stamp.ToDatetime(tzinfo=UTC)
