"""The write path: lanes -> sequence -> propose -> (append, commit) -> apply -> acknowledge.

Owns the drain task. Each round it takes submissions from the lanes
(realtime first), has the sequencer turn them into one EVENTS entry
(:mod:`.sequencer`) and proposes it to the replicated log
(:class:`.proposals.Proposer`: the Raft driver appends it to the entry log
and commits it; a single node is a cluster of one voter, where commit
follows local durability). Up to ``max_rounds_in_flight`` rounds may be
between proposed and applied; a new round is formed once the previous one
was handed to the log, so everything that arrived meanwhile joins it. With
``further_round_events``, a leader with a round in flight proposes another
only once that many events (or a realtime one) wait: on a busy or shared
core rounds then grow rather than multiply, while an idle leader still
proposes at once and a busy one with a core to spare still pipelines. The
applier (:mod:`.applier`) reports each applied entry in index order; the
round sequenced at that index and term gets its acknowledgements then,
never before it is visible, so acknowledgements follow entry order. A round
whose index was taken by another term's entry (leadership changed) is
answered with a retryable error.

Realtime before batch, also for the event loop: the lanes give realtime
events the first places of every round, the batch lane its share of it
while realtime events wait (:meth:`.lanes.Lanes.take`); and while realtime
publishers are active (a realtime event arrived in the last
:data:`.lanes.REALTIME_RECENT_SECONDS`) the drain holds a round of only batch
events back, up to ``batch_yield_seconds``, for as long as the event loop
is saturated. A unary gRPC publish needs several turns of the loop before
its event reaches a lane (grpc.aio takes one new call per turn); a batch
round sets off milliseconds of loop work (staging, applying, the
subscribers' reads, and the TCP reads its lane room lets in), which would
otherwise take those turns first. The hold is bounded, so batch events are
never starved.

The sequencer works only while this node leads; at each new term it is
activated from the log's tail (see :meth:`WritePath._activate`). While the
node does not lead, rounds are refused (the replication step forwards them
to the leader instead).

A storage error halts the write path, never a rollback: the rounds in flight
learn that their outcome is unknown, everything queued or submitted later is
refused (UNAVAILABLE, ``STORAGE_FAILED``), readers keep reading what was
applied, and only a restart, whose recovery decides what reached the disk,
accepts writes again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator

from ..errors import EventStreamError
from ..native import DedupTable
from ..storage.entries import ENTRY_HEADER_SIZE, EntryKind
from ..storage.entry_api import EntryLog
from ..tasks import cancel_and_wait
from .applier import CommitSignal, EntryApplier, EntryScanner
from .lanes import Lanes, Submission
from .priority import Lane
from .proposals import NotLeader, ProposalRefused, Proposer, WritesHalted
from .sequencer import Round, RoundResult, Sequencer

log = logging.getLogger(__name__)

LOOP_PROBE_SECONDS = 0.001
"""The sleep that probes the event loop's load while a batch round is held back."""
LOOP_SATURATED_SHARE = 0.75
"""A probe during which the loop's thread ran this share of the time or more
finds the loop saturated: other work was ready all along (many short tasks
as much as one long one)."""
LOOP_LATE_SECONDS = 0.003
"""A probe that took longer than this finds the loop saturated too, however
little its thread ran: one long task, or a core the server does not get."""


