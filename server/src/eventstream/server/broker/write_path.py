"""The write path: lanes -> propose -> commit -> apply.

Owns the drain task, the only writer of the log. Each round it takes
submissions from the lanes (realtime first), *proposes* them (de-duplicates,
picks partitions, assigns offsets, encodes server fields), *commits* them (the
log makes them durable by its policy; a cluster will also replicate them to a
quorum), then *applies* them (they become visible to subscribers and their
publishers get acknowledgements). Nothing is acknowledged before it is
committed. A node without replication is a cluster of one: commit is the
log's commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import EventStreamError
from ..storage.log import EventLog
from . import wire
from .dedup import DedupWindow
from .lanes import Lanes, Submission

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one submission got from a commit round."""

    acks: list[bytes]
    """One encoded ``eventstream.v1.PublishAck`` per event, in order."""
    duplicates: int
    """How many of the events were duplicates of an earlier id."""


class CommitSignal:
    """Wakes every waiting subscriber after each commit (a broadcast)."""

    def __init__(self) -> None:
        self.generation = 0
        self._event = asyncio.Event()

    def fire(self) -> None:
        """Announce a commit."""
        self.generation += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seen_generation: int) -> None:
        """Return once a commit newer than ``seen_generation`` happened."""
        if self.generation == seen_generation:
            await self._event.wait()


def partition_of(key: str, topic: str, partitions: int) -> int:
    """The partition of an event: by key, or by topic when the key is empty."""
    if partitions == 1:
        return 0
    return zlib.crc32((key or topic).encode()) % partitions


class WritePath:
    """Accepts submissions into the lanes and commits them in order.

    Args:
        lanes: the two lanes.
        event_log: the log to append to and commit.
        dedup: the de-duplication window.
        drain_batch_events: most events per commit.
        batch_share: batch lane's reserved share of a round (see Lanes.take).
        on_commit: called after each commit with the applied submissions.
        clock_ns: wall clock in nanoseconds (ingest times, dedup window).
    """

    def __init__(self, lanes: Lanes, event_log: EventLog, dedup: DedupWindow, *,
                 drain_batch_events: int, batch_share: float,
                 on_commit: Callable[[list[Submission], list[RoundResult]], None] | None = None,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.lanes = lanes
        self.log = event_log
        self.dedup = dedup
        self.signal = CommitSignal()
        self.commit_count = 0
        self._drain_batch_events = drain_batch_events
        self._batch_share = batch_share
        self._on_commit = on_commit
        self._clock_ns = clock_ns
        self._id_prefix = uuid.uuid4().hex[:16] + "-"
        self._id_counter = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the drain task."""
        self._task = asyncio.get_running_loop().create_task(self._drain(), name="write-path")

    async def stop(self) -> None:
        """Stop the drain task (after :meth:`Lanes.wait_idle` for a clean stop)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def submit(self, submissions: list[Submission]) -> None:
        """Queue submissions for commit, all or none.

        Raises:
            EventStreamError: LANE_FULL (RESOURCE_EXHAUSTED) when a lane lacks room.
        """
        # Checked first: events offered to a stopped write path would sit in
        # the lanes, counted as accepted, and never be committed.
        if self._task is None or self._task.done():
            raise EventStreamError("COMMIT_FAILED", "the write path is not running")
        full = self.lanes.offer(submissions)
        if full is not None:
            raise EventStreamError(
                "LANE_FULL",
                f"the {full.label} lane is full ({self.lanes.capacity[full]} events); retry later",
                field="priority", retry_after=0.05)

    async def _drain(self) -> None:
        while True:
            await self.lanes.wait_ready()
            taken = self.lanes.take(self._drain_batch_events, self._batch_share)
            if taken:
                await self._commit_round(taken)

    async def _commit_round(self, taken: list[Submission]) -> None:
        now = self._clock_ns()
        new_ids: list[str] = []
        try:
            acks, staged, new_ids = self._propose(taken, now)
            for partition, (records, topics, priorities) in staged.items():
                self.log.append(partition, records, topics, bytes(priorities), now)
            await self.log.commit()
        except Exception as exc:  # nothing of this round is acknowledged; the drain goes on
            log.exception("commit failed; %d submissions refused", len(taken))
            self.dedup.forget(new_ids)
            error = EventStreamError("COMMIT_FAILED", f"commit failed: {exc}")
            for submission in taken:
                if not submission.future.done():
                    submission.future.set_exception(error)
                self.lanes.release(submission.lane, len(submission.events))
            return
        self._apply(taken, acks)

    def _propose(self, taken: list[Submission], now: int
                 ) -> tuple[list[RoundResult],
                            dict[int, tuple[list[bytes], list[str], bytearray]], list[str]]:
        """De-duplicate, place and encode; nothing is visible or acknowledged yet."""
        partitions = self.log.partitions
        durability = self.log.durability
        time_field = wire.timestamp_field(wire.INGEST_TIME_TAG, now)
        ack_tail = wire.ack_tail(durability, now)
        encode_ack = wire.encode_ack
        staged: dict[int, tuple[list[bytes], list[str], bytearray]] = {}
        next_offsets: dict[int, int] = {}
        new_ids: list[str] = []
        all_results: list[RoundResult] = []
        for submission in taken:
            acks: list[bytes] = []
            duplicates = 0
            for event_id, topic, key, priority, body in submission.events:
                id_field = b""
                remember = bool(event_id)
                if remember:
                    id_bytes = event_id.encode()
                    hit = self.dedup.lookup(event_id, now)
                    if hit is not None:
                        acks.append(encode_ack(id_bytes, hit[0], hit[1], True,
                                               wire.ack_tail(durability, hit[2])))
                        duplicates += 1
                        continue
                else:
                    self._id_counter += 1
                    event_id = f"{self._id_prefix}{self._id_counter:x}"
                    id_bytes = event_id.encode()
                    id_field = wire.length_delimited(wire.ID_TAG, id_bytes)
                partition = partition_of(key, topic, partitions)
                slot = staged.get(partition)
                if slot is None:
                    slot = staged[partition] = ([], [], bytearray())
                    next_offsets[partition] = self.log.next_offset(partition)
                offset = next_offsets[partition]
                next_offsets[partition] = offset + 1
                record = b"".join((body, id_field, time_field, wire.PARTITION_TAG,
                                   wire.varint(partition), wire.OFFSET_TAG, wire.varint(offset)))
                slot[0].append(wire.DELIVERY_TAG + wire.varint(len(record)) + record)
                slot[1].append(topic)
                slot[2].append(priority)
                # Only producer-chosen ids are remembered: the server's own are
                # unique, and remembering them would cost a dict entry per event.
                if remember:
                    self.dedup.remember(event_id, partition, offset, now)
                    new_ids.append(event_id)
                acks.append(encode_ack(id_bytes, partition, offset, False, ack_tail))
            all_results.append(RoundResult(acks, duplicates))
        self.dedup.expire(now)
        return all_results, staged, new_ids

    def _apply(self, taken: list[Submission], results: list[RoundResult]) -> None:
        """Make the round visible and acknowledge it."""
        self.commit_count += 1
        self.signal.fire()
        for submission, result in zip(taken, results):
            if not submission.future.done():
                submission.future.set_result(result.acks)
            self.lanes.release(submission.lane, len(submission.events))
        if self._on_commit is not None:
            self._on_commit(taken, results)


__all__ = ["CommitSignal", "RoundResult", "WritePath", "partition_of"]
