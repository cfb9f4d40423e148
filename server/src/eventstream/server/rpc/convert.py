"""Protobuf <-> broker conversion and validation of published events.

The only place that knows both ``eventstream.v1`` messages and the broker's
submission tuples. Validation names the field at fault; the error reasons are
those of :mod:`..errors`.
"""

from __future__ import annotations

from eventstream.v1 import common_pb2, publish_pb2

from ..broker import priority
from ..broker.topics import topic_problem
from ..config.model import LimitsConfig
from ..errors import EventStreamError, invalid

EventTuple = tuple[str, str, str, int, bytes]

_MEDIUM = common_pb2.PRIORITY_MEDIUM


class EventValidator:
    """Checks published events against the limits and encodes them for the log.

    Args:
        limits: the configured limits.
    """

    def __init__(self, limits: LimitsConfig) -> None:
        self.limits = limits

    def accept(self, event: common_pb2.Event) -> EventTuple:
        """Validate ``event`` and return (id, topic, key, priority byte, encoded event).

        The producer's copies of server-set fields are cleared and an
        unspecified priority becomes MEDIUM, so the stored event says what the
        server did.

        Raises:
            EventStreamError: INVALID_ARGUMENT naming the event's field; callers
                add the path to the event with :meth:`EventStreamError.at`.
        """
        limits = self.limits
        topic = event.topic
        problem = topic_problem(topic, limits.max_topic_bytes)
        if problem is not None:
            raise invalid(problem[0], "topic", problem[1])
        if len(event.payload) > limits.max_message_bytes:
            raise invalid("PAYLOAD_TOO_LARGE", "payload",
                          f"{len(event.payload)} bytes is over the limit of "
                          f"{limits.max_message_bytes} bytes")
        value = event.priority
        if value not in priority.PROTO_VALUES:
            raise invalid("PRIORITY_UNKNOWN", "priority",
                          f"unknown priority {value}; use PRIORITY_BATCH..PRIORITY_CRITICAL")
        event_id = event.id
        if len(event_id) > limits.max_id_bytes // 4 and len(event_id.encode()) > limits.max_id_bytes:
            raise invalid("ID_TOO_LONG", "id", f"longer than {limits.max_id_bytes} bytes")
        key = event.key
        if len(key) > limits.max_key_bytes // 4 and len(key.encode()) > limits.max_key_bytes:
            raise invalid("KEY_TOO_LONG", "key",
                          f"longer than {limits.max_key_bytes} bytes")
        if len(event.headers) > limits.max_headers:
            raise invalid("TOO_MANY_HEADERS", "headers",
                          f"{len(event.headers)} headers is over the limit of {limits.max_headers}")
        if value == 0:
            event.priority = value = _MEDIUM
        if event.partition or event.offset or event.HasField("ingest_time"):
            event.ClearField("partition")
            event.ClearField("offset")
            event.ClearField("ingest_time")
        return event_id, topic, key, priority.frame_byte(value), event.SerializeToString()


def error_result(error: EventStreamError) -> publish_pb2.PublishResult:
    """A PublishResult carrying an error."""
    return publish_pb2.PublishResult(error=common_pb2.EventError(
        code=error.code, reason=error.reason, field=error.field,
        message=error.message))


def check_batch_size(count: int, limits: LimitsConfig, field: str = "events") -> None:
    """Raise INVALID_ARGUMENT when a request carries more events than allowed."""
    if count > limits.max_batch_events:
        raise EventStreamError(
            "BATCH_TOO_LARGE",
            f"{field}: {count} events is over the limit of {limits.max_batch_events} per request",
            field=field)
