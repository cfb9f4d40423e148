"""Validation of published events: the messages of refusals.

The event encoder (:mod:`..native.events`) validates events in bulk and reports a
reason code per refused event; this module turns a code into the error the
client sees, naming the field at fault, by re-checking that one event with
:class:`EventValidator` (the slow path runs for refused events only). The
error reasons are those of :mod:`..errors`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TypeVar, Union

from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from eventstream.v1 import common_pb2, publish_pb2

from ..broker import priority
from ..broker.topics import topic_problem
from ..config.model import LimitsConfig
from ..errors import EventStreamError, invalid
from ..native import Limits, Refusal

EventTuple = tuple[str, str, str, int, bytes]

# Refusals found while walking the wire data, before any field can be read.
_WIRE_REFUSALS = {
    Refusal.MALFORMED: ("EVENT_MALFORMED", "", "not a valid eventstream.v1.Event"),
    Refusal.ID_NOT_UTF8: ("ID_NOT_UTF8", "id", "id: is not valid UTF-8"),
    Refusal.TOPIC_NOT_UTF8: ("TOPIC_NOT_UTF8", "topic", "topic: is not valid UTF-8"),
    Refusal.KEY_NOT_UTF8: ("KEY_NOT_UTF8", "key", "key: is not valid UTF-8"),
    Refusal.HEADER_NOT_UTF8: ("HEADER_NOT_UTF8", "headers",
                              "headers: a key or a value is not valid UTF-8"),
    Refusal.PUBLISH_TIME_OUT_OF_RANGE: (
        "PUBLISH_TIME_OUT_OF_RANGE", "publish_time",
        "publish_time: outside 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z "
        "(seconds -62135596800 .. 253402300799, nanos 0 .. 999999999)"),
}

_MEDIUM = common_pb2.PRIORITY_MEDIUM


class EventValidator:
    """Checks published events against the limits and encodes them for the log.

    Args:
        limits: the configured limits.
    """

    def __init__(self, limits: LimitsConfig) -> None:
        self.limits = limits

    def encoder_limits(self) -> Limits:
        """The same limits for the event encoder."""
        limits = self.limits
        return Limits(max_topic=limits.max_topic_bytes, max_payload=limits.max_message_bytes,
                      max_id=limits.max_id_bytes, max_key=limits.max_key_bytes,
                      max_headers=limits.max_headers, max_event=limits.event_bytes())

    def refusal(self, reason: int, event: bytes) -> EventStreamError:
        """The error for an event the encoder refused with ``reason``.

        Args:
            reason: a :class:`~..native.Refusal` code.
            event: the event as the producer encoded it.
        """
        wire = _WIRE_REFUSALS.get(Refusal(reason))
        if wire is not None:
            return EventStreamError(wire[0], wire[2], field=wire[1])
        if reason == Refusal.TOO_LARGE:   # the event as a whole: no one field to name
            return EventStreamError(
                "EVENT_TOO_LARGE", f"{len(event)} bytes is over the limit of "
                f"{self.limits.event_bytes()} bytes for a whole event (payload, headers, id, "
                "key and topic together)")
        try:
            self.accept(common_pb2.Event.FromString(event))
        except EventStreamError as error:
            return error
        # The encoder and this validator disagree: a bug, reported as such.
        return EventStreamError("INTERNAL", f"event refused ({Refusal(reason).name}) "
                                            "but valid on a second check")

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


M = TypeVar("M", bound=Message)
StringFields = Mapping[int, tuple[str, Union[str, "StringFields"]]]
"""String fields of a message to name when they are not UTF-8: field number ->
(name, reason), or for a message field (name, its own string fields). A name
ending in ``[]`` is a repeated field (its index is filled in)."""


def parse_request(message: type[M], data: bytes, strings: StringFields | None = None) -> M:
    """Decode a request that arrived as bytes.

    Raises:
        EventStreamError: INVALID_ARGUMENT: the reason of ``strings`` naming the
            first string field that is not UTF-8, else REQUEST_MALFORMED.
    """
    try:
        return message.FromString(data)
    except DecodeError:
        pass
    bad = _first_bad_string(data, strings or {}, "")
    if bad is not None:
        raise invalid(bad[1], bad[0], "is not valid UTF-8")
    raise EventStreamError("REQUEST_MALFORMED", "request: not a valid protobuf message")


def _first_bad_string(data: bytes, strings: StringFields, prefix: str) -> tuple[str, str] | None:
    """(field path, reason) of the first string field of ``strings`` not UTF-8, if any."""
    try:
        fields = UnknownFieldSet(empty_pb2.Empty.FromString(data))
    except DecodeError:
        return None   # not wire data at all
    seen: Counter[int] = Counter()
    for item in fields:
        spec = strings.get(item.field_number)
        if spec is None or item.wire_type != 2:
            continue
        index = seen[item.field_number]
        seen[item.field_number] += 1
        name, inner = spec
        path = prefix + (f"{name[:-2]}[{index}]" if name.endswith("[]") else name)
        if not isinstance(inner, str):
            found = _first_bad_string(item.data, inner, path + ".")
            if found is not None:
                return found
            continue
        try:
            item.data.decode("utf-8")
        except UnicodeDecodeError:
            return path, inner
    return None
