"""Where a subscription starts, and where it resumes after a disconnect.

Pure: no I/O. Shared by the sync and the async subscription.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from eventstream.v1 import common_pb2, subscribe_pb2

from ._events import Priority, timestamp_from_datetime

StartPosition = Literal["latest", "earliest"] | datetime | Mapping[int, int]
"""``"latest"`` (only new events), ``"earliest"`` (everything retained), a
datetime (first event ingested at or after it, per partition) or a mapping
``{partition: first offset}`` (unlisted partitions start at the latest)."""


def subscribe_request(patterns: tuple[str, ...], min_priority: Priority | str | None,
                      start: StartPosition, max_batch_events: int
                      ) -> subscribe_pb2.SubscribeRequest:
    """Build the first request of a subscription.

    Raises:
        ValueError: ``start`` or ``min_priority`` is not understood.
    """
    request = subscribe_pb2.SubscribeRequest(patterns=list(patterns),
                                             max_batch_events=max_batch_events)
    if min_priority is not None:
        request.min_priority = Priority(min_priority).proto
    if start == "latest":
        request.start_from = subscribe_pb2.START_FROM_LATEST
    elif start == "earliest":
        request.start_from = subscribe_pb2.START_FROM_EARLIEST
    elif isinstance(start, datetime):
        request.start_from = subscribe_pb2.START_FROM_TIME
        request.start_time.CopyFrom(timestamp_from_datetime(start))
    elif isinstance(start, Mapping):
        request.start_from = subscribe_pb2.START_FROM_OFFSETS
        request.start_offsets.extend(
            common_pb2.PartitionOffset(partition=p, offset=o) for p, o in sorted(start.items()))
    else:
        raise ValueError(f"start: {start!r} is not 'latest', 'earliest', a datetime "
                         "or a {partition: offset} mapping")
    return request


class ResumeState:
    """The next offset of every partition a subscription has delivered from.

    After a disconnect, :meth:`request` asks for exactly what comes next, and
    :meth:`admit` drops anything already delivered, so across a reconnect no
    event is lost or repeated:

    - started at ``"latest"`` or at offsets: resume with START_FROM_OFFSETS at
      the next offset of every partition seen (and the original offsets of
      those not seen). A partition that had delivered nothing before the
      disconnect resumes at its latest position: the API does not tell a
      client where "latest" was when it subscribed.
    - started at ``"earliest"`` or at a time: every partition must start where
      it first did, which one request can only say by repeating the original
      start; events already delivered are then skipped here (the server sends
      those partitions' retained history again, once per reconnect).

    Args:
        first: the subscription's first request.
    """

    def __init__(self, first: subscribe_pb2.SubscribeRequest) -> None:
        self._first = first
        self._next: dict[int, int] = {}

    @property
    def positions(self) -> dict[int, int]:
        """``{partition: next offset}`` for every partition delivered from so far."""
        return dict(self._next)

    def admit(self, event: common_pb2.Event) -> bool:
        """Record a received event; False when it was delivered before (skip it)."""
        if event.offset < self._next.get(event.partition, 0):
            return False
        self._next[event.partition] = event.offset + 1
        return True

    def request(self) -> subscribe_pb2.SubscribeRequest:
        """The request to (re)subscribe with now."""
        first = self._first
        if not self._next or first.start_from in (subscribe_pb2.START_FROM_EARLIEST,
                                                   subscribe_pb2.START_FROM_TIME):
            return first
        offsets = {position.partition: position.offset for position in first.start_offsets}
        offsets.update(self._next)
        request = subscribe_pb2.SubscribeRequest()
        request.CopyFrom(first)
        request.start_from = subscribe_pb2.START_FROM_OFFSETS
        del request.start_offsets[:]
        request.start_offsets.extend(
            common_pb2.PartitionOffset(partition=p, offset=o) for p, o in sorted(offsets.items()))
        return request
