"""The Raft consensus algorithm as a deterministic state machine: inputs in, a Ready out.

Pure: no I/O, clock, threads or global randomness. Time arrives only through
:meth:`RaftNode.tick`, randomness only through the generator given to the
constructor, the durable state only through the storage port; everything
the node wants done comes back as a :class:`~eventstream.server.raft.ready.Ready`.
Not thread-safe: one caller drives a node.

Inputs: :meth:`~RaftNode.tick`, :meth:`~RaftNode.step` (a message from a
peer), :meth:`~RaftNode.propose` / :meth:`~RaftNode.propose_many`,
:meth:`~RaftNode.propose_membership_change`,
:meth:`~RaftNode.transfer_leadership`, :meth:`~RaftNode.read_index`,
:meth:`~RaftNode.campaign`, :meth:`~RaftNode.report_unreachable` and
:meth:`~RaftNode.report_snapshot`. After inputs, when
:meth:`~RaftNode.has_ready` is true, take :meth:`~RaftNode.ready`, do what it
says (``ready.py`` lists the order) and call :meth:`~RaftNode.advance`.
Inputs may arrive between ``ready()`` and ``advance()``; their effects go into
the next Ready.

Implemented as in the Raft paper and thesis: randomized election timeouts,
pre-vote, check-quorum, replication with per-follower flow control
(``progress.py``) and fast back-off by term, commit of current-term entries
only (a new leader appends a NOOP), leadership transfer, learners,
single-server membership changes (``membership.py``), snapshots, and
read-index and lease reads (``read_only.py``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from eventstream.server.raft.bugs import InjectedBug
from eventstream.server.raft.config import Config, ReadOnlyMode
from eventstream.server.raft.errors import NotLeaderError, RaftInvariantError
from eventstream.server.raft.log import RaftLog
from eventstream.server.raft.membership import (
    Membership,
    MembershipChange,
    MembershipError,
    apply_change,
    decode_membership_entry,
    encode_membership_entry,
)
from eventstream.server.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from eventstream.server.raft.progress import Inflights, Progress, ProgressState
from eventstream.server.raft.quorum import VoteResult, committed_index, has_quorum, vote_result
from eventstream.server.raft.read_only import ReadIndexTracker
from eventstream.server.raft.ready import FollowerStatus, ReadState, Ready, Role, SoftState, Status
from eventstream.server.raft.records import Entry, EntryKind, HardState, Payload, Snapshot, entries_size
from eventstream.server.raft.storage import CompactedError, LogStorage, UnavailableError

_KIND = operator.attrgetter("kind")
_RESERVED_KINDS = frozenset((EntryKind.NOOP, EntryKind.MEMBERSHIP))
_FROM_LEADER = frozenset((AppendEntries, Heartbeat, InstallSnapshot))


class RandomSource(Protocol):
    """What the node needs from ``random.Random``: a uniform integer in ``range(n)``."""

    def randrange(self, stop: int, /) -> int:
        """A uniform integer in ``[0, stop)``."""
        ...


class RaftNode:
    """One member of one Raft group (see the module docstring for how to drive it)."""

    def __init__(self, config: Config, storage: LogStorage,
                 rng: RandomSource | Callable[[int], int]) -> None:
        """Start (or restart) a node from what ``storage`` holds.

        Args:
            config: this node's settings.
            storage: its durable log and hard state (read-only port).
            rng: the source of election jitter: a ``random.Random`` (its
                ``randrange`` is used) or a callable ``f(n)`` returning an
                integer in ``[0, n)``.
        """
        self._config = config
        self._id = config.node_id
        self._group = config.group_id
        self._bugs = config.injected_bugs
        randrange = getattr(rng, "randrange", None)
        self._randbelow: Callable[[int], int] = randrange if callable(randrange) else rng  # type: ignore[assignment]

        log = RaftLog(storage, config.max_committed_bytes)
        hard = storage.initial_state()
        snapshot = storage.snapshot()
        if snapshot.index < storage.first_index() - 1:
            raise RaftInvariantError(f"storage compacted up to {storage.first_index() - 1} but its "
                                     f"snapshot covers only {snapshot.index}")
        self._log = log
        self._term = hard.term
        self._vote = None if InjectedBug.FORGET_VOTE_ON_RESTART in self._bugs else hard.vote
        log.applied = snapshot.index
        log.committed = snapshot.index
        log.commit_to(hard.commit)
        self._prev_hard = hard

        self._membership = Membership()
        self._voters: tuple[str, ...] = ()
        self._members: tuple[str, ...] = ()
        self._store_membership(snapshot.membership)
        self._membership_scanned_to = 0
        self._unapplied_membership_at = 0

        self._role = Role.FOLLOWER
        self._leader: str | None = None
        self._handlers: dict[type, Callable[[Any], None]] = {}
        self._ticks = 0
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = config.election_ticks
        # With lease reads, a restarted node may have forgotten a lease it
        # granted: it stays out of elections for one election timeout. (A node
        # that never saw a term granted nothing.)
        lease_mode = config.read_only == ReadOnlyMode.LEASE
        self._lease_guard = config.election_ticks if lease_mode and hard.term > 0 else 0

        self._votes: dict[str, bool] = {}
        self._progress: dict[str, Progress] = {}
        self._transferee: str | None = None
        self._lease_revoked = False
        self._pending_conf_index = 0
        self._read_only = ReadIndexTracker()
        self._waiting_reads: list[tuple[bytes, str]] = []
        self._bcast_pending = False
        self._read_round_pending = False

        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._snapshot_request = False
        self._prev_soft = SoftState(Role.FOLLOWER, None)
        self._outstanding: Ready | None = None
        self._become_follower(self._term, None)

    # ------------------------------------------------------------------
    # Read-only views.

    @property
    def node_id(self) -> str:
        """This node's id."""
        return self._id

    @property
    def term(self) -> int:
        """The current term."""
        return self._term

    @property
    def role(self) -> Role:
        """The role in the current term."""
        return self._role

    @property
    def leader_id(self) -> str | None:
        """The leader this node knows of in the current term (itself when leading)."""
        return self._leader

    @property
    def commit_index(self) -> int:
        """The highest index known committed."""
        return self._log.committed

    @property
    def applied_index(self) -> int:
        """The highest index the caller has applied (acknowledged through ``advance()``)."""
        return self._log.applied

    @property
    def last_index(self) -> int:
        """The index of the last entry in the log."""
        return self._log.last_index()

    @property
    def membership(self) -> Membership:
        """The membership in force: the latest one applied (snapshot it with the application)."""
        return self._membership

    @property
    def membership_pending(self) -> bool:
        """Whether a membership change (or a new leader's first entry) is not applied yet.

        Another change is refused meanwhile (:meth:`propose_membership_change`).
        """
        return self._pending_conf_index > self._log.applied

    @property
    def transferee(self) -> str | None:
        """The member this leader hands leadership to (None: no transfer in progress)."""
        return self._transferee

    def status(self) -> Status:
        """A summary of the node for status pages."""
        progress = {
            member: FollowerStatus(pr.state.name, pr.match, pr.next, pr.recent_active, pr.is_paused())
            for member, pr in self._progress.items()
        }
        return Status(self._id, self._group, self._term, self._vote, self._role, self._leader,
                      self._log.committed, self._log.applied, self._log.first_index(),
                      self._log.last_index(), self._membership, progress, self._transferee)

    # ------------------------------------------------------------------
    # Inputs.

    def tick(self) -> None:
        """Advance logical time by one tick (heartbeats, election timeouts, leases)."""
        self._ticks += 1
        if self._lease_guard:
            self._lease_guard -= 1
        if self._role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def campaign(self) -> None:
        """Start an election now, with a pre-vote first when configured.

        For bootstrap and tests; elections otherwise start on their own when
        a follower stops hearing from a leader. Ignored by a leader, by a
        node that is not a voter, and with lease reads while the node still
        honours a leader's lease.
        """
        if self._config.read_only == ReadOnlyMode.LEASE and self._in_lease():
            return
        self._hup(transfer=False)

    def step(self, message: Message) -> None:
        """Process a message from a peer.

        Raises:
            ValueError: the message is for another group or node.
        """
        m = message
        if m.group_id != self._group or m.recipient != self._id:
            raise ValueError(f"message for {m.recipient} in group {m.group_id} stepped into "
                             f"{self._id} in group {self._group}")
        if m.term > self._term:
            if isinstance(m, VoteRequest):
                if not m.transfer and self._in_lease():
                    # A leader was heard from recently: do not let a campaign disrupt it.
                    return
                if not m.pre_vote:
                    self._become_follower(m.term, None)
            elif isinstance(m, VoteResponse) and m.pre_vote and m.granted:
                pass  # granted pre-votes carry the term we would campaign in
            elif type(m) in _FROM_LEADER:
                self._become_follower(m.term, m.sender)
            else:
                self._become_follower(m.term, None)
        elif m.term < self._term:
            self._answer_stale(m)
            return
        handler = self._handlers.get(type(m))
        if handler is not None:
            handler(m)

    def propose(self, data: Payload, kind: EntryKind = EntryKind.EVENTS) -> int:
        """Append one entry of application data; returns its index.

        The entry has the current term (:attr:`term`): it is committed when a
        committed entry at that index has that term.

        Raises:
            NotLeaderError: not the leader, or a leadership transfer is in
                progress (forward to ``leader_hint``).
            ValueError: ``kind`` is NOOP or MEMBERSHIP (the core's own).
        """
        self._check_can_propose()
        if kind in _RESERVED_KINDS:
            raise ValueError(f"{kind.name} entries are written by the core itself")
        index = self._log.last_index() + 1
        self._append_entries([Entry(index, self._term, kind, data)])
        return index

    def propose_many(self, items: Sequence[tuple[EntryKind, Payload]]) -> range:
        """Append many entries of application data at once; returns their indexes.

        Same contract as :meth:`propose`; all or nothing.
        """
        self._check_can_propose()
        for kind, _ in items:
            if kind in _RESERVED_KINDS:
                raise ValueError("NOOP and MEMBERSHIP entries are written by the core itself")
        first = self._log.last_index() + 1
        if items:
            term = self._term
            self._append_entries([Entry(index, term, kind, data)
                                  for index, (kind, data) in enumerate(items, first)])
        return range(first, first + len(items))

    def propose_membership_change(self, change: MembershipChange) -> int:
        """Propose one single-server membership change; returns the entry's index.

        It takes effect on each node when applied. Only one change may be
        pending at a time, and a new leader waits until it has applied the
        entries of earlier terms.

        Raises:
            NotLeaderError: as for :meth:`propose`.
            MembershipError: the change does not fit the membership, or an
                earlier change is not applied yet.
        """
        self._check_can_propose()
        if self._pending_conf_index > self._log.applied:
            raise MembershipError(f"a membership change is pending until entry "
                                  f"{self._pending_conf_index} is applied")
        result = apply_change(self._membership, change)
        index = self._log.last_index() + 1
        self._append_entries([Entry(index, self._term, EntryKind.MEMBERSHIP,
                                    encode_membership_entry(change, result))])
        self._pending_conf_index = index
        return index

    def transfer_leadership(self, to: str | None = None) -> None:
        """Hand leadership to voter ``to`` (default: the most up-to-date other voter).

        A lagging target is caught up first; then it gets TimeoutNow and
        campaigns at once. Proposals are refused meanwhile. The transfer is
        abandoned after an election timeout.

        Raises:
            NotLeaderError: this node is not the leader.
            ValueError: ``to`` is not another voter, or there is none.
        """
        if self._role is not Role.LEADER:
            raise NotLeaderError(self._leader)
        if to is None:
            others = [voter for voter in self._voters if voter != self._id]
            if not others:
                raise ValueError("no other voter to transfer leadership to")
            to = max(others, key=lambda voter: self._progress[voter].match)
        if to == self._id or to not in self._membership.voters:
            raise ValueError(f"cannot transfer leadership to {to}: not another voter")
        if self._transferee == to:
            return
        self._transferee = to
        self._election_elapsed = 0  # the transfer must finish within an election timeout
        if self._progress[to].match == self._log.last_index():
            self._send_timeout_now(to)
        else:
            self._send_append(to, allow_empty=True)

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read tagged ``context`` (unique, non-empty).

        The answer comes as a ``ReadState`` in a later Ready: serve the read
        once that entry is applied. Requests are lost when leadership
        changes; retry after a timeout.

        Raises:
            ValueError: ``context`` is empty.
            NotLeaderError: no leader is known to forward the request to.
        """
        if not context:
            raise ValueError("a read needs a non-empty context")
        if self._role is Role.LEADER:
            self._leader_read(context, self._id)
        elif self._leader is None:
            raise NotLeaderError(None, "no leader known for a read")
        else:
            self._send(ReadIndexRequest(self._group, self._id, self._leader, self._term, context))

    def report_unreachable(self, node_id: str) -> None:
        """The caller could not send to ``node_id``: probe it again from what it acknowledged."""
        pr = self._progress.get(node_id) if self._role is Role.LEADER else None
        if pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def report_snapshot(self, node_id: str, ok: bool) -> None:
        """Sending a snapshot to ``node_id`` finished (``ok``) or failed; resume after a heartbeat."""
        pr = self._progress.get(node_id) if self._role is Role.LEADER else None
        if pr is None or pr.state is not ProgressState.SNAPSHOT:
            return
        if not ok:
            pr.pending_snapshot = 0
        pr.become_probe()
        pr.probe_sent = True

    # ------------------------------------------------------------------
    # Output.

    def has_ready(self) -> bool:
        """Whether :meth:`ready` has anything to do."""
        if self._bcast_pending or self._read_round_pending:
            self._flush()
        if self._msgs or self._read_states or self._snapshot_request:
            return True
        log = self._log
        prev_hard, prev_soft = self._prev_hard, self._prev_soft
        return (log.has_unstable() or log.pending_snapshot is not None or log.has_next_committed()
                or prev_hard.commit != log.committed or prev_hard.term != self._term
                or prev_hard.vote != self._vote or prev_soft.role is not self._role
                or prev_soft.leader != self._leader)

    def ready(self) -> Ready:
        """What the caller must do now; acknowledge it with :meth:`advance`.

        Raises:
            RuntimeError: the previous Ready was not acknowledged.
        """
        if self._outstanding is not None:
            raise RuntimeError("ready() called again before advance()")
        self._flush()
        log = self._log
        # Each is the previous object itself when nothing changed (else a new, different one).
        hard = self._hard_state()
        prev = self._prev_hard
        hard_out = hard if hard is not prev else None
        soft = self._soft_state()
        soft_out = soft if soft is not self._prev_soft else None
        snapshot = log.pending_snapshot
        entries = log.unstable_entries()
        must_sync = bool(entries) or snapshot is not None or (
            hard_out is not None and (hard.term != prev.term or hard.vote != prev.vote))
        ready = Ready(hard_out, soft_out, snapshot, entries, must_sync, self._msgs,
                      log.next_committed(), self._read_states, self._snapshot_request)
        self._msgs = []
        self._read_states = []
        self._snapshot_request = False
        self._prev_hard = hard
        self._prev_soft = soft
        self._outstanding = ready
        return ready

    def advance(self) -> None:
        """The caller persisted, sent and applied the last Ready.

        Raises:
            RuntimeError: there is no Ready to acknowledge.
        """
        ready = self._outstanding
        if ready is None:
            raise RuntimeError("advance() without a Ready")
        self._outstanding = None
        log = self._log
        if ready.snapshot is not None:
            log.stable_snapshot(ready.snapshot)
        if ready.entries:
            last = ready.entries[-1]
            log.stable_to(last.index, last.term)
        committed = ready.committed_entries
        if committed:
            log.applied_to(committed[-1].index)
            if EntryKind.MEMBERSHIP in map(_KIND, committed):
                for entry in committed:
                    if entry.kind is EntryKind.MEMBERSHIP:
                        self._set_membership(decode_membership_entry(entry.data)[1])

    # ------------------------------------------------------------------
    # Roles and elections.

    def _hard_state(self) -> HardState:
        prev = self._prev_hard
        if prev.term == self._term and prev.vote == self._vote and prev.commit == self._log.committed:
            return prev
        return HardState(self._term, self._vote, self._log.committed)

    def _soft_state(self) -> SoftState:
        prev = self._prev_soft
        if prev.role is self._role and prev.leader == self._leader:
            return prev
        return SoftState(self._role, self._leader)

    def _promotable(self) -> bool:
        return self._id in self._membership.voters

    def _in_lease(self) -> bool:
        """Whether this node still honours a leader it heard from less than an election timeout ago."""
        if self._lease_guard:
            return True
        return (self._config.check_quorum and self._leader is not None
                and self._election_elapsed < self._config.election_ticks)

    def _reset(self, term: int) -> None:
        if term != self._term:
            self._term = term
            self._vote = None
        self._leader = None
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        election = self._config.election_ticks
        self._randomized_timeout = election + self._randbelow(election)
        self._transferee = None
        self._lease_revoked = False
        self._votes = {}
        self._progress = {}
        self._read_only.clear()
        self._waiting_reads = []
        self._pending_conf_index = 0
        self._bcast_pending = False
        self._read_round_pending = False

    def _become_follower(self, term: int, leader: str | None) -> None:
        self._reset(term)
        self._role = Role.FOLLOWER
        self._leader = leader
        self._handlers = {
            AppendEntries: self._on_append,
            Heartbeat: self._on_heartbeat,
            InstallSnapshot: self._on_snapshot,
            TimeoutNow: self._on_timeout_now,
            ReadIndexResponse: self._on_read_index_response,
            VoteRequest: self._on_vote_request,
        }

    def _become_candidate(self, pre_vote: bool) -> None:
        if pre_vote:
            # Neither the term nor the vote changes before a real campaign.
            self._role = Role.PRE_CANDIDATE
            self._leader = None
            self._votes = {}
        else:
            self._reset(self._term + 1)
            self._vote = self._id
            self._role = Role.CANDIDATE
        handler = self._on_message_as_candidate
        self._handlers = {
            AppendEntries: handler,
            Heartbeat: handler,
            InstallSnapshot: handler,
            VoteResponse: self._on_vote_response,
            VoteRequest: self._on_vote_request,
        }

    def _become_leader(self) -> None:
        self._reset(self._term)
        self._role = Role.LEADER
        self._leader = self._id
        self._handlers = {
            AppendResponse: self._on_append_response,
            HeartbeatResponse: self._on_heartbeat_response,
            ReadIndexRequest: self._on_read_index_request,
            VoteRequest: self._on_vote_request,
        }
        last = self._log.last_index()
        for member in self._members:
            self._progress[member] = self._new_progress(last + 1)
        own = self._progress[self._id]
        own.acknowledged(last)
        own.become_replicate()
        own.recent_active = True
        # A leader cannot know which entries of earlier terms are committed
        # until it commits one of its own term: the NOOP.
        self._append_entries([Entry(last + 1, self._term, EntryKind.NOOP, b"")])
        self._pending_conf_index = last + 1

    def _new_progress(self, next_index: int) -> Progress:
        config = self._config
        return Progress(next_index, Inflights(config.max_inflight_msgs, config.max_inflight_bytes))

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._election_elapsed >= self._randomized_timeout and self._promotable():
            self._election_elapsed = 0
            self._hup(transfer=False)

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self._config.election_ticks:
            self._election_elapsed = 0
            if self._config.check_quorum and not self._quorum_recently_active():
                self._become_follower(self._term, None)
                return
            self._transferee = None  # a transfer that took an election timeout failed
        if self._heartbeat_elapsed >= self._config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _quorum_recently_active(self) -> bool:
        active = {self._id}
        for member, pr in self._progress.items():
            if pr.recent_active:
                active.add(member)
            if member != self._id:
                pr.recent_active = False
        return has_quorum(self._voters, active)

    def _hup(self, transfer: bool) -> None:
        if self._role is Role.LEADER or not self._promotable() or self._has_unapplied_membership():
            return
        self._campaign(pre_vote=self._config.pre_vote and not transfer, transfer=transfer)

    def _has_unapplied_membership(self) -> bool:
        """Whether a committed membership entry is not applied yet (then the voters may be stale)."""
        log = self._log
        floor = log.apply_floor()
        if self._unapplied_membership_at > floor:
            return True
        index = max(floor, self._membership_scanned_to) + 1
        while index <= log.committed:
            chunk = log.entries(index, self._config.max_committed_bytes, log.committed + 1)
            for entry in chunk:
                if entry.kind is EntryKind.MEMBERSHIP:
                    self._unapplied_membership_at = self._membership_scanned_to = entry.index
                    return True
            index = chunk[-1].index + 1
            self._membership_scanned_to = chunk[-1].index
        return False

    def _campaign(self, pre_vote: bool, transfer: bool) -> None:
        self._become_candidate(pre_vote)
        term = self._term + 1 if pre_vote else self._term
        self._votes = {self._id: True}
        if vote_result(self._voters, self._votes) is VoteResult.WON:
            if pre_vote:
                self._campaign(pre_vote=False, transfer=False)
            else:
                self._become_leader()
            return
        last_index, last_term = self._log.last_index(), self._log.last_term()
        for voter in self._voters:
            if voter != self._id:
                self._send(VoteRequest(self._group, self._id, voter, term, last_index, last_term,
                                       pre_vote, transfer))

    def _on_vote_request(self, m: VoteRequest) -> None:
        can_vote = (self._vote == m.sender
                    or (self._vote is None and self._leader is None)
                    or (m.pre_vote and m.term > self._term))
        if can_vote and (InjectedBug.VOTE_WITHOUT_LOG_CHECK in self._bugs
                         or self._log.is_up_to_date(m.last_index, m.last_term)):
            # Answer with the request's term: for a pre-vote it is ahead of ours.
            self._send(VoteResponse(self._group, self._id, m.sender, m.term, True, m.pre_vote))
            if not m.pre_vote:
                self._election_elapsed = 0
                self._vote = m.sender
        else:
            self._send(VoteResponse(self._group, self._id, m.sender, self._term, False, m.pre_vote))

    def _on_vote_response(self, m: VoteResponse) -> None:
        pre_vote = self._role is Role.PRE_CANDIDATE
        if m.pre_vote != pre_vote or (m.granted and m.term != (self._term + 1 if pre_vote else self._term)):
            return  # an answer to an earlier campaign
        self._votes.setdefault(m.sender, m.granted)
        result = vote_result(self._voters, self._votes)
        if result is VoteResult.WON:
            if pre_vote:
                self._campaign(pre_vote=False, transfer=False)
            else:
                self._become_leader()
        elif result is VoteResult.LOST:
            self._become_follower(self._term, None)

    def _on_message_as_candidate(self, m: Message) -> None:
        # A leader of our term exists: follow it.
        self._become_follower(self._term, m.sender)
        self._handlers[type(m)](m)

    def _answer_stale(self, m: Message) -> None:
        """Answer a message from an older term when that helps its sender catch up."""
        if isinstance(m, (AppendEntries, Heartbeat)) and (self._config.check_quorum or self._config.pre_vote):
            # Its sender thinks it leads an old term. We may have raised our
            # term while partitioned, and with check-quorum or pre-vote no vote
            # request would teach it the new term: this answer does.
            self._send(AppendResponse(self._group, self._id, m.sender, self._term, 0))
        elif isinstance(m, VoteRequest) and m.pre_vote:
            self._send(VoteResponse(self._group, self._id, m.sender, self._term, False, True))

    # ------------------------------------------------------------------
    # Follower side of replication.

    def _on_append(self, m: AppendEntries) -> None:
        self._election_elapsed = 0
        self._leader = m.sender
        log = self._log
        if m.index < log.committed:
            self._send(AppendResponse(self._group, self._id, m.sender, self._term, log.committed))
            return
        last_new = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._send(AppendResponse(self._group, self._id, m.sender, self._term, last_new))
            return
        hint, hint_term = log.find_conflict_by_term(min(m.index, log.last_index()), m.log_term)
        self._send(AppendResponse(self._group, self._id, m.sender, self._term, m.index,
                                  True, hint, hint_term))

    def _on_heartbeat(self, m: Heartbeat) -> None:
        self._election_elapsed = 0
        self._leader = m.sender
        self._log.commit_to(min(m.commit, self._log.last_index()))
        self._send(HeartbeatResponse(self._group, self._id, m.sender, self._term, m.context, m.sent_at))

    def _on_snapshot(self, m: InstallSnapshot) -> None:
        self._election_elapsed = 0
        self._leader = m.sender
        log = self._log
        index = log.last_index() if self._restore(m.snapshot) else log.committed
        self._send(AppendResponse(self._group, self._id, m.sender, self._term, index))

    def _restore(self, snapshot: Snapshot) -> bool:
        """Install ``snapshot`` unless the log already covers it; True when installed."""
        log = self._log
        if snapshot.index <= log.committed:
            return False
        if log.matches(snapshot.index, snapshot.term):
            log.commit_to(snapshot.index)  # we hold that entry: only the commit was news
            return False
        log.restore(snapshot)
        self._set_membership(snapshot.membership)
        return True

    def _on_timeout_now(self, m: TimeoutNow) -> None:
        self._hup(transfer=True)

    def _on_read_index_response(self, m: ReadIndexResponse) -> None:
        self._read_states.append(ReadState(m.index, m.context))

    # ------------------------------------------------------------------
    # Leader side of replication.

    def _check_can_propose(self) -> None:
        if self._role is not Role.LEADER:
            raise NotLeaderError(self._leader)
        if self._transferee is not None:
            raise NotLeaderError(self._transferee, "leadership transfer in progress")

    def _append_entries(self, entries: list[Entry]) -> None:
        self._log.append(entries)
        self._progress[self._id].acknowledged(entries[-1].index)
        self._maybe_commit()
        self._bcast_pending = True

    def _acked(self, voter: str) -> int:
        pr = self._progress.get(voter)
        return pr.match if pr is not None else 0

    def _maybe_commit(self) -> bool:
        """Commit what a majority stores, if it is from this term; True when the commit index moved."""
        log = self._log
        index = committed_index(self._voters, self._acked)
        if index <= log.committed:
            return False
        # Counting replicas commits only entries of the leader's own term
        # (earlier ones follow): Figure 8 of the paper shows why.
        if log.term(index) != self._term and InjectedBug.COMMIT_OLD_TERM_BY_COUNTING not in self._bugs:
            return False
        log.commit_to(index)
        self._bcast_pending = True
        if self._waiting_reads and self._committed_in_term():
            waiting, self._waiting_reads = self._waiting_reads, []
            for context, requester in waiting:
                self._leader_read(context, requester)
        return True

    def _committed_in_term(self) -> bool:
        return self._log.term_or_zero(self._log.committed) == self._term

    def _flush(self) -> None:
        """Send what inputs since the last Ready made due (appends once per follower, not per input)."""
        if self._role is not Role.LEADER:
            return
        if self._bcast_pending:
            self._bcast_pending = False
            for member in self._members:
                if member != self._id and self._send_append(member, allow_empty=True):
                    self._send_entries(member)
        if self._read_round_pending:
            self._read_round_pending = False
            self._broadcast_heartbeat()

    def _send_append(self, to: str, allow_empty: bool) -> bool:
        """Send ``to`` the entries it needs next (or a snapshot); False when nothing was sent."""
        pr = self._progress[to]
        if pr.is_paused():
            return False
        log = self._log
        prev = pr.next - 1
        try:
            prev_term = log.term(prev)
            entries = log.entries(pr.next, self._config.max_msg_bytes)
        except CompactedError:
            return self._send_snapshot(to, pr)
        if not entries and not allow_empty:
            return False
        if entries:
            size = entries_size(entries) if self._config.max_inflight_bytes else 0
            pr.sent(entries[-1].index, size, len(entries))
        else:
            pr.sent(prev, 0, 0)
        self._send(AppendEntries(self._group, self._id, to, self._term, prev, prev_term, entries,
                                 log.committed))
        return True

    def _send_entries(self, to: str) -> None:
        """Send ``to`` every entry it lacks that the flow control lets through."""
        while self._send_append(to, allow_empty=False):
            pass

    def _send_snapshot(self, to: str, pr: Progress) -> bool:
        if not pr.recent_active:
            return False  # wait until it answers: it may be down
        try:
            snapshot = self._log.pending_snapshot or self._log.storage.snapshot()
        except UnavailableError:
            self._snapshot_request = True
            return False
        if snapshot.index < self._log.first_index() - 1:
            raise RaftInvariantError(f"storage compacted up to {self._log.first_index() - 1} "
                                     f"but its snapshot covers only {snapshot.index}")
        pr.become_snapshot(snapshot.index, self._ticks)
        self._send(InstallSnapshot(self._group, self._id, to, self._term, snapshot))
        return True

    def _on_append_response(self, m: AppendResponse) -> None:
        pr = self._progress.get(m.sender)
        if pr is None:
            return
        pr.recent_active = True
        if m.reject:
            hint = m.reject_hint
            if m.log_term > 0:
                # Skip every entry of ours whose term the follower cannot hold there.
                hint = self._log.find_conflict_by_term(hint, m.log_term)[0]
            if pr.rejected(m.index, hint + 1):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._send_append(m.sender, allow_empty=True)
            return
        if not pr.acknowledged(m.index):
            return
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT:
            if pr.match + 1 >= self._log.first_index():
                pr.become_probe()
                pr.become_replicate()
        else:
            pr.inflights.free_to(m.index)
        if not self._maybe_commit() and not self._bcast_pending:
            # (Otherwise the next flush sends to every follower anyway.)
            self._send_entries(m.sender)
        if m.sender == self._transferee and pr.match == self._log.last_index():
            self._send_timeout_now(m.sender)

    def _broadcast_heartbeat(self) -> None:
        context = self._read_only.last_context()
        commit, ticks = self._log.committed, self._ticks
        for member in self._members:
            if member != self._id:
                pr = self._progress[member]
                self._send(Heartbeat(self._group, self._id, member, self._term,
                                     min(pr.match, commit), context, ticks))

    def _on_heartbeat_response(self, m: HeartbeatResponse) -> None:
        pr = self._progress.get(m.sender)
        if pr is None:
            return
        pr.recent_active = True
        pr.probe_sent = False
        if m.sent_at > pr.lease_ack:
            pr.lease_ack = m.sent_at
        if pr.state is ProgressState.REPLICATE and pr.inflights.full():
            pr.inflights.free_first()  # an append was probably lost: let one more through
        elif (pr.state is ProgressState.SNAPSHOT
              and self._ticks - pr.snapshot_tick >= self._config.election_ticks):
            pr.become_probe()  # alive but silent about the snapshot: its answer was lost
        if pr.match < self._log.last_index():
            self._send_append(m.sender, allow_empty=True)
        if m.context:
            acks = self._read_only.ack(m.context, m.sender)
            if acks is not None and has_quorum(self._voters, acks):
                for request in self._read_only.release_through(m.context):
                    self._answer_read(request.index, request.context, request.requester)

    def _send_timeout_now(self, to: str) -> None:
        # The target campaigns without waiting for our lease to end, so no
        # lease read may be served again in this term.
        self._lease_revoked = True
        self._send(TimeoutNow(self._group, self._id, to, self._term))

    # ------------------------------------------------------------------
    # Reads.

    def _on_read_index_request(self, m: ReadIndexRequest) -> None:
        self._leader_read(m.context, m.sender)

    def _leader_read(self, context: bytes, requester: str) -> None:
        if self._voters == (self._id,):
            self._answer_read(self._log.committed, context, requester)
        elif not self._committed_in_term():
            # Our commit index may lag what earlier leaders committed until
            # our NOOP commits: hold the read until then.
            self._waiting_reads.append((context, requester))
        elif self._config.read_only == ReadOnlyMode.LEASE and self._lease_valid():
            self._answer_read(self._log.committed, context, requester)
        elif self._read_only.add(self._log.committed, context, requester):
            self._read_only.ack(context, self._id)
            self._read_round_pending = True

    def _lease_valid(self) -> bool:
        """Whether no other leader can have been elected yet (see ``ReadOnlyMode.LEASE``)."""
        if self._lease_revoked or self._transferee is not None:
            return False
        own = self._ticks

        def acked_at(voter: str) -> int:
            if voter == self._id:
                return own
            pr = self._progress.get(voter)
            return pr.lease_ack if pr is not None else -1

        # A majority heard from us at tick `since` and will not vote before
        # `since + election_ticks`; keep one tick of margin for tick skew.
        since = committed_index(self._voters, acked_at)
        return since >= 0 and own + 1 < since + self._config.election_ticks

    def _answer_read(self, index: int, context: bytes, requester: str) -> None:
        if requester == self._id:
            self._read_states.append(ReadState(index, context))
        else:
            self._send(ReadIndexResponse(self._group, self._id, requester, self._term, index, context))

    # ------------------------------------------------------------------
    # Membership.

    def _store_membership(self, membership: Membership) -> None:
        self._membership = membership
        self._voters = tuple(sorted(membership.voters))
        self._members = tuple(membership.members())

    def _set_membership(self, membership: Membership) -> None:
        self._store_membership(membership)
        if self._role is Role.LEADER:
            self._leader_membership_changed()
        elif self._role is not Role.FOLLOWER and not self._promotable():
            self._become_follower(self._term, None)

    def _leader_membership_changed(self) -> None:
        progress = self._progress
        next_index = self._log.last_index() + 1
        for member in self._members:
            if member not in progress:
                pr = progress[member] = self._new_progress(next_index)
                pr.recent_active = True  # new: give it an election timeout to answer
                self._bcast_pending = True
        for member in [m for m in progress if m not in self._membership]:
            del progress[member]
        if self._transferee is not None and self._transferee not in self._membership.voters:
            self._transferee = None
        if not self._promotable():
            self._step_down_removed()
            return
        self._maybe_commit()  # a smaller majority may commit more

    def _step_down_removed(self) -> None:
        """This leader's own removal is applied: hand over to the best voter and follow."""
        last = self._log.last_index()
        caught_up = [voter for voter in self._voters if self._progress[voter].match == last]
        if caught_up:
            self._send_timeout_now(caught_up[0])
        self._become_follower(self._term, None)

    # ------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        self._msgs.append(message)
