"""The broker: what every transport calls to publish and subscribe.

Pure of sockets and protobuf: the gRPC servicers (and the raw TCP/UDP
adapters) validate their own wire formats, then hand the broker submissions
of pre-encoded events and read subscriptions back as framed bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..errors import EventStreamError
from ..native import DedupTable
from ..storage.log import EventLog
from .lanes import Lanes, Submission
from .subscriptions import Subscription
from .topics import TopicFilter
from .write_path import WritePath

log = logging.getLogger(__name__)


class Broker:
    """Accepts publishes while open, serves subscriptions, drains on shutdown.

    Args:
        write_path: the started-or-not write path.
        max_subscription_batch: default most events per delivery.
        max_subscription_bytes: most bytes per delivery (one larger event goes alone).
    """

    def __init__(self, write_path: WritePath, max_subscription_batch: int,
                 max_subscription_bytes: int) -> None:
        self.write_path = write_path
        self.log: EventLog = write_path.log
        self.lanes: Lanes = write_path.lanes
        self.dedup: DedupTable = write_path.dedup
        self._phase = "starting"  # then "open", then "draining"
        self._max_subscription_batch = max_subscription_batch
        self._max_subscription_bytes = max_subscription_bytes
        self._subscriptions: set[Subscription] = set()
        self.write_gate: Callable[[], None] | None = None
        """Raises when this node takes no writes now (a follower of a replicated cluster)."""

    @property
    def phase(self) -> str:
        """``starting``, ``open`` or ``draining``."""
        return self._phase

    def start(self) -> None:
        """Start committing and accepting publishes."""
        self.write_path.start()
        self._phase = "open"

    def stop_accepting(self) -> None:
        """Refuse new publishes and subscriptions from now on (the drain begins)."""
        self._phase = "draining"

    def check_accepting(self) -> None:
        """Raise UNAVAILABLE unless publishes are accepted now."""
        if self._phase == "starting":
            raise EventStreamError("STARTING", "the server is starting; retry later")
        if self._phase == "draining":
            raise EventStreamError("SHUTTING_DOWN",
                                   "the server is shutting down; retry on another node or later")

    def publish(self, submissions: list[Submission]) -> None:
        """Queue submissions for commit; their futures resolve with acknowledgements.

        Raises:
            EventStreamError: UNAVAILABLE while not accepting, RESOURCE_EXHAUSTED
                when a lane is full (nothing of the request is queued then).
        """
        self.check_accepting()
        if not submissions:
            return  # every event of the request was refused: nothing to write, on any node
        if self.write_gate is not None:
            self.write_gate()
        self.write_path.submit(submissions)

    def subscribe(self, topic_filter: TopicFilter, min_priority: int, cursors: list[int],
                  max_batch: int) -> Subscription:
        """Open a subscription from the given cursors (one per partition)."""
        self.check_accepting()
        batch = min(max_batch or self._max_subscription_batch, self._max_subscription_batch)
        subscription = Subscription(self.log, self.write_path.signal, topic_filter,
                                    min_priority, cursors, batch, self._max_subscription_bytes)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a subscription whose stream ended."""
        self._subscriptions.discard(subscription)

    @property
    def subscription_count(self) -> int:
        """Open subscriptions."""
        return len(self._subscriptions)

    def cursors_latest(self) -> list[int]:
        """The high watermark of every partition."""
        return [self.log.high_watermark(p) for p in range(self.log.partitions)]

    def cursors_earliest(self) -> list[int]:
        """The oldest retained offset of every partition."""
        return [self.log.start_offset(p) for p in range(self.log.partitions)]

    def cursors_at_time(self, time_ns: int) -> list[int]:
        """The first offset at or after ``time_ns`` in every partition."""
        return [self.log.offset_for_time(p, time_ns) for p in range(self.log.partitions)]

    async def drain(self, timeout: float) -> bool:
        """Refuse new publishes, commit what was accepted, close subscriptions.

        Returns:
            True when everything accepted was committed within ``timeout``.
        """
        self.stop_accepting()
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                await self.lanes.wait_idle()
            clean = True
        except TimeoutError:
            clean = False
            log.error("drain timed out after %.1fs with %d events uncommitted", timeout,
                      sum(self.lanes.depth.values()))
        for subscription in list(self._subscriptions):
            subscription.close()
        self.write_path.signal.fire()
        log.info("drained in %.3fs", time.monotonic() - started)
        return clean

    async def stop(self) -> None:
        """Stop the write path (the log is the composition root's to close)."""
        await self.write_path.stop()
