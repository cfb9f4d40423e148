"""The write path: lanes -> propose -> commit -> apply.

Owns the drain task, the only writer of the log. Each round it takes
submissions from the lanes (realtime first), *proposes* them (de-duplicates,
picks partitions, assigns offsets, encodes server fields), *commits* them (the
log makes them durable by its policy; a cluster will also replicate them to a
quorum), then *applies* them (they become visible to subscribers and their
publishers get acknowledgements). Nothing is acknowledged before it is
committed. A node without replication is a cluster of one: commit is the
log's commit.

A storage error halts the write path, never a rollback: once appending or
committing a round fails, that round's publishers learn that its outcome is
unknown, everything queued or submitted later is refused (UNAVAILABLE,
``STORAGE_FAILED``), readers keep reading what was committed, and only a
restart, whose recovery decides what reached the disk, accepts writes again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import EventStreamError
from ..native import Duplicates, EventEncoder, PlacedRecords
from ..storage.failure import StorageFailed
from ..storage.log import EventLog, RecordBatch
from ..tasks import cancel_and_wait
from .dedup import DedupWindow
from .lanes import Lanes, Submission

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one submission got from a commit round."""

    results: bytes
    """One encoded PublishResult per event, in row order (see Submission)."""
    count: int
    """Events of the submission."""
    duplicates: int
    """How many of them were duplicates of an earlier id."""


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


