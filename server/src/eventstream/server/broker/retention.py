"""Retention, decided by the leader's clock and applied by every node through the log.

The leader looks at the log's segments after each applied round that
changed their number, and once a second: the oldest sealed segments go
while their newest event is older than ``retention_ms``, or while some
partition holds more than ``retention_bytes`` (segments hold every
partition, so the partition with the most bytes decides). It proposes one
``RETENTION`` entry, "the log may drop the entries before index X"; every
node applies it, takes a snapshot covering X, and then drops those segments
(see :mod:`.applier`). Never the newest segment, never an entry not applied.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

from ..storage.entries import EntryKind
from ..storage.entry_api import EntryLog
from ..tasks import cancel_and_wait
from .applier import RETENTION
from .proposals import ProposalLost, ProposalRefused, Proposer

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0


class RetentionPolicy:
    """Proposes RETENTION entries on the leader (see the module docstring).

    Args:
        event_log: the entry log.
        proposer: where the entries are proposed.
        retention_ms: ``storage.retention_ms`` (0: no age limit).
        retention_bytes: ``storage.retention_bytes`` per partition (0: no size limit).
        clock_ns: wall clock in nanoseconds.
    """

    def __init__(self, event_log: EntryLog, proposer: Proposer, *, retention_ms: int,
                 retention_bytes: int, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._log = event_log
        self._proposer = proposer
        self._retention_ns = retention_ms * 1_000_000
        self._retention_bytes = retention_bytes
        self._clock_ns = clock_ns
        self._proposed = 0
        self._in_flight: asyncio.Task[None] | None = None
        self._segments_seen = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the once-a-second check."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="retention")

    async def stop(self) -> None:
        """Stop checking."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        in_flight, self._in_flight = self._in_flight, None
        await cancel_and_wait(in_flight)

    async def _run(self) -> None:
        for _ in itertools.count():
            await asyncio.sleep(CHECK_SECONDS)
            self.check()

    def applied(self) -> None:
        """Entries were applied: check again when the number of segments changed."""
        if not self._retention_ns and not self._retention_bytes:
            return
        count = self._log.segment_count()
        if count != self._segments_seen:
            self._segments_seen = count
            self.check()

    def drop_point(self) -> int | None:
        """The index before which the log may drop entries now, None when nothing is due."""
        if not self._retention_ns and not self._retention_bytes:
            return None
        every = self._log.segments()
        if len(every) < 2:
            return None  # never the newest
        horizon = self._clock_ns() - self._retention_ns
        kept = [sum(sizes) for sizes in zip(*(s.partition_bytes for s in every))] or [0]
        drop_to = None
        for segment in every[:-1]:
            too_old = bool(self._retention_ns) and (segment.last_time is None or
                                                    segment.last_time < horizon)
            too_big = bool(self._retention_bytes) and max(kept) > self._retention_bytes
            if not (too_old or too_big):
                break
            drop_to = segment.last_index + 1
            kept = [a - b for a, b in zip(kept, segment.partition_bytes)] or kept
        return drop_to

    def check(self) -> None:
        """Propose a RETENTION entry when segments are due and none is in flight."""
        if not self._proposer.is_leader or (self._in_flight is not None
                                            and not self._in_flight.done()):
            return
        point = self.drop_point()
        if point is None or point <= max(self._proposed, self._log.first_index()):
            return
        try:
            index, term = self._proposer.propose(EntryKind.RETENTION, RETENTION.pack(point))
        except ProposalRefused as error:
            log.debug("retention not proposed: %s", error)
            return
        self._proposed = point
        self._in_flight = asyncio.get_running_loop().create_task(self._settle(index, term),
                                                                 name="retention-entry")

    async def _settle(self, index: int, term: int) -> None:
        try:
            await self._proposer.wait_applied(index, term)
        except (ProposalLost, ProposalRefused):
            self._proposed = 0  # not applied: decide again


__all__ = ["CHECK_SECONDS", "RetentionPolicy"]
