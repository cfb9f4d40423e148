"""The protobuf side of moving an event to its group's dead-letter topic.

Pure: no I/O. Builds the PublishRequests :class:`..broker.dead_letter.DeadLetters`
tries in order (the event copied with the dead-letter headers, then its
stored bytes as the payload of an event holding only those headers) and names
the reason when the encoder refuses one.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from eventstream.v1 import common_pb2

from ..broker.wire import varint
from ..errors import EventStreamError
from .convert import EventValidator

_EVENT = b"\x0a"   # PublishRequest.event


class ProtobufCopies:
    """Dead-letter copies as encoded ``eventstream.v1`` PublishRequests.

    Args:
        validator: names the reason when the encoder refuses a copy.
    """

    def __init__(self, validator: EventValidator) -> None:
        self._validator = validator

    def requests(self, topic: str, record: bytes, headers: dict[str, str]
                 ) -> tuple[list[bytes], str | None]:
        """See :meth:`..broker.dead_letter.Copies.requests`."""
        stored = _event_bytes(record)
        candidates = []
        undecodable: str | None = None
        try:
            event = common_pb2.Event.FromString(stored)
        except DecodeError as error:
            undecodable = str(error)
            problem = f"the stored event does not decode: {error}"
        else:
            copy = common_pb2.Event(topic=topic, key=event.key, payload=event.payload,
                                    priority=event.priority, publish_time=event.publish_time)
            copy.headers.update(event.headers)
            copy.headers.update(headers)
            copy.headers.update({"dead-letter-topic": event.topic, "dead-letter-id": event.id})
            candidates.append(copy)
            problem = "its copy was refused"
        raw = common_pb2.Event(topic=topic, payload=stored, headers=headers)
        raw.headers["dead-letter-raw"] = problem
        candidates.append(raw)
        out = []
        for candidate in candidates:
            body = candidate.SerializeToString()
            out.append(_EVENT + varint(len(body)) + body)
        return out, undecodable

    def refusal(self, code: int, event: bytes) -> EventStreamError:
        """See :meth:`..broker.dead_letter.Copies.refusal`."""
        return self._validator.refusal(code, event)


def _event_bytes(record: bytes) -> bytes:
    """The Event of a stored record (framed as tag byte, length varint, Event)."""
    start = 1
    while record[start] & 0x80:
        start += 1
    return record[start + 1:]


__all__ = ["ProtobufCopies"]