class WritePath:
    """Accepts submissions into the lanes and sequences them into the log (see the module docstring).

    Args:
        lanes: the two lanes.
        sequencer: builds each round's entry.
        proposer: the replicated log's leader side.
        event_log: the entry log (its tail re-derives the sequencer at each term).
        applier: applies committed entries; reports them to this write path.
        scanner: lists producer ids of EVENTS payloads (for the tail's ids).
        drain_batch_events: most events per round.
        batch_share: batch lane's reserved share of a round (see Lanes.take).
        max_rounds_in_flight: most rounds proposed and not yet applied.
        further_round_events: while a round is in flight, another is proposed
            only once this many events, or a realtime one, wait (0: at once).
        batch_yield_seconds: most time a round of only batch events is held
            back while realtime publishers are active and the loop is saturated (0: never).
        on_commit: called after each answered round with its submissions and results.
        on_halt: called once, with (reason, error name), when a storage error halts it.
        clock_ns: wall clock in nanoseconds (ingest times).
    """

    def __init__(self, lanes: Lanes, sequencer: Sequencer, proposer: Proposer,
                 event_log: EntryLog, applier: EntryApplier, scanner: EntryScanner, *,
                 drain_batch_events: int, batch_share: float, max_rounds_in_flight: int,
                 further_round_events: int = 0, batch_yield_seconds: float = 0.0,
                 on_commit: Callable[[list[Submission], list[RoundResult]], None] | None = None,
                 on_halt: Callable[[str, str], None] | None = None,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        if max_rounds_in_flight < 1:
            raise ValueError("max_rounds_in_flight must be at least 1")
        self.lanes = lanes
        self.log = event_log
        self.dedup: DedupTable = applier.window
        self.signal: CommitSignal = applier.signal
        self.commit_count = 0
        """Rounds answered since start."""
        self.rounds = 0
        """Rounds proposed since start (each one EVENTS entry)."""
        self._sequencer = sequencer
        self._proposer = proposer
        self._applier = applier
        self._scanner = scanner
        self._drain_batch_events = drain_batch_events
        self._batch_share = batch_share
        self._max_rounds = max_rounds_in_flight
        self._further_round = further_round_events
        self._batch_yield = batch_yield_seconds
        self.yielded_seconds = 0.0
        """Time batch rounds were held back for realtime publishers, since start."""
        self._on_commit = on_commit
        self._on_halt = on_halt
        self._clock_ns = clock_ns
        self._pending: deque[Round] = deque()
        self._last_proposed = 0
        self._room = asyncio.Event()
        self.halted: str | None = None
        """Why the write path stopped accepting writes (None while it accepts them)."""
        self.halted_error = ""
        """The short name (an errno name) of the error that halted it ("" while none did)."""
        self._task: asyncio.Task[None] | None = None
        applier.on_entry = self._applied
        if further_round_events > 0:
            lanes.watch_fill(further_round_events, self._room.set)

    @property
    def applied_index(self) -> int:
        """Index of the last log entry applied on this node."""
        return self._applier.applied_index

    @property
    def rounds_in_flight(self) -> int:
        """Rounds proposed and not yet applied."""
        return len(self._pending)

    def start(self) -> None:
        """Start the drain task."""
        self._task = asyncio.get_running_loop().create_task(self._drain(), name="write-path")

    async def stop(self) -> None:
        """Stop the drain task (after :meth:`Lanes.wait_idle` for a clean stop)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def halt(self, reason: str, error: str) -> None:
        """Stop accepting writes until the process restarts (after a storage error).

        Rounds in flight are answered: their outcome is unknown.

        Args:
            reason: one line saying what failed.
            error: a short name of the error (an errno name such as ``ENOSPC``).
        """
        if self.halted is not None:
            return
        self.halted = reason
        self.halted_error = error
        log.error("storage failed: %s; this node accepts no more writes until it restarts "
                  "(the restart's recovery decides what of the rounds in flight is stored)",
                  reason)
        unknown = EventStreamError(
            "STORAGE_FAILED",
            f"storage failed: {reason}. The outcome of this publish is unknown: its events "
            "may or may not be stored. This node accepts no more writes until it "
            "restarts; publish them again with the same ids after the restart (those "
            "stored are then acknowledged as duplicates)")
        pending, self._pending = self._pending, deque()
        for round_ in pending:
            self._refuse(round_.taken, unknown)
        self._room.set()
        if self._on_halt is not None:
            self._on_halt(reason, error)

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

    # -- the drain -------------------------------------------------------------

    async def _drain(self) -> None:
        while True:
            await self.lanes.wait_ready()
            # One more turn of the event loop lets the requests already read
            # join this round: a round per request would cost more than the turn.
            await asyncio.sleep(0)
            if self.halted is None:
                await self._wait_for_room()
                await self._yield_to_realtime()
            taken = self.lanes.take(self._drain_batch_events, self._batch_share)
            if not taken:
                continue
            if self.halted is not None:
                self._refuse(taken, self._refusal())  # queued before the halt: never written
            else:
                self._propose_round(taken)

    async def _wait_for_room(self) -> None:
        """Wait until a new round may be formed.

        That is: this node leads, the sequencer is active for its term, the
        previous round was handed to the log and fewer than the most rounds
        are in flight; and, while this node leads with a round in flight,
        enough waits for a further one (``further_round_events``).
        """
        proposer = self._proposer
        try:
            if proposer.is_leader and self._sequencer.term != proposer.term:
                await self._activate()
            if proposer.appended_index < self._last_proposed:  # (mostly it is handed over)
                await proposer.wait_appended(self._last_proposed)
            while self.halted is None and self._hold_round():
                self._room.clear()
                await self._room.wait()
        except WritesHalted:
            pass  # the halt is reported on its own; this round is refused

    def _hold_round(self) -> bool:
        """Whether the next round waits for room (see :meth:`_wait_for_room`)."""
        in_flight = len(self._pending)
        return in_flight >= self._max_rounds or (
            in_flight > 0 and self._further_round > 0 and self._proposer.is_leader
            and not self.lanes.filled(self._further_round))

    async def _yield_to_realtime(self) -> None:
        """Hold a round of only batch events back while realtime publishers need the loop.

        Only while a realtime event arrived in the last
        :data:`.lanes.REALTIME_RECENT_SECONDS` and none waits in its lane; until a
        probe of the loop (a short sleep: how late it ends, and the loop
        thread's CPU time during it) finds it no longer saturated, a realtime event arrives,
        or ``batch_yield_seconds`` passed.
        """
        lanes = self.lanes
        if self._batch_yield <= 0 or not lanes.realtime_active():
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._batch_yield
        now = started
        while (now < deadline and lanes.realtime_active()
               and not lanes.waiting(Lane.REALTIME) and self.halted is None):
            ran = time.thread_time()
            await asyncio.sleep(LOOP_PROBE_SECONDS)
            probed, now = now, loop.time()
            took = now - probed
            if took <= LOOP_LATE_SECONDS and time.thread_time() - ran < LOOP_SATURATED_SHARE * took:
                break
        self.yielded_seconds += now - started

    async def _activate(self) -> None:
        """Start sequencing in the current term from the log's tail.

        Every entry the Raft core holds is first handed to the entry log, so
        its tail is complete; then the counters are each partition's next
        offset and the newest time there, and the ids in flight those of the
        entries appended but not applied (a previous leader's rounds, which
        may still commit).
        """
        proposer = self._proposer
        term = proposer.term
        await proposer.wait_appended(proposer.last_index)
        if proposer.term != term or not proposer.is_leader:
            return
        event_log = self.log
        partitions = range(event_log.partitions)
        unapplied = list(self._ids_between(self._applier.applied_index, event_log.last_index()))
        self._sequencer.activate(term, [event_log.next_offset(p) for p in partitions],
                                 max(event_log.last_time(p) for p in partitions), unapplied)
        log.info("sequencing in term %d from entry %d (%d producer ids in flight)", term,
                 event_log.last_index() + 1, len(unapplied))

    def _ids_between(self, applied: int, last: int) -> Iterator[tuple[int, bytes, int, int, int]]:
        """(index, id, partition, offset, time) of the producer ids in entries after ``applied``."""
        if last <= applied:
            return
        batch = self.log.entries(applied + 1, last + 1, 1 << 62)
        data = memoryview(batch.data)
        for i in range(batch.count):
            if batch.kinds[i] != EntryKind.EVENTS:
                continue
            scan = self._scanner.entry_scan(data[batch.start(i) + ENTRY_HEADER_SIZE:batch.ends[i]],
                                            self.log.partitions)
            runs = scan.runs()
            time_ns = runs[-1][3] if runs else 0
            for event_id, partition, offset in scan.ids():
                yield batch.first_index + i, event_id, partition, offset, time_ns

    def _propose_round(self, taken: list[Submission]) -> None:
        proposer, sequencer = self._proposer, self._sequencer
        if not proposer.is_leader or sequencer.term != proposer.term:
            self._refuse(taken, EventStreamError(
                "COMMIT_FAILED", f"this node does not lead (leader: {self._leader_text()}); "
                "nothing of this request was stored; retry"))
            return
        index = proposer.last_index + 1
        try:
            round_ = sequencer.sequence(taken, index, proposer.term, self._clock_ns())
        except Exception as exc:  # nothing was proposed: this round is refused, the drain goes on
            log.exception("sequencing failed; %d submissions refused", len(taken))
            self._refuse(taken, EventStreamError("COMMIT_FAILED", f"commit failed: {exc}"))
            return
        self._applier.expect(index, round_.term, round_.rows)
        try:
            proposer.propose_events(round_.batch)
        except ProposalRefused as exc:
            # Its counters were advanced for an entry that does not exist:
            # the next term re-derives them from the log.
            sequencer.deactivate()
            if isinstance(exc, NotLeader):
                self._refuse(taken, EventStreamError(
                    "COMMIT_FAILED", f"{exc}; nothing of this request was stored; retry"))
            else:
                self._refuse(taken, self._refusal(str(exc)))
            return
        self._pending.append(round_)
        self._last_proposed = index
        self.rounds += 1

    def _leader_text(self) -> str:
        return "unknown" if not self._proposer.is_leader else "this node, in a new term"

    # -- answers ---------------------------------------------------------------

    def _applied(self, index: int, term: int) -> None:
        """The applier applied entry ``index`` of ``term``: answer the round sequenced there."""
        self._sequencer.applied(index)
        pending = self._pending
        while pending and pending[0].index <= index:
            round_ = pending.popleft()
            if round_.index == index and round_.term == term:
                self._answer(round_)
            else:
                self._refuse(round_.taken, EventStreamError(
                    "COMMIT_FAILED", f"not committed: entry {round_.index} was taken by term "
                    f"{term if round_.index == index else 'another'} (leadership changed); "
                    "nothing of this request was stored; publish it again with the same ids"))
        self._room.set()

    def _answer(self, round_: Round) -> None:
        """Acknowledge a round that is applied (visible)."""
        self.commit_count += 1
        release = self.lanes.release
        for submission, result in zip(round_.taken, round_.results):
            if not submission.future.done():
                submission.future.set_result(result.results)
            release(submission.lane, submission.count)
        if self._on_commit is not None:
            self._on_commit(round_.taken, round_.results)

    def _refusal(self, reason: str | None = None) -> EventStreamError:
        """What a publish gets once the write path halted."""
        return EventStreamError(
            "STORAGE_FAILED", f"storage failed: {reason or self.halted}. This node accepts no "
            "writes until it restarts; nothing of this request was stored")

    def _refuse(self, taken: list[Submission], error: EventStreamError) -> None:
        """Fail the futures of ``taken`` with ``error`` and give back their lane room."""
        for submission in taken:
            if not submission.future.done():
                submission.future.set_exception(error)
            self.lanes.release(submission.lane, submission.count)


__all__ = ["WritePath"]
