"""A deterministic simulation of Raft groups on a faulty network, checking safety after every step.

Each run is a pure function of its seed: 3 or 5 voters (plus spare nodes
for membership changes) on a simulated network that drops, delays,
duplicates and reorders messages, is partitioned and healed, while nodes
crash (also in the middle of handling a Ready, losing what the Ready
contract says was not yet persisted) and restart, membership changes,
leadership transfers, snapshots and reads come and go under a steady stream
of proposals. A final phase heals the network (no more drops, duplicates or
delays), restarts every node and demands progress; then it crashes a
minority of the voters and demands progress from the majority left.

Checked after every step (delivery, tick, Ready):

- election safety: at most one leader per term;
- log matching: an (index, term) pair names one entry and one predecessor term;
- leader completeness: a new leader holds every entry committed in earlier terms;
- state-machine safety: no two nodes apply different entries (or snapshots) at an index;
- linearizable reads: a read index covers every write acknowledged before the read;
- progress, at the end: a majority that can talk elects a leader and
  commits within a bounded number of ticks, and every acknowledged entry
  is applied by every member that is up.

Replay one seed with a readable trace (``make sim SEED=42``)::

    python -m eventstream.server.testing.raft_sim --seed 42 --trace

Run many in parallel (``make sim SEEDS=100000 JOBS=2``)::

    python -m eventstream.server.testing.raft_sim --seeds 100000 --jobs 2
"""

from __future__ import annotations

import argparse
import heapq
import multiprocessing
import random
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from eventstream.server.raft import (
    Config,
    Entry,
    EntryKind,
    InjectedBug,
    Membership,
    MembershipChange,
    MembershipError,
    MembershipOp,
    MemoryStorage,
    Message,
    NotLeaderError,
    RaftNode,
    ReadOnlyMode,
    Ready,
    Role,
)
from eventstream.server.testing.raft_format import message_text, ready_lines

REPLAY = "make sim SEED={seed}{bug}"
"""The command that replays one seed with a trace (printed for every failing seed)."""


class Violation(Exception):
    """A checked property does not hold."""


@dataclass(frozen=True)
class Settings:
    """The shape of one run, drawn from its seed."""

    voters: int
    spares: int
    ticks: int
    election_ticks: int
    heartbeat_ticks: int
    pre_vote: bool
    check_quorum: bool
    read_only: ReadOnlyMode
    max_msg_bytes: int
    max_inflight: int
    drop: float
    duplicate: float
    delay: float
    max_delay: int
    partition: float
    crash: float
    leader_crash: float
    ready_crash: float
    pivot_crash: float
    restart: float
    propose: float
    change: float
    transfer: float
    snapshot: float
    read: float

    @classmethod
    def draw(cls, rng: random.Random) -> Settings:
        """Random settings of one of three kinds of run.

        Calm runs (a quarter) exercise the steady state, reads and leases;
        faulty runs (half) mix every fault at random rates; churn runs (a
        quarter) crash leaders at the worst moments (right after persisting
        the Ready that made them leader or moved their commit index), the
        kind of history in Figure 8 of the Raft paper.
        """
        kind = rng.choice(("calm", "faulty", "faulty", "churn"))
        check_quorum = rng.random() < 0.8
        settings = cls(
            voters=rng.choice((3, 3, 5)),
            spares=rng.choice((0, 1, 2)),
            ticks=rng.randrange(70, 140),
            election_ticks=10,
            heartbeat_ticks=rng.choice((1, 2, 3)),
            pre_vote=rng.random() < 0.75,
            check_quorum=check_quorum,
            read_only=ReadOnlyMode.LEASE if check_quorum and rng.random() < 0.4 else ReadOnlyMode.SAFE,
            max_msg_bytes=rng.choice((1, 64, 1 << 20)),
            max_inflight=rng.choice((1, 4, 256)),
            drop=rng.choice((0.0, 0.02, 0.1, 0.25)),
            duplicate=rng.choice((0.0, 0.02, 0.1)),
            delay=rng.choice((0.0, 0.1, 0.4)),
            max_delay=rng.choice((1, 3, 8)),
            partition=rng.choice((0.0, 0.02, 0.06)),
            crash=rng.choice((0.0, 0.01, 0.04)),
            leader_crash=rng.choice((0.0, 0.0, 0.03, 0.1)),
            ready_crash=rng.choice((0.0, 0.005, 0.03)),
            pivot_crash=rng.choice((0.0, 0.1, 0.3)),
            restart=rng.choice((0.05, 0.2)),
            propose=rng.choice((0.3, 0.8)),
            change=rng.choice((0.0, 0.02, 0.05)),
            transfer=rng.choice((0.0, 0.01, 0.03)),
            snapshot=rng.choice((0.0, 0.02, 0.1)),
            read=rng.choice((0.0, 0.1)),
        )
        if kind == "calm":
            return replace(settings, drop=rng.choice((0.0, 0.02)), partition=0.0, crash=0.0,
                           leader_crash=0.0, ready_crash=0.0, pivot_crash=0.0, read=0.2)
        if kind == "churn":
            # Five voters and one entry per append, as in the figure.
            return replace(settings, voters=5, leader_crash=rng.choice((0.03, 0.05)), pivot_crash=0.8,
                           partition=0.05, drop=0.1, crash=0.02, restart=0.3, propose=0.8,
                           max_msg_bytes=1)
        return settings


