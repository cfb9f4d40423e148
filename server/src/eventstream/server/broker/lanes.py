"""The realtime and batch lanes between acceptance and commit.

Pure, synchronous bookkeeping plus one ``asyncio.Event`` to wake the drain.
A lane holds *submissions* (the events of one request that share the lane),
never a Python object per event, and counts its depth in events. Capacity is
reserved when a request is accepted and released once its events are
committed, so the depth bounds everything accepted but not yet acknowledged.

The environment variable ``EVENTSTREAM_TEST_LANES`` (test-only: nothing in
production sets it, and the server warns when it is set) makes :func:`lanes`
return a drain with a bug on purpose, so the priority tests can start a real
server with it and prove that their checks fail on such a drain: ``fifo``
gives :class:`FifoLanes`, which ignore priorities; ``under_share`` gives
:class:`UnderShareLanes`, which keep the batch lane under its share.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..native import Accepted, AcceptedEvents, PlacedRecords
from .priority import Lane

log = logging.getLogger(__name__)

REALTIME_RECENT_SECONDS = 1.0
"""Realtime publishers count as active this long after the last realtime event arrived."""
LANES_ENV = "EVENTSTREAM_TEST_LANES"
"""Test-only: ``fifo`` selects :class:`FifoLanes` (see the module docstring)."""


@dataclass(slots=True, eq=False)
class Submission:
    """Accepted events of one request waiting in one lane, as buffers.

    ``future`` resolves, once they are committed, to one encoded
    PublishResult per event, in order, each wrapped in ``result_tag`` when
    it is not 0 (see :meth:`..native.EventEncoder.place`).
    """

    lane: Lane
    events: AcceptedEvents
    count: int
    future: asyncio.Future[bytes]
    received_ns: int
    result_tag: int = 0
    transport: str = "grpc"
    placed: PlacedRecords | None = None
    """Set when placed: the partition and offset of each event, its records (sealed
    records are valid only until the next round is sequenced)."""


def submissions_of(accepted: Accepted, result_tag: int = 0, transport: str = "grpc",
                   chunks: Mapping[Lane, int] | None = None) -> list[Submission]:
    """The submissions of an accepted request (or read of frames), realtime first.

    The one builder of submissions, for every transport.

    Args:
        accepted: what the encoder accepted.
        result_tag: the tag byte wrapping each PublishResult (0: none).
        transport: label of the submissions and their metrics.
        chunks: most events per submission, by lane (None: one per lane).
    """
    loop = asyncio.get_running_loop()
    now = time.time_ns()
    out: list[Submission] = []
    for lane, events in ((Lane.REALTIME, accepted.realtime_events()),
                         (Lane.BATCH, accepted.batch_events())):
        count = len(events)
        if not count:
            continue
        parts = [events] if chunks is None or count <= chunks[lane] else events.chunks(chunks[lane])
        for part in parts:
            out.append(Submission(lane, part, len(part), loop.create_future(), now,
                                  result_tag, transport))
    return out


class Lanes:
    """Two bounded FIFO lanes; the drain takes realtime first without starving batch.

    Args:
        realtime_capacity: events the realtime lane holds.
        batch_capacity: events the batch lane holds.
    """

    def __init__(self, realtime_capacity: int, batch_capacity: int) -> None:
        self.capacity = {Lane.REALTIME: realtime_capacity, Lane.BATCH: batch_capacity}
        self.depth = {Lane.REALTIME: 0, Lane.BATCH: 0}
        self.full_rejections = {Lane.REALTIME: 0, Lane.BATCH: 0}
        self.pushed = {Lane.REALTIME: 0, Lane.BATCH: 0}   # events, ever
        self.popped = {Lane.REALTIME: 0, Lane.BATCH: 0}
        self._queues: dict[Lane, deque[Submission]] = {Lane.REALTIME: deque(), Lane.BATCH: deque()}
        self._waiting = {Lane.REALTIME: 0, Lane.BATCH: 0}
        self.waiting_peak = {Lane.REALTIME: 0, Lane.BATCH: 0}
        """The most events that ever waited in each lane to be taken by the drain."""
        self.realtime_offered = -1.0
        """:func:`time.monotonic` of the last realtime submission (-1: none yet)."""
        self._ready = asyncio.Event()
        self._took = asyncio.Event()   # pulsed at each take: wakes wait_waiting_at_most
        self._idle = asyncio.Event()
        self._idle.set()
        self._fill_mark = 0
        self._on_fill: Callable[[], None] | None = None

    def offer(self, submissions: list[Submission]) -> Lane | None:
        """Enqueue all submissions, or none of them.

        Returns:
            None when accepted, else the first lane that lacks room.
        """
        wanted = {Lane.REALTIME: 0, Lane.BATCH: 0}
        for submission in submissions:
            wanted[submission.lane] += submission.count
        for lane, count in wanted.items():
            if count and self.depth[lane] + count > self.capacity[lane]:
                self.full_rejections[lane] += 1
                return lane
        waiting = self._waiting
        for submission in submissions:
            count = submission.count
            lane = submission.lane
            self.depth[lane] += count
            self.pushed[lane] += count
            waiting[lane] += count
            if waiting[lane] > self.waiting_peak[lane]:
                self.waiting_peak[lane] = waiting[lane]
            self._queues[lane].append(submission)
        if wanted[Lane.REALTIME]:
            self.realtime_offered = time.monotonic()
        if submissions:
            self._idle.clear()
            self._ready.set()
            on_fill = self._on_fill
            if on_fill is not None and self.filled(self._fill_mark):
                on_fill()
        return None

    def watch_fill(self, mark: int, on_fill: Callable[[], None]) -> None:
        """Call ``on_fill`` after each offer that leaves the lanes :meth:`filled` to ``mark``."""
        self._fill_mark = mark
        self._on_fill = on_fill

    def filled(self, mark: int) -> bool:
        """Whether a realtime event or ``mark`` events or more wait to be taken."""
        waiting = self._waiting
        return bool(waiting[Lane.REALTIME]) or waiting[Lane.BATCH] >= mark

    def take(self, budget: int, batch_share: float) -> list[Submission]:
        """Dequeue up to ``budget`` events' worth of submissions, realtime first.

        While both lanes have events, the batch lane gets at least
        ``batch_share`` of the budget (whole submissions, so the last one
        may take it a little beyond) and realtime the rest of it, so batch
        progresses however busy the realtime lane is; and a round that
        carries realtime events takes no more batch events than that, so the
        round a realtime event waits for stays short (to write, to fsync, for
        subscribers to read). Realtime events come first in the round. A
        submission is never split; at least one is taken when any waits.
        """
        realtime, batch = self._queues[Lane.REALTIME], self._queues[Lane.BATCH]
        taken: list[Submission] = []
        if not realtime:
            self._take_from(batch, Lane.BATCH, budget, taken)
        else:
            batch_taken: list[Submission] = []
            if batch:
                reserved = max(int(budget * batch_share), 1)
                budget = max(budget - self._take_from(batch, Lane.BATCH, reserved, batch_taken,
                                                      at_least=True), 1)
            self._take_from(realtime, Lane.REALTIME, budget, taken)
            taken += batch_taken
        self._took_some()
        return taken

    def _took_some(self) -> None:
        """After a take: clear the ready flag once both lanes are empty; wake the mark's waiters."""
        if not self._queues[Lane.REALTIME] and not self._queues[Lane.BATCH]:
            self._ready.clear()
        self._took.set()   # wakes every waiter now; clear() does not take that back
        self._took.clear()

    def _take_from(self, queue: deque[Submission], lane: Lane, budget: int,
                   taken: list[Submission], at_least: bool = False) -> int:
        """Move submissions of ``lane`` to ``taken``; the events moved.

        As many as fit ``budget`` (at least one), or with ``at_least`` until
        they hold ``budget`` events (the last may go beyond it).
        """
        used = 0
        while queue and (used < budget if at_least
                         else used == 0 or used + queue[0].count <= budget):
            submission = queue.popleft()
            used += submission.count
            taken.append(submission)
        self._waiting[lane] -= used
        self.popped[lane] += used
        return used

    def release(self, lane: Lane, count: int) -> None:
        """Give back capacity once ``count`` events of ``lane`` are committed."""
        self.depth[lane] -= count
        if not self.depth[Lane.REALTIME] and not self.depth[Lane.BATCH]:
            self._idle.set()

    async def wait_ready(self) -> None:
        """Wait until some submission waits to be taken."""
        await self._ready.wait()

    async def wait_waiting_at_most(self, lane: Lane, mark: int) -> None:
        """Wait until at most ``mark`` events of ``lane`` wait to be taken by the drain."""
        while self._waiting[lane] > mark:
            await self._took.wait()

    async def wait_idle(self) -> None:
        """Wait until every accepted event is committed."""
        await self._idle.wait()

    def realtime_active(self) -> bool:
        """Whether a realtime event arrived in the last :data:`REALTIME_RECENT_SECONDS`."""
        return self.realtime_offered > time.monotonic() - REALTIME_RECENT_SECONDS

    def waiting(self, lane: Lane) -> int:
        """Events of ``lane`` not yet taken by the drain."""
        return self._waiting[lane]


