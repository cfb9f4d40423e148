"""The Raft driver: the single asyncio task that owns a ``RaftNode`` and does its I/O.

The core (``eventstream.server.raft``) decides; this task persists, sends
and applies what it decides, and feeds it time and messages. Each turn of
the loop:

1. take inputs: step the messages in the inbox (in delivery order), pass
   on the transport's reports (unreachable peers, snapshot outcomes), then
   the ticks that fell due (messages first, so a heartbeat that arrived
   during a slow fsync counts before the election timer);
2. while the core has a Ready: **persist** it (``RaftLog.persist``, durable
   when ``must_sync``) and restore a snapshot it carries, then **send** its
   messages, then **apply** its committed entries (``Applier.apply``),
   answer its read states, then ``advance()``; take the snapshot it asked
   for, if any;
3. wake whoever waits on a state (``wait_until``, ``wait_applied``), then
   sleep until the next input.

When the membership in force changes (a ``MEMBERSHIP`` entry applied, or a
snapshot restored), ``on_membership`` hears of it after the Ready, and once
at start, so the transport can follow the members.

Proposals (``propose_many``) go straight into the core from the caller's
task, also while a persist is in flight (the core allows inputs between
``ready()`` and ``advance()``): all proposals made during one fsync are
persisted together by the next Ready (group commit).

A storage, applier or invariant error halts the driver: the loop ends,
every waiter gets :class:`~.errors.DriverHalted`, ``halted`` holds the
cause and no more writes are taken. Nothing is retried.

Time: ticks come from the event loop's clock, every ``tick_seconds``; a
loop that fell far behind skips the missed ticks rather than firing a burst.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable, Sequence

from eventstream.server.raft import (
    CompactedError,
    Config,
    Entry,
    EntryKind,
    Membership,
    MembershipChange,
    Message,
    NotLeaderError,
    Payload,
    RaftNode,
    Ready,
    Role,
    Snapshot,
    Status,
    UnavailableError,
)

from .append_times import AppendTimes
from .errors import DriverHalted, DriverStopped, ProposalDropped, TooManyReads
from .ports import Applier, RaftLog, Transport

log = logging.getLogger(__name__)

MAX_PENDING_READS = 65536
"""Linearizable reads waiting for their read index at once; one more raises TooManyReads."""
MAX_LAG_TICKS = 10
"""A ticker this many ticks late restarts from now instead of firing every missed tick."""


class RaftDriver:
    """Drives one Raft node: owns its core, its loop task and its timer (see the module docstring).

    Args:
        config: the core's settings (node id, group, election and heartbeat ticks...).
        raft_log: the node's durable log; the core is built on ``raft_log.storage``.
        transport: where outbound messages go; bound to this driver by :meth:`start`.
        applier: the application committed entries are applied to.
        tick_seconds: real time of one Raft tick (``cluster.tick_ms``).
        inbox_batches: inbound message batches queued for the loop at most;
            ``deliver`` waits beyond that.
        rng: the election jitter's source (default: a fresh ``random.Random``).
        on_halt: called once with the error when the driver halts (the
            write path stops taking writes at once).
        expected_errors: errors that halt the driver without being bugs (a
            storage error of the log): logged in one line, without a traceback.
    """

    def __init__(self, config: Config, raft_log: RaftLog, transport: Transport, applier: Applier, *,
                 tick_seconds: float = 0.05, inbox_batches: int = 1024,
                 rng: random.Random | None = None,
                 on_halt: Callable[[BaseException], None] | None = None,
                 expected_errors: tuple[type[BaseException], ...] = ()) -> None:
        if tick_seconds <= 0:
            raise ValueError("tick_seconds must be positive")
        if inbox_batches < 1:
            raise ValueError("inbox_batches must be at least 1")
        self._config = config
        self._log = raft_log
        self._transport = transport
        self._applier = applier
        self._tick_seconds = tick_seconds
        self._node = RaftNode(config, raft_log.storage, rng or random.Random())
        self._inbox: asyncio.Queue[Sequence[Message]] = asyncio.Queue(inbox_batches)
        self._unreachable: set[str] = set()
        self._snapshot_reports: dict[str, bool] = {}
        self._ticks_due = 0
        self._next_tick = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._watchers = 0
        """Callers of :meth:`wait_until` waiting on ``_changed``."""
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._halted: BaseException | None = None
        self._on_halt = on_halt
        self._expected_errors = expected_errors
        self._snapshot_wanted = False
        # (index, sequence, term or -1, future): callers of wait_applied, by index.
        self._appliers: list[tuple[int, int, int, asyncio.Future[None]]] = []
        self._reads: dict[bytes, asyncio.Future[int]] = {}
        self._sequence = itertools.count()
        self.dropped_messages = 0
        """Inbound messages dropped: addressed to another node or group, or arrived after stop."""
        self.elections_won = 0
        self.append_times = AppendTimes()
        """When this node, leading, appended its entries (for :meth:`lag_seconds`)."""
        """Times this node became leader since start."""
        self.on_membership: Callable[[Membership], None] | None = None
        """Called with the membership in force at start and whenever it changes."""
        self._membership_seen: Membership | None = None

    # ------------------------------------------------------------------
    # Lifecycle.

    async def start(self) -> None:
        """Bind the transport, restore the application's snapshot if any, start the loop and the ticker.

        Raises:
            RuntimeError: started twice.
        """
        if self._task is not None:
            raise RuntimeError("the Raft driver is already started")
        snapshot = self._log.storage.snapshot()
        if snapshot.index > 0:
            await self._applier.restore(snapshot)
        self._transport.bind(self)
        loop = asyncio.get_running_loop()
        self._next_tick = loop.time() + self._tick_seconds
        self._timer = loop.call_at(self._next_tick, self._on_tick)
        self._task = loop.create_task(self._run(), name=f"raft-driver-{self._config.node_id}")
        self._membership_changed()
        self._wake.set()  # a restarted node may have committed entries to apply

    async def stop(self) -> None:
        """Finish the Ready in hand, then stop; waiters get :class:`DriverStopped`. Idempotent."""
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = self._task
        if task is not None and not task.done():
            self._wake.set()
            await asyncio.shield(task)
        self._fail_waiters(DriverStopped("the Raft driver stopped"))
        self._drop_inbox()

    # ------------------------------------------------------------------
    # The write path's API.

    def propose_many(self, items: Sequence[tuple[EntryKind, Payload]]) -> range:
        """Append entries (kind, payload) to the log, all or nothing; returns their indexes.

        The entries carry the current :attr:`term` (read it right after this
        call, before any ``await``); they are committed once applied with that
        term (:meth:`wait_applied`). Proposals made while a persist is in flight
        are persisted together by the next one.

        Raises:
            NotLeaderError: not the leader (``leader_hint`` names it when known),
                or a leadership transfer is under way.
            DriverStopped: not running; DriverHalted after an error.
            ValueError: NOOP or MEMBERSHIP entries (the core writes those).
        """
        self._check_running()
        indexes = self._node.propose_many(items)
        if indexes:
            self.append_times.mark(indexes.start, time.monotonic())
            self._wake.set()
        return indexes

    def propose_membership_change(self, change: MembershipChange) -> int:
        """Propose one single-server membership change; returns its entry's index.

        Raises:
            NotLeaderError: as for :meth:`propose_many`.
            raft.MembershipError: the change does not fit, or one is pending.
            DriverStopped: not running.
        """
        self._check_running()
        index = self._node.propose_membership_change(change)
        self._wake.set()
        return index

    async def wait_applied(self, index: int, term: int | None = None) -> None:
        """Return once entry ``index`` is applied (and, with ``term``, was that term's entry).

        Raises:
            ProposalDropped: another term's entry was committed at ``index``.
            DriverStopped: the driver stopped first (DriverHalted: after an error).
        """
        if index <= self._node.applied_index:
            self._check_term(index, term)
            return
        self._check_running()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._appliers, (index, next(self._sequence), -1 if term is None else term, future))
        await future

    def request_snapshot(self) -> None:
        """Take a snapshot of the application after the current (or next) apply step.

        For the application's own schedule (periodically, and before the log
        drops entries); followers that need one ask through the core.
        """
        self._snapshot_wanted = True
        self._wake.set()

    def transfer_leadership(self, to: str | None = None) -> None:
        """Hand leadership to voter ``to`` (default: the most up-to-date one); returns at once.

        Proposals are refused with NotLeaderError while it is under way; wait
        for the outcome with ``wait_until(lambda: driver.leader_id != me)``.

        Raises:
            NotLeaderError: this node is not the leader.
            ValueError: ``to`` is not another voter.
            DriverStopped: not running.
        """
        self._check_running()
        self._node.transfer_leadership(to)
        self._wake.set()

    async def read_index(self) -> int:
        """A linearizable read point: an index at or above every write acknowledged before the call.

        Returns once that index is applied on this node, so a read of the
        applied state now is linearizable. Reads are lost when leadership
        changes: they raise NotLeaderError then; retry.

        Raises:
            NotLeaderError: no leader is known, or leadership changed meanwhile.
            TooManyReads: too many reads are waiting.
            DriverStopped: the driver stopped first.
        """
        self._check_running()
        if len(self._reads) >= MAX_PENDING_READS:
            raise TooManyReads(f"{len(self._reads)} reads are waiting for their read index")
        context = b"read-%d" % next(self._sequence)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._node.read_index(context)
        self._reads[context] = future
        self._wake.set()
        index = await future
        await self.wait_applied(index)
        return index

    def campaign(self) -> None:
        """Start an election now (bootstrap, tests); elections otherwise start on their own."""
        self._check_running()
        self._node.campaign()
        self._wake.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true; it is checked after every turn of the loop.

        Bound it with ``asyncio.timeout``.

        Raises:
            DriverStopped: the driver stopped first.
        """
        while not predicate():
            self._check_running()
            self._watchers += 1
            try:
                await self._changed.wait()
            finally:
                self._watchers -= 1

    # ------------------------------------------------------------------
    # Introspection (for /status, metrics and tests).

    @property
    def node_id(self) -> str:
        """This node's id."""
        return self._config.node_id

    @property
    def term(self) -> int:
        """The current term."""
        return self._node.term

    @property
    def role(self) -> Role:
        """The node's role in the current term."""
        return self._node.role

    @property
    def leader_id(self) -> str | None:
        """The leader known in the current term (this node when leading), None when unknown."""
        return self._node.leader_id

    @property
    def is_leader(self) -> bool:
        """Whether this node leads its group now."""
        return self._node.role is Role.LEADER

    @property
    def transferring_to(self) -> str | None:
        """The member leadership is being handed to (None: no transfer in progress)."""
        return self._node.transferee

    @property
    def commit_index(self) -> int:
        """Highest index known committed."""
        return self._node.commit_index

    @property
    def applied_index(self) -> int:
        """Highest index applied (and acknowledged to the core)."""
        return self._node.applied_index

    @property
    def last_index(self) -> int:
        """Index of the last entry in the log (persisted or not)."""
        return self._node.last_index

    @property
    def membership(self) -> Membership:
        """The membership in force: the latest one applied."""
        return self._node.membership

    @property
    def membership_pending(self) -> bool:
        """Whether a membership change proposed by this leader is not applied yet."""
        return self._node.membership_pending

    @property
    def halted(self) -> BaseException | None:
        """The error that halted the driver; None while it runs (or stopped cleanly)."""
        return self._halted

    @property
    def running(self) -> bool:
        """Whether the loop runs: started, not stopped, not halted."""
        return self._task is not None and not self._stopping and self._halted is None

    def status(self) -> Status:
        """The core's summary: term, vote, role, leader, commit, applied, membership, progress."""
        return self._node.status()

    def lag_seconds(self) -> dict[str, float]:
        """Per peer, the age of the oldest entry it lacks (leader only; empty elsewhere)."""
        status = self._node.status()
        if status.role is not Role.LEADER:
            return {}
        matches = {peer: progress.match for peer, progress in status.progress.items()
                   if peer != status.node_id}
        if matches:
            self.append_times.forget_through(min(matches.values()))
        now = time.monotonic()
        return {peer: self.append_times.lag_seconds(match, status.last_index, now)
                for peer, match in sorted(matches.items())}

    # ------------------------------------------------------------------
    # The Inbox port, for the transport.

    async def deliver(self, messages: Sequence[Message]) -> None:
        """Queue inbound messages; waits while the inbox is full (see ``ports.Inbox``)."""
        if not self.running:
            self.dropped_messages += len(messages)
            return
        await self._inbox.put(messages)
        self._wake.set()

    def try_deliver(self, messages: Sequence[Message]) -> bool:
        """Queue inbound messages without waiting; False when the inbox is full."""
        if not self.running:
            self.dropped_messages += len(messages)
            return True
        try:
            self._inbox.put_nowait(messages)
        except asyncio.QueueFull:
            return False
        self._wake.set()
        return True

    def report_unreachable(self, node_id: str) -> None:
        """A message to ``node_id`` could not be sent."""
        self._unreachable.add(node_id)
        self._wake.set()

    def report_snapshot(self, node_id: str, ok: bool) -> None:
        """Sending a snapshot to ``node_id`` finished (``ok``) or failed."""
        self._snapshot_reports[node_id] = ok
        self._wake.set()

    # ------------------------------------------------------------------
    # The loop.

    async def _run(self) -> None:
        node = self._node
        try:
            while not self._stopping:
                self._wake.clear()
                self._take_inputs()
                while node.has_ready():
                    await self._handle(node.ready())
                    self._take_inputs()
                if self._snapshot_wanted:
                    self._snapshot_wanted = False
                    await self._take_snapshot()
                self._notify()
                if not self._stopping:
                    await self._wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._halt(error)

    def _take_inputs(self) -> None:
        node = self._node
        inbox = self._inbox
        while not inbox.empty():
            for message in inbox.get_nowait():
                if message.recipient != self._config.node_id or message.group_id != self._config.group_id:
                    self.dropped_messages += 1
                    continue
                node.step(message)
        if self._unreachable:
            unreachable, self._unreachable = self._unreachable, set()
            for peer in unreachable:
                node.report_unreachable(peer)
        if self._snapshot_reports:
            reports, self._snapshot_reports = self._snapshot_reports, {}
            for peer, ok in reports.items():
                node.report_snapshot(peer, ok)
        ticks, self._ticks_due = self._ticks_due, 0
        for _ in range(ticks):
            node.tick()

    async def _handle(self, ready: Ready) -> None:
        node = self._node
        await self._log.persist(ready)
        if ready.snapshot is not None:
            # The snapshot as the log keeps it: a transfer's entries stay in the log.
            await self._applier.restore(self._log.storage.snapshot())
        if ready.messages:
            self._transport.send(ready.messages)
        committed = ready.committed_entries
        if committed:
            await self._applier.apply(committed)
        for read in ready.read_states:
            future = self._reads.pop(read.context, None)
            if future is not None and not future.done():
                future.set_result(read.index)
        if ready.soft_state is not None:
            self._role_changed(ready)
        node.advance()
        self._membership_changed()
        if committed:
            self._release_appliers(committed)
        if ready.snapshot_request:
            await self._take_snapshot()

    def _role_changed(self, ready: Ready) -> None:
        soft = ready.soft_state
        assert soft is not None
        if soft.role is Role.LEADER:
            self.elections_won += 1
            self.append_times.lead(self._node.last_index, time.monotonic())
            log.info("Raft node %s leads term %d", self._config.node_id, self._node.term)
        else:
            log.info("Raft node %s is %s in term %d, leader %s", self._config.node_id,
                     soft.role.value, self._node.term, soft.leader or "unknown")
        # Read requests are lost when leadership changes: fail them, callers retry.
        if self._reads:
            reads, self._reads = self._reads, {}
            for future in reads.values():
                if not future.done():
                    future.set_exception(NotLeaderError(soft.leader, "leadership changed during a read"))

    def _membership_changed(self) -> None:
        membership = self._node.membership
        if membership is not self._membership_seen and membership != self._membership_seen:
            self._membership_seen = membership
            if self.on_membership is not None:
                self.on_membership(membership)

    def _release_appliers(self, committed: list[Entry]) -> None:
        waiting = self._appliers
        last = committed[-1].index
        first = committed[0].index
        while waiting and waiting[0][0] <= last:
            index, _, term, future = heapq.heappop(waiting)
            if future.done():
                continue
            applied_term = committed[index - first].term if index >= first else self._stored_term(index)
            if term >= 0 and applied_term not in (term, -1):
                future.set_exception(ProposalDropped(index, term, applied_term))
            else:
                future.set_result(None)

    def _check_term(self, index: int, term: int | None) -> None:
        if term is None:
            return
        applied_term = self._stored_term(index)
        if applied_term not in (term, -1):
            raise ProposalDropped(index, term, applied_term)

    def _stored_term(self, index: int) -> int:
        """Term of an applied entry, from storage; -1 when compacted (then it cannot be told)."""
        try:
            return self._log.storage.term(index)
        except (CompactedError, UnavailableError):
            return -1

    async def _take_snapshot(self) -> None:
        node = self._node
        index = node.applied_index
        data = await self._applier.snapshot()
        snapshot = Snapshot(index, self._log.storage.term(index), node.membership, data)
        await self._log.save_snapshot(snapshot)

    def _notify(self) -> None:
        if not self._watchers:  # (after most turns: a new Event for no one is not made)
            return
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _on_tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._ticks_due += 1
        self._next_tick += self._tick_seconds
        if now - self._next_tick > MAX_LAG_TICKS * self._tick_seconds:
            self._next_tick = now + self._tick_seconds
        self._timer = loop.call_at(self._next_tick, self._on_tick)
        self._wake.set()

    # ------------------------------------------------------------------

    def _check_running(self) -> None:
        if self._halted is not None:
            raise DriverHalted(self._halted)
        if self._task is None or self._stopping:
            raise DriverStopped("the Raft driver is not running")

    def _halt(self, error: BaseException) -> None:
        self._halted = error
        expected = isinstance(error, self._expected_errors)
        log.error("Raft node %s halted: %r; it takes no more writes until restarted",
                  self._config.node_id, error, exc_info=None if expected else error)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fail_waiters(DriverHalted(error))
        self._drop_inbox()
        if self._on_halt is not None:
            self._on_halt(error)

    def _drop_inbox(self) -> None:
        """Empty the inbox, so that a transport waiting in ``deliver`` is let go (its messages dropped)."""
        inbox = self._inbox
        while not inbox.empty():
            self.dropped_messages += len(inbox.get_nowait())

    def _fail_waiters(self, error: DriverStopped) -> None:
        waiting, self._appliers = self._appliers, []
        for _, _, _, future in waiting:
            if not future.done():
                future.set_exception(error)
        reads, self._reads = self._reads, {}
        for read in reads.values():
            if not read.done():
                read.set_exception(error)
        self._notify()