class WritePath:
    """Accepts submissions into the lanes and commits them in order.

    Args:
        lanes: the two lanes.
        event_log: the log to append to and commit.
        dedup: the de-duplication window.
        encoder: places accepted events and encodes their records and acknowledgements.
        drain_batch_events: most events per commit.
        batch_share: batch lane's reserved share of a round (see Lanes.take).
        on_commit: called after each commit with the applied submissions.
        on_halt: called once, with (reason, error name), when a storage error halts it.
        clock_ns: wall clock in nanoseconds (ingest times, dedup window).
    """

    def __init__(self, lanes: Lanes, event_log: EventLog, dedup: DedupWindow,
                 encoder: EventEncoder, *,
                 drain_batch_events: int, batch_share: float,
                 on_commit: Callable[[list[Submission], list[RoundResult]], None] | None = None,
                 on_halt: Callable[[str, str], None] | None = None,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.lanes = lanes
        self.log = event_log
        self.dedup = dedup
        self.signal = CommitSignal()
        self.commit_count = 0
        self._drain_batch_events = drain_batch_events
        self._batch_share = batch_share
        self._on_commit = on_commit
        self.on_applied: Callable[[], None] | None = None
        """Called after each applied round, before ``on_commit`` (the consumer groups
        wake their members); set once the groups exist."""
        self._on_halt = on_halt
        self._clock_ns = clock_ns
        self.halted: str | None = None
        """Why the write path stopped accepting writes (None while it accepts them)."""
        self.halted_error = ""
        """The short name (an errno name) of the error that halted it ("" while none did)."""
        self._encoder = encoder
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the drain task."""
        self._task = asyncio.get_running_loop().create_task(self._drain(), name="write-path")

    async def stop(self) -> None:
        """Stop the drain task (after :meth:`Lanes.wait_idle` for a clean stop)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def halt(self, reason: str, error: str) -> None:
        """Stop accepting writes until the process restarts (after a storage error).

        Args:
            reason: one line saying what failed.
            error: a short name of the error (an errno name such as ``ENOSPC``).
        """
        if self.halted is not None:
            return
        self.halted = reason
        self.halted_error = error
        log.error("storage failed: %s; this node accepts no more writes until it restarts "
                  "(the restart's recovery decides what of the failed round is stored)", reason)
        if self._on_halt is not None:
            self._on_halt(reason, error)

    def storage_failed(self, failure: StorageFailed) -> None:
        """The log failed outside a commit (a periodic fsync): halt."""
        self.halt(failure.reason, failure.error)

    def submit(self, submissions: list[Submission]) -> None:
        """Queue submissions for commit, all or none.

        Raises:
            EventStreamError: LANE_FULL (RESOURCE_EXHAUSTED) when a lane lacks room,
                STORAGE_FAILED (UNAVAILABLE) once the write path halted.
        """
        if self.halted is not None:
            raise self._refusal()
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
            # One more turn of the event loop lets the requests already read
            # join this round: a round per request would cost more than the turn.
            await asyncio.sleep(0)
            taken = self.lanes.take(self._drain_batch_events, self._batch_share)
            if not taken:
                continue
            if self.halted is not None:
                self._refuse(taken, self._refusal())  # queued before the halt: never written
            else:
                await self._commit_round(taken)

    async def _commit_round(self, taken: list[Submission]) -> None:
        now = self._clock_ns()
        new_ids: list[bytes] = []
        try:
            acks, placed = self._propose(taken, now, new_ids)
        except Exception as exc:  # nothing was written: this round is refused, the drain goes on
            log.exception("commit failed; %d submissions refused", len(taken))
            self.dedup.forget(new_ids)
            self._refuse(taken, EventStreamError("COMMIT_FAILED", f"commit failed: {exc}"))
            return
        try:
            for partition, batch in placed:
                self.log.append(partition, batch, now)
            await self.log.commit()
        except Exception as exc:  # some of the round may be on disk: halt, never roll back
            if isinstance(exc, StorageFailed):
                reason, error = exc.reason, exc.error
            else:
                log.exception("commit failed")
                reason, error = f"{type(exc).__name__}: {exc}", type(exc).__name__
            self.halt(reason, error)
            self._refuse(taken, EventStreamError(
                "STORAGE_FAILED",
                f"storage failed: {reason}. The outcome of this publish is unknown: its events "
                "may or may not be stored. This node accepts no more writes until it "
                "restarts; publish them again with the same ids after the restart (those "
                "stored are then acknowledged as duplicates)"))
            return
        self._apply(taken, acks)

    def _refusal(self) -> EventStreamError:
        """What a publish gets once the write path halted."""
        return EventStreamError(
            "STORAGE_FAILED", f"storage failed: {self.halted}. This node accepts no writes "
            "until it restarts; nothing of this request was stored")

    def _refuse(self, taken: list[Submission], error: EventStreamError) -> None:
        """Fail the futures of ``taken`` with ``error`` and give back their lane room."""
        for submission in taken:
            if not submission.future.done():
                submission.future.set_exception(error)
            self.lanes.release(submission.lane, submission.count)

    def _propose(self, taken: list[Submission], now: int, new_ids: list[bytes]
                 ) -> tuple[list[RoundResult], list[tuple[int, RecordBatch]]]:
        """De-duplicate, place and encode; nothing is visible or acknowledged yet.

        The encoder does the per-event work in one call per submission: it
        gives each new event its partition (by the hash of its key, or of its
        topic) and offset, appends the server's fields to make the record,
        and encodes every acknowledgement. Producer ids remembered for
        de-duplication are added to ``new_ids`` (forgotten if the commit fails).
        """
        log = self.log
        next_offsets = array("Q", [log.next_offset(p) for p in range(log.partitions)])
        durability = log.durability
        placed: list[tuple[int, RecordBatch]] = []
        results: list[RoundResult] = []
        for submission in taken:
            dups, fresh = self._dedup(submission, now)
            out = self._encoder.place(submission.events, dups.encoded(), next_offsets,
                                      time_ns=now, durability=durability,
                                      result_tag=submission.result_tag)
            if fresh:
                remember = self.dedup.remember
                for event_id, row in fresh:
                    remember(event_id, *out.position(row), now)
                    new_ids.append(event_id)
            _collect(out, placed)
            submission.placed = out
            results.append(RoundResult(out.results, submission.count, dups.count))
        self.dedup.expire(now)
        return results, placed

    def _dedup(self, submission: Submission, now: int
               ) -> tuple[Duplicates, list[tuple[bytes, int]]]:
        """Which events of one submission repeat an id seen before.

        Returns:
            The duplicates, and the (id, event number) of each new event
            that carries a producer id.
        """
        dups = Duplicates(submission.count)
        ids = submission.events.producer_ids()
        if ids is None:
            return dups, []  # only server-assigned ids: unique by construction
        lookup = self.dedup.lookup
        first_row: dict[bytes, int] = {}
        fresh: list[tuple[bytes, int]] = []
        for row, event_id in enumerate(ids):
            if not event_id:
                continue
            hit = lookup(event_id, now)
            if hit is not None:
                dups.of_stored(row, *hit)
            elif event_id in first_row:
                dups.of_event(row, first_row[event_id])
            else:
                first_row[event_id] = row
                fresh.append((event_id, row))
        return dups, fresh

    def _apply(self, taken: list[Submission], results: list[RoundResult]) -> None:
        """Make the round visible and acknowledge it."""
        self.commit_count += 1
        self.signal.fire()
        for submission, result in zip(taken, results):
            if not submission.future.done():
                submission.future.set_result(result.results)
            self.lanes.release(submission.lane, submission.count)
        if self.on_applied is not None:
            self.on_applied()
        if self._on_commit is not None:
            self._on_commit(taken, results)


def _collect(out: PlacedRecords, placed: list[tuple[int, RecordBatch]]) -> None:
    """Add a submission's records to ``placed``: one batch per partition, sharing its buffer."""
    data = out.records
    for partition, start, ends, spans, priorities in out.runs():
        placed.append((partition, RecordBatch(data, start, ends, spans, priorities, data)))


__all__ = ["CommitSignal", "RoundResult", "WritePath"]