@dataclass
class SimNode:
    """A simulated server: durable storage, and while up, a core and an application."""

    node_id: str
    storage: MemoryStorage
    raft: RaftNode | None = None
    applied_index: int = 0
    """The application's state: the last entry applied and a digest of all applied so far."""
    digest: int = 0
    retired: bool = False
    """Removed from the membership: exempt from the end-of-run checks."""


@dataclass
class Checker:
    """Global records the invariants are checked against."""

    leaders: dict[int, str] = field(default_factory=dict)
    log_table: dict[tuple[int, int], tuple[Entry, int]] = field(default_factory=dict)
    applied: dict[int, Entry] = field(default_factory=dict)
    digests: dict[int, int] = field(default_factory=dict)
    commit_marks: dict[int, int] = field(default_factory=dict)
    """node term -> highest index some node applied while in that term."""
    acked: dict[int, Entry] = field(default_factory=dict)
    read_floors: dict[bytes, int] = field(default_factory=dict)

    def committed_before(self, term: int) -> int:
        """The highest index known committed in a term before ``term``."""
        return max((index for marked, index in self.commit_marks.items() if marked < term), default=0)


class Simulation:
    """One seeded run (see the module docstring)."""

    def __init__(self, seed: int, bugs: frozenset[InjectedBug] = frozenset(),
                 trace: Callable[[str], None] | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.settings = Settings.draw(self.rng)
        self.bugs = bugs
        self.trace = trace
        self.now = 0
        self.check = Checker()
        self.net: list[tuple[int, int, Message]] = []
        self.net_seq = 0
        self.groups: dict[str, int] = {}
        self.heal_at = 0
        self.calm = False
        ids = [f"n{k}" for k in range(1, self.settings.voters + 1)]
        self.spares = [f"n{k}" for k in range(self.settings.voters + 1,
                                              self.settings.voters + 1 + self.settings.spares)]
        membership = Membership(frozenset(ids))
        # What a server does with a Ready, in order (the bug switch sends and
        # applies before persisting).
        if InjectedBug.APPLY_BEFORE_PERSIST in bugs:
            self.stages = (self._install_stage, self._send_stage, self._apply_stage, self._persist_stage)
        else:
            self.stages = (self._install_stage, self._persist_stage, self._send_stage, self._apply_stage)
        self.nodes: dict[str, SimNode] = {}
        self._up_nodes: list[SimNode] | None = None
        self.down_since: dict[str, int] = {}
        self.pending: dict[tuple[str, int], bytes] = {}
        """(node, index) -> data of a proposal that node accepted, until it applies that index."""
        self.proposals = 0
        self.reads = 0
        self.max_acked = 0
        self.marker = b"final-%d" % seed
        self.marker_at: int | None = None
        for node_id in ids:
            self._start(SimNode(node_id, MemoryStorage(membership)))

    # ------------------------------------------------------------------
    # Running.

    def run(self) -> None:
        """Run the main phase and the final progress phase.

        Raises:
            Violation: a property does not hold.
        """
        for now in range(1, self.settings.ticks + 1):
            self.now = now
            self._faults()
            self._client()
            self._deliver_due()
            self._tick_all()
        self._final_phase()

    def _log(self, text: str) -> None:
        if self.trace is not None:
            self.trace(f"[{self.now:4}] {text}")

    def _config(self, node_id: str) -> Config:
        s = self.settings
        return Config(node_id, group_id=self.seed % 3, election_ticks=s.election_ticks,
                      heartbeat_ticks=s.heartbeat_ticks,
                      pre_vote=s.pre_vote, check_quorum=s.check_quorum, read_only=s.read_only,
                      max_msg_bytes=s.max_msg_bytes, max_inflight_msgs=s.max_inflight,
                      injected_bugs=self.bugs)

    def _start(self, node: SimNode) -> None:
        self.nodes[node.node_id] = node
        self._up_nodes = None
        node.raft = RaftNode(self._config(node.node_id), node.storage, random.Random(self.rng.random()))
        snapshot = node.storage.snapshot()
        node.applied_index, node.digest = _decode_app(snapshot.data)
        self._check_snapshot_state(node, snapshot.index)
        self._handle_ready(node)

    def _up(self) -> list[SimNode]:
        if self._up_nodes is None:
            self._up_nodes = [node for node in self.nodes.values() if node.raft is not None]
        return self._up_nodes

    def _leader(self) -> SimNode | None:
        leaders = [node for node in self._up() if node.raft.role is Role.LEADER]  # type: ignore[union-attr]
        return max(leaders, key=lambda node: node.raft.term) if leaders else None  # type: ignore[union-attr]

    # ------------------------------------------------------------------
    # Faults and clients.

    def _faults(self) -> None:
        s, rng = self.settings, self.rng
        if self.calm:
            return
        if self.groups and self.now >= self.heal_at:
            self.groups = {}
            self._log("heal")
        elif not self.groups and rng.random() < s.partition:
            ids = sorted(self.nodes)
            rng.shuffle(ids)
            cut = rng.randrange(1, len(ids))
            self.groups = {node_id: 0 if k < cut else 1 for k, node_id in enumerate(ids)}
            self.heal_at = self.now + rng.randrange(5, 40)
            self._log(f"partition {sorted(ids[:cut])} / {sorted(ids[cut:])} until {self.heal_at}")
        up = self._up()
        if up and rng.random() < s.crash:
            self._crash(rng.choice(up))
        leader = self._leader()
        if leader is not None and rng.random() < s.leader_crash:
            self._crash(leader)
        for node_id in sorted(self.down_since):
            if rng.random() < s.restart:
                self._restart(node_id)
        if rng.random() < s.change:
            self._change_membership()
        if rng.random() < s.transfer:
            leader = self._leader()
            if leader is not None:
                try:
                    leader.raft.transfer_leadership()  # type: ignore[union-attr]
                    self._log(f"{leader.node_id} transfers leadership")
                except (NotLeaderError, ValueError):
                    pass
        up = self._up()
        if up and rng.random() < s.snapshot:
            self._snapshot(rng.choice(up))

    def _crash(self, node: SimNode) -> None:
        node.raft = None
        self._up_nodes = None
        self.down_since[node.node_id] = self.now
        self._log(f"{node.node_id} crashes")

    def _restart(self, node_id: str) -> None:
        del self.down_since[node_id]
        self._log(f"{node_id} restarts")
        self._start(self.nodes[node_id])

    def _snapshot(self, node: SimNode) -> None:
        raft = node.raft
        assert raft is not None
        index = node.applied_index
        if index <= node.storage.snapshot().index or index > node.storage.last_index():
            return
        node.storage.create_snapshot(index, raft.membership, _encode_app(index, node.digest))
        keep = self.rng.choice((0, 2, 10))
        node.storage.compact(max(node.storage.first_index() - 1, index - keep))
        self._log(f"{node.node_id} snapshots at {index}, log from {node.storage.first_index()}")

    def _change_membership(self) -> None:
        leader = self._leader()
        if leader is None:
            return
        raft = leader.raft
        assert raft is not None
        membership = raft.membership
        options: list[MembershipChange] = []
        if self.spares:
            options.append(MembershipChange(MembershipOp.ADD_LEARNER, self.spares[0]))
            options.append(MembershipChange(MembershipOp.ADD_VOTER, self.spares[0]))
        options += [MembershipChange(MembershipOp.PROMOTE_LEARNER, node)
                    for node in sorted(membership.learners)]
        if len(membership.voters) > 2:
            options += [MembershipChange(MembershipOp.REMOVE_NODE, node)
                        for node in sorted(membership.voters)]
        options += [MembershipChange(MembershipOp.REMOVE_NODE, node)
                    for node in sorted(membership.learners)]
        if not options:
            return
        change = self.rng.choice(options)
        try:
            raft.propose_membership_change(change)
        except (NotLeaderError, MembershipError):
            return
        self._log(f"{leader.node_id} proposes {change.describe()}")
        if change.node_id in self.spares:
            self.spares.remove(change.node_id)
            self._start(SimNode(change.node_id, MemoryStorage()))
        self._handle_ready(leader)

    def _client(self) -> None:
        rng = self.rng
        up = self._up()
        if not up:
            return
        if rng.random() < self.settings.propose:
            self._propose(rng.choice(up), [b"c%d" % (self.proposals + k) for k in range(rng.randrange(1, 4))])
        up = self._up()
        if up and rng.random() < self.settings.read:
            node = rng.choice(up)
            context = b"r%d" % self.reads
            self.reads += 1
            try:
                node.raft.read_index(context)  # type: ignore[union-attr]
            except NotLeaderError:
                return
            self.check.read_floors[context] = self.max_acked
            self._log(f"{node.node_id} read {context.decode()} "
                      f"(acked up to {self.check.read_floors[context]})")
            self._handle_ready(node)

    def _propose(self, node: SimNode, batch: list[bytes]) -> int | None:
        """Propose at ``node``, forwarding once to its leader hint like a server would."""
        for _ in range(2):
            raft = node.raft
            if raft is None:
                return None
            try:
                indexes = raft.propose_many([(EntryKind.EVENTS, data) for data in batch])
            except NotLeaderError as error:
                hint = self.nodes.get(error.leader_hint or "")
                if hint is None:
                    return None
                node = hint
                continue
            self.proposals += len(batch)
            for index, data in zip(indexes, batch):
                self.pending[(node.node_id, index)] = data
            self._log(f"{node.node_id} accepts {len(batch)} proposals at {indexes.start}..{indexes.stop - 1}")
            self._handle_ready(node)
            return indexes.stop - 1
        return None

    # ------------------------------------------------------------------
    # The network.

    def _send(self, message: Message) -> None:
        s, rng = self.settings, self.rng
        calm = self.calm
        if not calm and s.drop and rng.random() < s.drop:
            if self.trace is not None:
                self._log(f"lost {message_text(message)}")
            return
        copies = 2 if not calm and s.duplicate and rng.random() < s.duplicate else 1
        for _ in range(copies):
            delayed = not calm and s.delay and rng.random() < s.delay
            due = self.now + (rng.randrange(1, s.max_delay + 1) if delayed else 0)
            self.net_seq += 1
            heapq.heappush(self.net, (due, self.net_seq, message))

    def _deliver_due(self) -> None:
        for _ in range(20):  # rounds of zero-delay messages within one tick (the rest wait a tick)
            if not self.net or self.net[0][0] > self.now:
                return
            batch = []
            while self.net and self.net[0][0] <= self.now:
                batch.append(heapq.heappop(self.net)[2])
            self.rng.shuffle(batch)
            for message in batch:
                self._deliver(message)

    def _deliver(self, message: Message) -> None:
        node = self.nodes.get(message.recipient)
        if node is None or node.raft is None:
            return
        groups = self.groups
        if groups and groups.get(message.sender) != groups.get(message.recipient):
            return
        if self.trace is not None:
            self._log(f"deliver {message_text(message)}")
        node.raft.step(message)
        self._handle_ready(node)

    def _tick_all(self) -> None:
        for node in self._up():
            raft = node.raft
            if raft is not None:
                raft.tick()
                self._handle_ready(node)

    # ------------------------------------------------------------------
    # The shell: what a server does with a Ready, and the checks.

    def _handle_ready(self, node: SimNode) -> None:
        raft = node.raft
        while raft is not None and raft.has_ready():
            ready = raft.ready()
            if self.trace is not None:
                self._log(f"{node.node_id} Ready\n" + "\n".join(ready_lines(ready)))
            crash_before = -1
            if not self.calm:
                if self.settings.ready_crash and self.rng.random() < self.settings.ready_crash:
                    crash_before = self.rng.randrange(1, 4)  # after the install, between the other stages
                elif self._pivotal(raft, ready) and self.rng.random() < self.settings.pivot_crash:
                    crash_before = 2  # persisted, nothing sent
            for number, stage in enumerate(self.stages):
                if number == crash_before:
                    self._log(f"{node.node_id} crashes while handling a Ready")
                    self._crash(node)
                    return
                stage(node, ready)
            raft.advance()

    @staticmethod
    def _pivotal(raft: RaftNode, ready: Ready) -> bool:
        """A Ready where a crash hurts most: a new leader's first, or a leader's new commit."""
        return raft.role is Role.LEADER and (ready.soft_state is not None or ready.hard_state is not None)

    def _install_stage(self, node: SimNode, ready: Ready) -> None:
        if ready.snapshot is not None:
            node.storage.apply_snapshot(ready.snapshot)
            node.applied_index, node.digest = _decode_app(ready.snapshot.data)
            self._check_snapshot_state(node, ready.snapshot.index)

    def _persist_stage(self, node: SimNode, ready: Ready) -> None:
        storage, check = node.storage, self.check
        if ready.entries:
            first = ready.entries[0].index
            prev_term = storage.term(first - 1)
            table = check.log_table
            for entry in ready.entries:
                key = (entry.index, entry.term)
                known = table.get(key)
                if known is None:
                    table[key] = (entry, prev_term)
                elif known != (entry, prev_term):
                    raise Violation(f"log matching: {node.node_id} stores {entry} after term {prev_term}, "
                                    f"another log has {known[0]} after term {known[1]}")
                prev_term = entry.term
            storage.append(ready.entries)
        if ready.hard_state is not None:
            storage.set_hard_state(ready.hard_state)
        soft = ready.soft_state
        if soft is not None and soft.role is Role.LEADER:
            self._check_new_leader(node)

    def _check_new_leader(self, node: SimNode) -> None:
        raft = node.raft
        assert raft is not None
        term = raft.term
        other = self.check.leaders.setdefault(term, node.node_id)
        if other != node.node_id:
            raise Violation(f"election safety: {node.node_id} and {other} both lead term {term}")
        self._log(f"{node.node_id} leads term {term}")
        needed = self.check.committed_before(term)
        if needed == 0:
            return
        storage = node.storage
        if needed < storage.first_index() - 1:
            return  # covered by its snapshot, which is checked against the applied history
        entry = self.check.applied[needed]
        if needed > storage.last_index() or storage.term(needed) != entry.term:
            raise Violation(f"leader completeness: {node.node_id} leads term {term} without committed "
                            f"entry {needed}@t{entry.term}")

    def _send_stage(self, node: SimNode, ready: Ready) -> None:
        for message in ready.messages:
            self._send(message)

    def _apply_stage(self, node: SimNode, ready: Ready) -> None:
        check = self.check
        raft = node.raft
        assert raft is not None
        for entry in ready.committed_entries:
            if entry.index != node.applied_index + 1:
                raise Violation(f"{node.node_id} applies {entry.index} after {node.applied_index}")
            known = check.applied.setdefault(entry.index, entry)
            if known != entry:
                raise Violation(f"state-machine safety: {node.node_id} applies {entry}, another node "
                                f"applied {known}")
            header = b"%d:%d:%d" % (entry.term, entry.kind, node.digest)
            node.digest = zlib.crc32(entry.data, zlib.crc32(header))
            node.applied_index = entry.index
            if check.digests.setdefault(entry.index, node.digest) != node.digest:
                raise Violation(f"state-machine safety: {node.node_id} state differs at {entry.index}")
            data = self.pending.pop((node.node_id, entry.index), None)
            if data is not None and data == entry.data:
                check.acked[entry.index] = entry
                self.max_acked = max(self.max_acked, entry.index)
            if entry.data == self.marker and self.marker_at is None:
                self.marker_at = entry.index
        if ready.committed_entries:
            marks = check.commit_marks
            term = raft.term
            marks[term] = max(marks.get(term, 0), node.applied_index)
        for read in ready.read_states:
            floor = check.read_floors.pop(read.context, 0)
            if read.index < floor:
                raise Violation(f"stale read: {node.node_id} serves {read.context!r} at {read.index}, "
                                f"but entry {floor} was acknowledged before the read")

    def _check_snapshot_state(self, node: SimNode, index: int) -> None:
        if index == 0:
            return
        known = self.check.digests.setdefault(index, node.digest)
        if known != node.digest:
            raise Violation(f"state-machine safety: {node.node_id} installs a snapshot at {index} "
                            f"that differs from the applied history")

    # ------------------------------------------------------------------
    # The end: heal everything and demand progress.

    def _final_phase(self) -> None:
        """Heal everything and demand progress; then crash a minority of voters and demand it again."""
        self.calm = True
        self.groups = {}
        for node_id in sorted(self.down_since):
            self._restart(node_id)
        self._log("final phase: healed, everyone up, no more faults")
        self._await_progress(b"final-%d" % self.seed)
        leader = self._leader()
        assert leader is not None and leader.raft is not None
        voters = sorted(leader.raft.membership.voters)
        down = self.rng.sample(voters, self.rng.randrange(0, (len(voters) - 1) // 2 + 1))
        for node_id in down:
            self._crash(self.nodes[node_id])
        self._log(f"final phase: {down or 'nobody'} down, a majority of {voters} up")
        self._await_progress(b"final-%d-majority" % self.seed)

    def _await_progress(self, marker: bytes) -> None:
        """Within a bound, a leader commits ``marker`` and every member up applies everything acknowledged.

        Raises:
            Violation: the bound passed first.
        """
        self.marker, self.marker_at = marker, None
        client_acked = self.max_acked  # proposals stopped: only markers are acknowledged from now on
        bound = 30 * self.settings.election_ticks
        proposed_in: set[tuple[str, int]] = set()
        start = self.now
        while self.now < start + bound:
            self.now += 1
            leader = self._leader()
            if self.marker_at is None and leader is not None:
                # Once per leader and term (a proposal can be lost to a leader
                # change), retried while refused (during a leadership transfer).
                key = (leader.node_id, leader.raft.term)  # type: ignore[union-attr]
                if key not in proposed_in and self._propose(leader, [marker]) is not None:
                    proposed_in.add(key)
            self._deliver_due()
            self._tick_all()
            if self.marker_at is not None and self.marker_at <= client_acked:
                # The marker follows every committed entry in a leader's log.
                raise Violation(f"acknowledged entry lost: the log holds {marker!r} at {self.marker_at}, "
                                f"where entries up to {client_acked} were acknowledged")
            if self.marker_at is not None and not self._members_behind():
                return
        if self.marker_at is None:
            raise Violation(f"progress: no leader committed a proposal within {bound} ticks")
        raise Violation(f"progress: {bound} ticks on, members have not applied every acknowledged "
                        f"entry: {self._members_behind()}")

    def _members_behind(self) -> list[str]:
        """Members up that have not applied the marker and every acknowledged entry (all, with no leader)."""
        leader = self._leader()
        if leader is None:
            return ["no leader"]
        goal = max(self.marker_at or 0, self.max_acked)
        membership = leader.raft.membership  # type: ignore[union-attr]
        return [f"{node.node_id} applied {node.applied_index} < {goal}" for node in self._up()
                if node.node_id in membership and node.applied_index < goal]


def _encode_app(index: int, digest: int) -> bytes:
    return b"%d:%d" % (index, digest)


def _decode_app(data: bytes) -> tuple[int, int]:
    if not data:
        return 0, 0
    index, digest = data.split(b":")
    return int(index), int(digest)


# ----------------------------------------------------------------------
# Running seeds.


@dataclass(frozen=True)
class Failure:
    """A seed whose run broke a property."""

    seed: int
    error: str
    bugs: tuple[str, ...] = ()

    def replay_command(self) -> str:
        """The one-line command that replays this seed with a trace."""
        bug = f" BUG={','.join(self.bugs)}" if self.bugs else ""
        return REPLAY.format(seed=self.seed, bug=bug)


def run_seed(seed: int, bugs: frozenset[InjectedBug] = frozenset()) -> Failure | None:
    """Run one seed; the failure, if any (violations and unexpected exceptions alike)."""
    try:
        Simulation(seed, bugs).run()
    except Violation as violation:
        return Failure(seed, str(violation), tuple(sorted(bug.value for bug in bugs)))
    except Exception as error:
        return Failure(seed, f"{type(error).__name__}: {error}", tuple(sorted(bug.value for bug in bugs)))
    return None


def _run_chunk(args: tuple[list[int], frozenset[InjectedBug], bool]) -> tuple[int, list[Failure]]:
    seeds, bugs, stop_at_first = args
    failures = []
    for seed in seeds:
        failure = run_seed(seed, bugs)
        if failure is not None:
            failures.append(failure)
            if stop_at_first:
                break
    return len(seeds), failures


def run_seeds(seeds: Iterable[int], jobs: int = 1, bugs: frozenset[InjectedBug] = frozenset(),
              stop_at_first: bool = False) -> list[Failure]:
    """Run seeds, in ``jobs`` processes when above 1; every failure (or the first ones)."""
    seed_list = list(seeds)
    chunk = 10 if stop_at_first else 100
    chunks = [(seed_list[k:k + chunk], bugs, stop_at_first) for k in range(0, len(seed_list), chunk)]
    failures: list[Failure] = []
    if jobs <= 1:
        for item in chunks:
            failures += _run_chunk(item)[1]
            if failures and stop_at_first:
                break
        return sorted(failures, key=lambda failure: failure.seed)
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for _, found in pool.imap_unordered(_run_chunk, chunks):
            failures += found
            if failures and stop_at_first:
                pool.terminate()
                break
    return sorted(failures, key=lambda failure: failure.seed)


def main(argv: list[str] | None = None) -> int:
    """Command line: replay one seed with a trace, or run many seeds in parallel."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="run this one seed")
    parser.add_argument("--trace", action="store_true", help="print every step of the run")
    parser.add_argument("--seeds", type=int, default=1000, help="how many seeds to run (default 1000)")
    parser.add_argument("--start", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--jobs", type=int, default=multiprocessing.cpu_count(), help="processes")
    parser.add_argument("--bug", default="", help="switch on deliberate bugs, comma separated (test only): "
                        + ", ".join(bug.value for bug in InjectedBug))
    args = parser.parse_args(argv)
    try:
        bugs = frozenset(InjectedBug(name) for name in args.bug.split(",") if name)
    except ValueError as error:
        parser.error(str(error))
    if args.seed is not None:
        simulation = Simulation(args.seed, bugs, print if args.trace else None)
        print(f"seed {args.seed}: {simulation.settings}")
        try:
            simulation.run()
        except Violation as violation:
            print(f"VIOLATION at tick {simulation.now}: {violation}")
            return 1
        print(f"seed {args.seed}: ok after {simulation.now} ticks, "
              f"{len(simulation.check.acked)} entries acked")
        return 0
    started = time.monotonic()
    failures = run_seeds(range(args.start, args.start + args.seeds), args.jobs, bugs)
    elapsed = time.monotonic() - started
    print(f"{args.seeds} seeds in {elapsed:.1f} s ({args.seeds / elapsed:.0f} seeds/s, {args.jobs} jobs), "
          f"{len(failures)} failing")
    for failure in failures[:20]:
        print(f"seed {failure.seed}: {failure.error}\n  replay: {failure.replay_command()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
