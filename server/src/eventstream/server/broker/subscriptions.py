"""Subscriptions: read the committed log from per-partition cursors.

Pure except for waiting on the commit signal. A subscription holds no queue
of its own: it reads from the log when its consumer can take more, so a slow
consumer costs a cursor, not memory (gRPC flow control holds the writer back).
A filtered subscription scans on while its cursors are below the high
watermark, a bounded chunk per event-loop turn, so matching events behind
many others arrive without waiting for new commits.
"""

from __future__ import annotations

import asyncio

from ..errors import EventStreamError
from ..native.select import RecordSelector
from ..storage.block_records import Selection
from ..storage.log import EventLog
from .applier import CommitSignal
from .topics import TopicFilter


class SubscriptionClosed(Exception):
    """The subscription was closed by the server (shutdown)."""


class Subscription:
    """A cursor per partition over the committed log, filtered by topic and priority.

    Args:
        event_log: the log to read.
        signal: fired after each commit.
        topic_filter: which topics to deliver.
        min_priority: lowest frame priority byte (0..4) to deliver.
        cursors: first offset to deliver, per partition.
        max_batch: most events per delivery.
        max_bytes: most bytes per delivery (one larger event goes alone).
    """

    def __init__(self, event_log: EventLog, signal: CommitSignal, topic_filter: TopicFilter,
                 min_priority: int, cursors: list[int], max_batch: int, max_bytes: int) -> None:
        self._log = event_log
        self._signal = signal
        self._selector = RecordSelector(None if topic_filter.match_all else topic_filter.patterns,
                                        min_priority)
        self.cursors = cursors
        self._max_batch = max_batch
        self._max_bytes = max_bytes
        self._next_partition = 0
        self.closed = False

    def close(self) -> None:
        """Make the next (or a pending) :meth:`next_batch` raise SubscriptionClosed."""
        self.closed = True

    async def next_batch(self) -> tuple[bytes, int]:
        """Wait for matching events; return (concatenated framed records, count).

        Raises:
            SubscriptionClosed: the server closed the subscription.
            EventStreamError: OUT_OF_RANGE when a cursor fell behind retention.
        """
        while True:
            if self.closed:
                raise SubscriptionClosed()
            generation = self._signal.generation
            records, count, scanned = self._collect()
            if count:
                return b"".join(records), count
            if scanned and self._behind():
                # A chunk held nothing for us: let others run, then scan on.
                await asyncio.sleep(0)
                continue
            await self._signal.wait(generation)

    def _behind(self) -> bool:
        """True when a partition has committed records past this subscription's cursor."""
        log = self._log
        return any(cursor < log.high_watermark(p) for p, cursor in enumerate(self.cursors))

    def _collect(self) -> tuple[list[memoryview], int, int]:
        """(the matching records' bytes, one chunk per partition read; how many; records scanned).

        At most max_batch records read per partition, so one call's work is
        bounded, and at most max_bytes of records taken (at least one). The
        filter runs in libshardq (:class:`..native.select.RecordSelector`):
        no Python object per record, matching or skipped.
        """
        log = self._log
        out: list[memoryview] = []
        count = scanned = size = 0
        partitions = log.partitions
        for step in range(partitions):
            partition = (self._next_partition + step) % partitions
            cursor = self.cursors[partition]
            if cursor >= log.high_watermark(partition):
                continue
            selection = Selection(cursor, self._selector, self._max_bytes, size)
            try:
                log.select(partition, cursor, self._max_batch - count, selection)
            except LookupError:
                raise EventStreamError(
                    "OFFSET_OUT_OF_RANGE",
                    f"partition {partition}: offset {cursor} is no longer retained (oldest is "
                    f"{log.start_offset(partition)}); subscribe again from earliest or a time",
                    field="start_offsets") from None
            if selection.matched:
                out.append(selection.events)
                count += selection.matched
                size += selection.written
            self.cursors[partition] = cursor + selection.examined
            scanned += selection.examined
            if count >= self._max_batch or selection.full:
                # Start the next batch after this partition so all make progress.
                self._next_partition = (partition + 1) % partitions
                break
        return out, count, scanned


__all__ = ["Subscription", "SubscriptionClosed"]
