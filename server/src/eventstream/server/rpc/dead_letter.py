"""Moving events that reached max_deliveries to their group's dead-letter topic.

Each event gets a task that publishes a copy to ``dead-letter/<group>`` like
any publish (the same validation, lanes and commit), then settles the event
with the coordinator: done when the copy is committed, delivered again later
when the node could not take it (a full lane, a drain, a failed commit).

No stored record may stop this, or the group's committed offset would never
pass it. A record that does not decode (written before validation covered
every field a client decodes) and a copy the limits refuse (the dead-letter
headers added to a full set of headers, for instance) go instead as the
stored bytes of the event, in the payload of an event holding only the
dead-letter headers; if even that is refused, or anything unexpected
happens, the event is skipped (it stays in the log until retention). Every
such case is logged with the group, partition and offset, and counted in
``eventstream_events_rejected_total{transport="dead-letter",reason}``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from eventstream.v1 import common_pb2
from google.protobuf.message import DecodeError

from ..broker.lanes import submissions_of
from ..broker.wire import varint
from ..errors import EventStreamError
from ..observability.metrics import Metrics
from ..native import EventEncoder
from .convert import EventValidator

if TYPE_CHECKING:
    from ..broker.broker import Broker
    from ..broker.groups import Group, GroupCoordinator

log = logging.getLogger(__name__)
_TRANSPORT = "dead-letter"
_EVENT = b"\x0a"   # PublishRequest.event


def dead_letter_topic(group: str) -> str:
    """Where a group's events go after max_deliveries."""
    return f"dead-letter/{group}"


class DeadLetters:
    """Publishes the events a group gave up on, one task each.

    Args:
        broker: where the copies are published.
        coordinator: told when each event is settled.
        encoder: accepts the copies like any publish.
        validator: names the reason when the encoder refuses a copy.
        metrics: the server's metrics.
    """

    def __init__(self, broker: Broker, coordinator: GroupCoordinator, encoder: EventEncoder,
                 validator: EventValidator, metrics: Metrics) -> None:
        self._broker = broker
        self._coordinator = coordinator
        self._encoder = encoder
        self._validator = validator
        self._metrics = metrics
        # The loop keeps only weak references to tasks: hold them until they finish.
        self._tasks: set[asyncio.Task[None]] = set()

    def move(self, group: Group, partition: int, offset: int, record: bytes) -> None:
        """Start moving the event at (``partition``, ``offset``) of ``group``.

        Args:
            record: the stored record, framed as ``SubscribeResponse.events``.
        """
        task = asyncio.get_running_loop().create_task(
            self._move(group, partition, offset, record), name="dead-letter")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _move(self, group: Group, partition: int, offset: int, record: bytes) -> None:
        done = False
        try:
            done = await self._publish(group, partition, offset, record)
        except EventStreamError as error:   # the node could not take it now: delivered again
            self._count(error.reason)
        except Exception:   # a bug: logged, and the group's committed offset moves on
            log.exception("group %s: moving the event at partition %d offset %d to %s failed; "
                          "it is skipped and stays in the log", group.name, partition, offset,
                          dead_letter_topic(group.name))
            self._count("INTERNAL")
            done = True
        finally:   # also when cancelled: then it is delivered again
            self._coordinator.settle(group, partition, offset, done)

    async def _publish(self, group: Group, partition: int, offset: int, record: bytes) -> bool:
        """Publish a copy, or the raw form; True once one is committed or neither can be."""
        stored = _event_bytes(record)
        headers = {"dead-letter-partition": str(partition), "dead-letter-offset": str(offset),
                   "dead-letter-deliveries": str(group.settings.max_deliveries)}
        topic = dead_letter_topic(group.name)
        candidates = []
        try:
            event = common_pb2.Event.FromString(stored)
        except DecodeError as error:
            log.warning("group %s: the event at partition %d offset %d does not decode (%s); "
                        "its stored bytes go to %s", group.name, partition, offset, error, topic)
            self._count("EVENT_UNDECODABLE")
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
        for candidate in candidates:
            body = candidate.SerializeToString()
            request = _EVENT + varint(len(body)) + body
            accepted = self._encoder.accept(request, 1)
            refused = accepted.first_refusal()
            if refused is not None:
                start = refused.start
                error = self._validator.refusal(refused.code, request[start:start + refused.length])
                log.warning("group %s: the dead-letter copy of partition %d offset %d was "
                            "refused: %s", group.name, partition, offset, error.message)
                self._count(error.reason)
                continue
            pending = submissions_of(accepted, 0, _TRANSPORT)
            self._broker.publish(pending)
            for submission in pending:
                await submission.future
            return True
        log.error("group %s: the event at partition %d offset %d cannot be moved to %s; it is "
                  "skipped and stays in the log", group.name, partition, offset, topic)
        return True

    def _count(self, reason: str) -> None:
        self._metrics.rejected.add(1, {"transport": _TRANSPORT, "reason": reason})


def _event_bytes(record: bytes) -> bytes:
    """The Event of a stored record (framed as tag byte, length varint, Event)."""
    start = 1
    while record[start] & 0x80:
        start += 1
    return record[start + 1:]
