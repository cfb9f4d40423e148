"""The raw ingest adapters' one contact with the broker.

Turns decoded frames into :class:`..broker.lanes.Submission` s and queues
them. Everything the TCP and UDP adapters know about how the broker takes
events is here, so a change of the submission's shape touches this module
only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..broker.broker import Broker
from ..broker.lanes import Submission, submissions_of
from ..broker.priority import Lane
from ..errors import EventStreamError
from ..native import Accepted

# Wait at most this long for a commit before trying a full lane again.
ROOM_POLL_SECONDS = 0.05


class BrokerSink:
    """Queues events of one transport in the broker's lanes.

    Args:
        broker: the broker.
        transport: label of the submissions and metrics, ``tcp`` or ``udp``.
        batch_mark: while realtime publishers are active, :meth:`put` of
            only batch events returns once at most this many batch events
            wait for the drain (0: only a full lane waits).
    """

    def __init__(self, broker: Broker, transport: str, batch_mark: int = 0) -> None:
        self._broker = broker
        self.transport = transport
        self._batch_mark = batch_mark
        # A submission never holds more than half a lane, so one always fits
        # once the lane has drained, however many frames one read brought.
        self._chunk = {lane: max(1, capacity // 2)
                       for lane, capacity in broker.lanes.capacity.items()}

    def submissions(self, accepted: Accepted) -> list[Submission]:
        """The submissions of ``accepted``: per lane, in frame order, in chunks of at most half the lane.

        Each future resolves to the encoded PublishResults of its events.
        """
        return submissions_of(accepted, 0, self.transport, self._chunk)

    def offer(self, submissions: list[Submission]) -> None:
        """Queue all of ``submissions`` at once or nothing (for datagrams).

        Raises:
            EventStreamError: LANE_FULL, SHUTTING_DOWN, ...: nothing was queued.
        """
        self._broker.publish(submissions)

    async def offer_when_room(self, submissions: list[Submission],
                              on_full: Callable[[], None] | None = None) -> None:
        """Queue all of ``submissions`` at once, waiting while a lane lacks room.

        Args:
            submissions: from :meth:`submissions` (chunked, so they fit a lane).
            on_full: called each time a full lane makes this wait (for metrics).

        Raises:
            EventStreamError: any refusal other than LANE_FULL (e.g.
                SHUTTING_DOWN); nothing was queued.
        """
        while True:
            try:
                self._broker.publish(submissions)
                return
            except EventStreamError as error:
                if error.reason != "LANE_FULL":
                    raise
            if on_full is not None:
                on_full()
            await self._wait_for_room()

    async def put(self, accepted: Accepted, on_full: Callable[[], None] | None = None,
                  on_paced: Callable[[], None] | None = None) -> list[Submission]:
        """Queue ``accepted`` in order, waiting while a lane is full.

        The caller reads nothing more from its socket meanwhile, so a full
        lane pushes back on the producer instead of dropping its frames.
        While realtime publishers are active (:meth:`..broker.lanes.Lanes.realtime_active`),
        events of the batch lane alone then also wait until the drain has
        taken the lane down to the batch mark: a batch producer is read as
        fast as rounds take its events, not ahead of them, so reading it
        does not take the event loop from realtime publishers for events
        that would only wait. Without realtime publishers there is nobody to
        yield to, and batch producers are read at full speed.

        Args:
            accepted: the good frames of a read or a batch.
            on_full: called each time a full lane makes this wait (for metrics).
            on_paced: called each time the batch mark makes this wait (for metrics).

        Returns:
            The queued submissions, in order; their futures resolve once committed.

        Raises:
            EventStreamError: any refusal other than LANE_FULL (e.g. SHUTTING_DOWN).
        """
        queued = self.submissions(accepted)
        for submission in queued:
            await self.offer_when_room([submission], on_full)
        mark = self._batch_mark
        lanes = self._broker.lanes
        if mark and queued and lanes.waiting(Lane.BATCH) > mark and lanes.realtime_active() \
                and all(submission.lane is Lane.BATCH for submission in queued):
            if on_paced is not None:
                on_paced()
            await lanes.wait_waiting_at_most(Lane.BATCH, mark)
        return queued

    async def _wait_for_room(self) -> None:
        """Return after the next commit (it frees lane room), or a short poll."""
        signal = self._broker.write_path.signal
        try:
            async with asyncio.timeout(ROOM_POLL_SECONDS):
                await signal.wait(signal.generation)
        except TimeoutError:
            pass


async def positions_of(queued: list[Submission]) -> list[int]:
    """Partition and offset of each frame of a batch, flat, in frame order."""
    if len(queued) == 1:   # one lane: rows are already in frame order
        await queued[0].future
        assert queued[0].placed is not None
        return queued[0].placed.flat_positions()
    by_frame: dict[int, tuple[int, int]] = {}
    for submission in queued:
        await submission.future
        assert submission.placed is not None
        flat = submission.placed.flat_positions()
        frames = submission.events.indexes()
        by_frame.update(zip(frames, zip(flat[::2], flat[1::2])))
    return [value for frame in sorted(by_frame) for value in by_frame[frame]]


__all__ = ["ROOM_POLL_SECONDS", "BrokerSink", "positions_of"]
