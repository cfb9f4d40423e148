"""The raw ingest adapters' one contact with the broker.

Turns decoded frames into :class:`..broker.lanes.Submission` s and queues
them. Everything the TCP and UDP adapters know about how the broker takes
events is here, so a change of the submission's shape touches this module
only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..broker.broker import Broker
from ..broker.lanes import Submission
from ..broker.priority import Lane
from ..errors import EventStreamError
from .frames import EventTuple

# Wait at most this long for a commit before trying a full lane again.
ROOM_POLL_SECONDS = 0.05


class BrokerSink:
    """Queues events of one transport in the broker's lanes.

    Args:
        broker: the broker.
        transport: label of the submissions and metrics, ``tcp`` or ``udp``.
    """

    def __init__(self, broker: Broker, transport: str) -> None:
        self._broker = broker
        self.transport = transport
        # A submission never holds more than half a lane, so one always fits
        # once the lane has drained, however many frames one read brought.
        self._chunk = {lane: max(1, capacity // 2)
                       for lane, capacity in broker.lanes.capacity.items()}

    def _submission(self, lane: Lane, events: list[EventTuple]) -> Submission:
        return Submission(lane, events, asyncio.get_running_loop().create_future(),
                          time.time_ns(), self.transport)

    def offer(self, events: dict[Lane, list[EventTuple]]) -> None:
        """Queue all of ``events`` at once or nothing (for datagrams).

        Raises:
            EventStreamError: LANE_FULL, SHUTTING_DOWN, ...: nothing was queued.
        """
        self._broker.publish([self._submission(lane, chunk) for lane, chunk in events.items()])

    async def put(self, events: dict[Lane, list[EventTuple]],
                  on_full: Callable[[], None] | None = None) -> dict[Lane, list[asyncio.Future]]:
        """Queue ``events`` in order, waiting while a lane is full.

        The caller reads nothing more from its socket meanwhile, so a full
        lane pushes back on the producer instead of dropping its frames.

        Args:
            events: events by lane, in arrival order.
            on_full: called each time a full lane makes this wait (for metrics).

        Returns:
            Per lane, the futures of the queued submissions in order; each
            resolves to the encoded PublishAcks of its events.

        Raises:
            EventStreamError: any refusal other than LANE_FULL (e.g. SHUTTING_DOWN).
        """
        futures: dict[Lane, list[asyncio.Future]] = {}
        for lane, lane_events in events.items():
            chunk = self._chunk[lane]
            queued = futures[lane] = []
            for start in range(0, len(lane_events), chunk):
                submission = self._submission(lane, lane_events[start:start + chunk])
                while True:
                    try:
                        self._broker.publish([submission])
                        break
                    except EventStreamError as error:
                        if error.reason != "LANE_FULL":
                            raise
                    if on_full is not None:
                        on_full()
                    await self._wait_for_room()
                queued.append(submission.future)
        return futures

    async def _wait_for_room(self) -> None:
        """Return after the next commit (it frees lane room), or a short poll."""
        signal = self._broker.write_path.signal
        try:
            async with asyncio.timeout(ROOM_POLL_SECONDS):
                await signal.wait(signal.generation)
        except TimeoutError:
            pass


__all__ = ["ROOM_POLL_SECONDS", "BrokerSink"]
