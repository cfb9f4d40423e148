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

The copies are encoded by a :class:`Copies` collaborator (the protobuf side
lives in ``rpc/``); this module sees only bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..errors import EventStreamError
from ..native import EventEncoder
from ..observability.metrics import Metrics
from .lanes import submissions_of

if TYPE_CHECKING:
    from .broker import Broker
    from .groups import Group

log = logging.getLogger(__name__)
_TRANSPORT = "dead-letter"

Settle = Callable[["Group", int, int, bool], None]
"""How a move ends: (group, partition, offset, stored); see ``GroupCoordinator.settle``."""


def dead_letter_topic(group: str) -> str:
    """Where a group's events go after max_deliveries."""
    return f"dead-letter/{group}"


class Copies(Protocol):
    """Builds the dead-letter copies of a stored event (the protobuf side of a move)."""

    def requests(self, topic: str, record: bytes, headers: dict[str, str]
                 ) -> tuple[list[bytes], str | None]:
        """Encoded PublishRequests to try in order: the copy, then the raw form.

        Args:
            topic: the dead-letter topic.
            record: the stored record, framed as ``SubscribeResponse.events``.
            headers: the dead-letter headers every form carries.

        Returns:
            The requests, and the decode error when the stored event does not
            decode (then only the raw form is offered).
        """
        ...

    def refusal(self, code: int, event: bytes) -> EventStreamError:
        """The error for a copy the encoder refused with ``code``."""
        ...


class DeadLetters:
    """Publishes the events a group gave up on, one task each.

    Args:
        broker: where the copies are published.
        encoder: accepts the copies like any publish.
        copies: encodes the copies.
        metrics: the server's metrics.
    """

    def __init__(self, broker: Broker, encoder: EventEncoder, copies: Copies,
                 metrics: Metrics) -> None:
        self._broker = broker
        self._encoder = encoder
        self._copies = copies
        self._metrics = metrics
        # The loop keeps only weak references to tasks: hold them until they finish.
        self._tasks: set[asyncio.Task[None]] = set()

    def move(self, group: Group, partition: int, offset: int, record: bytes,
             settle: Settle) -> None:
        """Start moving the event at (``partition``, ``offset``) of ``group``.

        Args:
            group: the group that gave up on the event.
            partition: its partition.
            offset: its offset.
            record: the stored record, framed as ``SubscribeResponse.events``.
            settle: called once when the move ends (also when cancelled).
        """
        task = asyncio.get_running_loop().create_task(
            self._move(group, partition, offset, record, settle), name="dead-letter")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _move(self, group: Group, partition: int, offset: int, record: bytes,
                    settle: Settle) -> None:
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
            settle(group, partition, offset, done)

    async def _publish(self, group: Group, partition: int, offset: int, record: bytes) -> bool:
        """Publish a copy, or the raw form; True once one is committed or neither can be."""
        headers = {"dead-letter-partition": str(partition), "dead-letter-offset": str(offset),
                   "dead-letter-deliveries": str(group.settings.max_deliveries)}
        topic = dead_letter_topic(group.name)
        requests, undecodable = self._copies.requests(topic, record, headers)
        if undecodable is not None:
            log.warning("group %s: the event at partition %d offset %d does not decode (%s); "
                        "its stored bytes go to %s", group.name, partition, offset, undecodable,
                        topic)
            self._count("EVENT_UNDECODABLE")
        for request in requests:
            accepted = self._encoder.accept(request, 1)
            refused = accepted.first_refusal()
            if refused is not None:
                start = refused.start
                error = self._copies.refusal(refused.code, request[start:start + refused.length])
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
