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
        self._filter = topic_filter
        self._min_priority = min_priority
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
            records, scanned = self._collect()
            if records:
                return b"".join(records), len(records)
            if scanned and self._behind():
                # A chunk held nothing for us: let others run, then scan on.
                await asyncio.sleep(0)
                continue
            await self._signal.wait(generation)

    def _behind(self) -> bool:
        """True when a partition has committed records past this subscription's cursor."""
        log = self._log
        return any(cursor < log.high_watermark(p) for p, cursor in enumerate(self.cursors))

    def _collect(self) -> tuple[list[bytes], int]:
        """(matching records, records scanned).

        At most max_batch records read per partition, so one call's work is bounded, and at most max_bytes of
        records taken (at least one).
        """
        log = self._log
        out: list[bytes] = []
        scanned = size = 0
        budget = self._max_bytes
        partitions = log.partitions
        pass_all = self._filter.match_all and self._min_priority == 0
        for step in range(partitions):
            partition = (self._next_partition + step) % partitions
            cursor = self.cursors[partition]
            if cursor >= log.high_watermark(partition):
                continue
            room = self._max_batch - len(out)
            try:
                result = log.read(partition, cursor, room)
            except LookupError:
                raise EventStreamError(
                    "OFFSET_OUT_OF_RANGE",
                    f"partition {partition}: offset {cursor} is no longer retained (oldest is "
                    f"{log.start_offset(partition)}); subscribe again from earliest or a time",
                    field="start_offsets") from None
            records = result.records
            taken = len(records)
            if pass_all:
                total = sum(map(len, records))
                if size + total > budget:
                    taken, total = _fitting(records, budget - size, first=not out)
                out.extend(records[:taken] if taken < len(records) else records)
                size += total
            else:
                matches = self._filter.matches
                minimum = self._min_priority
                for index, (topic, priority) in enumerate(zip(result.topics, result.priorities)):
                    if priority >= minimum and matches(topic):
                        record = records[index]
                        if out and size + len(record) > budget:
                            taken = index   # it starts the next delivery
                            break
                        out.append(record)
                        size += len(record)
            self.cursors[partition] = cursor + taken
            scanned += taken
            if len(out) >= self._max_batch or taken < len(records):
                # Start the next batch after this partition so all make progress.
                self._next_partition = (partition + 1) % partitions
                break
        return out, scanned


def _fitting(records: list[bytes], budget: int, first: bool) -> tuple[int, int]:
    """(count, bytes) of the leading records that fit in ``budget`` bytes.

    With ``first`` (nothing taken yet) at least one, however large.
    """
    size = 0
    for count, record in enumerate(records):
        if size + len(record) > budget and (count or not first):
            return count, size
        size += len(record)
    return len(records), size