class FifoLanes(Lanes):
    """Test-only, a bug on purpose: takes submissions in arrival order, whatever their lane."""

    def take(self, budget: int, batch_share: float) -> list[Submission]:
        """Dequeue up to ``budget`` events' worth of the oldest submissions of either lane."""
        realtime, batch = self._queues[Lane.REALTIME], self._queues[Lane.BATCH]
        taken: list[Submission] = []
        used = 0
        while (realtime or batch) and (used == 0 or used < budget):
            oldest = (realtime if realtime and (not batch or realtime[0].received_ns
                                                <= batch[0].received_ns) else batch)
            used += self._take_from(oldest, oldest[0].lane, 1, taken)
        self._took_some()
        return taken


class UnderShareLanes(Lanes):
    """Test-only, a bug on purpose: batch gets only the whole submissions that fit its share.

    A round with realtime events then leaves the batch lane under its share
    whenever its submissions do not pack the share exactly.
    """

    def take(self, budget: int, batch_share: float) -> list[Submission]:
        """Realtime first up to the budget less the batch share, then the batch submissions that fit it."""
        realtime, batch = self._queues[Lane.REALTIME], self._queues[Lane.BATCH]
        reserved = max(int(budget * batch_share), 1)
        taken: list[Submission] = []
        used = self._take_from(realtime, Lane.REALTIME, budget - reserved if batch else budget, taken)
        self._take_from(batch, Lane.BATCH, reserved if used else budget, taken)
        self._took_some()
        return taken


TEST_LANES = {"fifo": (FifoLanes, "the drain ignores priorities"),
              "under_share": (UnderShareLanes, "the drain keeps the batch lane under its share")}
"""The test-only drains of :data:`LANES_ENV`, with what the server warns."""


def lanes(realtime_capacity: int, batch_capacity: int) -> Lanes:
    """The lanes of a node: :class:`Lanes`, or a test-only drain under :data:`LANES_ENV`.

    Raises:
        ValueError: the variable holds anything but a name of :data:`TEST_LANES`.
    """
    setting = os.environ.get(LANES_ENV, "")
    if not setting:
        return Lanes(realtime_capacity, batch_capacity)
    if setting not in TEST_LANES:
        raise ValueError(f"{LANES_ENV}={setting!r}: the test settings are {', '.join(TEST_LANES)}")
    kind, bug = TEST_LANES[setting]
    log.warning("%s=%s is set: %s (a test-only setting)", LANES_ENV, setting, bug)
    return kind(realtime_capacity, batch_capacity)
