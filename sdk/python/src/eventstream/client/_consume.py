"""Consumer groups: the join request, consumed events, assignments, batched acks.

Pure: no I/O. Shared by the blocking :class:`Consumer` and the asyncio
:class:`AsyncConsumer`, which run the stream (see ``_consumer.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Literal, Protocol, TypeVar

from eventstream.v1 import common_pb2, subscribe_pb2

from ._events import Priority, ReceivedEvent, event_from_proto

GroupStart = Literal["latest", "earliest"]
"""Where a group that has no committed offsets yet starts: ``"latest"`` (only
events committed after it joined) or ``"earliest"`` (everything retained)."""

MAX_POSITIONS = 1000
"""Most event positions per ack or nack request."""

Settle = tuple[bool, int, int]
"""One queued answer: (True for an ack / False for a nack, partition, offset)."""


class _Settler(Protocol):
    def ack(self, *events: ReceivedEvent) -> None: ...
    def nack(self, *events: ReceivedEvent) -> None: ...


@dataclass(frozen=True)
class ConsumedEvent(ReceivedEvent):
    """An event delivered to a consumer-group member.

    A :class:`ReceivedEvent` that is answered with :meth:`ack` or :meth:`nack`.

    Answers are queued and sent in batches by the consumer that received the
    event (from any thread for a :class:`Consumer`; from the event loop's
    thread for an :class:`AsyncConsumer`). Answering after the consumer
    closed does nothing: the server delivers the event again.

    Example:
        >>> for event in consumer:
        ...     if handle(event):
        ...         event.ack()
        ...     else:
        ...         event.nack()      # delivered again now (to this or another member)
    """

    _consumer: _Settler = field(repr=False, compare=False)

    def ack(self) -> None:
        """Done with it: the group never gets it again (once the ack reaches the server)."""
        self._consumer.ack(self)

    def nack(self) -> None:
        """Not done: deliver it again now; after ``max_deliveries`` it is dead-lettered."""
        self._consumer.nack(self)


_RECEIVED_FIELDS = tuple(f.name for f in fields(ReceivedEvent))


def consumed_from_proto(message: common_pb2.Event, consumer: _Settler) -> ConsumedEvent:
    """Convert a delivered message; its answers go to ``consumer``."""
    received = event_from_proto(message)
    values = {name: getattr(received, name) for name in _RECEIVED_FIELDS}
    return ConsumedEvent(**values, _consumer=consumer)


@dataclass(frozen=True)
class Assignment:
    """A member's share of its group's partitions, as the server last announced it.

    Attributes:
        member_id: the server's id of this member (new after every rejoin).
        generation: grows with every rebalance of the group.
        partitions: the partitions this member reads now.
    """

    member_id: str
    generation: int
    partitions: tuple[int, ...]


def assignment_from_proto(message: subscribe_pb2.ConsumeAssignment) -> Assignment:
    """Convert an assignment."""
    return Assignment(message.member_id, message.generation, tuple(message.partitions))


def _positive(name: str, value: int | None) -> int:
    if value is None:
        return 0
    if value < 1:
        raise ValueError(f"{name}: must be at least 1 (or None for the server's default)")
    return value


def consume_start(group: str, patterns: tuple[str, ...], min_priority: Priority | str | None,
                  start: GroupStart, max_in_flight: int | None,
                  ack_deadline_seconds: int | None, max_deliveries: int | None
                  ) -> subscribe_pb2.ConsumeRequest:
    """Build the first request of a Consume stream (the join).

    Raises:
        ValueError: an argument is out of range or not understood (the message names it).
    """
    if not patterns:
        raise ValueError("patterns: give at least one topic pattern")
    if start not in ("latest", "earliest"):
        raise ValueError(f"start: {start!r} is not 'latest' or 'earliest'")
    message = subscribe_pb2.ConsumeStart(
        group=group, patterns=list(patterns),
        start_from=(subscribe_pb2.START_FROM_LATEST if start == "latest"
                    else subscribe_pb2.START_FROM_EARLIEST),
        max_in_flight=_positive("max_in_flight", max_in_flight),
        ack_deadline_seconds=_positive("ack_deadline_seconds", ack_deadline_seconds),
        max_deliveries=_positive("max_deliveries", max_deliveries))
    if min_priority is not None:
        message.min_priority = Priority(min_priority).proto
    return subscribe_pb2.ConsumeRequest(start=message)


def settle_requests(settles: Iterable[Settle]) -> list[subscribe_pb2.ConsumeRequest]:
    """Batch queued answers into requests.

    Each run of acks (or of nacks) in order becomes one request of at most :data:`MAX_POSITIONS` positions.
    """
    requests: list[subscribe_pb2.ConsumeRequest] = []
    run: list[common_pb2.PartitionOffset] = []
    run_is_ack = True

    def close_run() -> None:
        if run:
            positions = subscribe_pb2.EventPositions(events=run)
            requests.append(subscribe_pb2.ConsumeRequest(ack=positions) if run_is_ack
                            else subscribe_pb2.ConsumeRequest(nack=positions))
            run.clear()

    for is_ack, partition, offset in settles:
        if is_ack != run_is_ack or len(run) >= MAX_POSITIONS:
            close_run()
            run_is_ack = is_ack
        run.append(common_pb2.PartitionOffset(partition=partition, offset=offset))
    close_run()
    return requests


Item = TypeVar("Item")


def drain(first: Item | None, get_nowait: Callable[[], Item | None],
          empty: type[Exception]) -> tuple[list[Item], bool]:
    """Take ``first`` and whatever else is queued now, up to :data:`MAX_POSITIONS`.

    ``None`` in the queue ends the stream. Returns (items, ended).
    """
    items: list[Item] = []
    item = first
    while item is not None:
        items.append(item)
        if len(items) >= MAX_POSITIONS:
            return items, False
        try:
            item = get_nowait()
        except empty:
            return items, False
    return items, True
