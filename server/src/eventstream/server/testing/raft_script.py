"""Golden interaction scripts for the Raft core: a tiny command language and its interpreter.

A script is a sequence of blocks. Each block is optional ``#`` comment lines,
one command line, a ``----`` line and the expected output, ending at a blank
line. :func:`run_script` runs every command against one :class:`ScriptEnv`
and compares outputs; with ``rewrite`` it writes the actual outputs back
instead (review the diff before committing it).

Nodes are named ``n1``, ``n2``, ... in the order they are added. Nothing
happens on its own: a node's Ready is handled only by ``process-ready`` or
``stabilize``, messages wait in the recipient's mailbox until
``deliver-msgs`` or ``stabilize``. Election jitter is 0 unless set, so a
follower campaigns after exactly ``election`` ticks.

Commands (example after each):

- ``add-nodes COUNT [voters=IDS] [learners=IDS] [prevote=BOOL]
  [checkquorum=BOOL] [readonly=safe|lease] [election=N] [heartbeat=N]
  [max-msg-bytes=N] [max-inflight=N] [bugs=NAMES]`` adds nodes. The first
  call bootstraps them with the given membership (default: all voters);
  later calls add empty nodes that join through membership changes.
  ``add-nodes 3 prevote=false``
- ``campaign ID`` starts an election. ``campaign n1``
- ``elect ID`` campaigns and stabilizes quietly; prints the outcome.
  ``elect n1``
- ``propose ID DATA`` and ``propose-many ID DATA...`` propose EVENTS
  entries. ``propose-many n1 a b c``
- ``propose-change ID OP NODE`` with OP one of add-voter, add-learner,
  promote-learner, remove-node. ``propose-change n1 add-learner n4``
- ``transfer-leadership ID [TO]``. ``transfer-leadership n1 n3``
- ``read-index ID CONTEXT``. ``read-index n2 r1``
- ``tick ID... [n=COUNT]``, ``tick-heartbeat ID...``, ``tick-election ID...``
  (``election`` ticks). IDs may be ``all``. ``tick-election n2``
- ``set-jitter ID N``: the node's next election timeouts are election + N.
- ``process-ready ID...`` handles each node's Ready: persist, send (into
  mailboxes), apply, advance. ``process-ready n1 n2``
- ``deliver-msgs ID... [drop=true]`` steps (or drops) the messages waiting
  for each node. ``deliver-msgs n2 n3``
- ``stabilize [ID...]`` repeats both until nothing is left to do.
- ``partition IDS / IDS [/ IDS...]`` drops messages between the groups on
  delivery; ``heal`` ends it. ``partition n1 / n2 n3``
- ``crash ID`` loses the node's memory (storage survives) and its mailbox;
  ``restart ID`` starts it again from storage.
- ``snapshot ID [compact=true]`` takes the application's snapshot at its
  applied index (and drops the log up to it).
- ``report-unreachable ID PEER``, ``report-snapshot ID PEER ok|fail``.
- ``status ID...``, ``raft-log ID`` print state.

Commands that the core refuses print ``error: ...``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
    Role,
)
from eventstream.server.testing.raft_format import entry_text, message_text, ready_lines, snapshot_text

SEPARATOR = "----"


class ScriptError(Exception):
    """A script is malformed or uses a command wrongly."""


@dataclass
class ScriptNode:
    """One node of the environment: its durable storage and, while up, its core."""

    node_id: str
    config: Config
    storage: MemoryStorage
    raft: RaftNode | None = None
    applied: list[Entry] = field(default_factory=list)
    jitter: int = 0

    def start(self) -> None:
        """Create the core from storage (first start or restart)."""
        self.raft = RaftNode(self.config, self.storage, self._random_below)
        self.applied = []

    def _random_below(self, bound: int) -> int:
        return min(self.jitter, bound - 1)


class ScriptEnv:
    """The nodes, their mailboxes and the partitions of one script."""

    def __init__(self) -> None:
        self.nodes: dict[str, ScriptNode] = {}
        self.mailboxes: dict[str, list[Message]] = {}
        self.groups: list[set[str]] = []
        self._commands: dict[str, Callable[[list[str], dict[str, str]], list[str]]] = {
            "add-nodes": self._add_nodes,
            "campaign": self._campaign,
            "elect": self._elect,
            "propose": self._propose,
            "propose-many": self._propose_many,
            "propose-change": self._propose_change,
            "transfer-leadership": self._transfer_leadership,
            "read-index": self._read_index,
            "tick": self._tick,
            "tick-heartbeat": self._tick_heartbeat,
            "tick-election": self._tick_election,
            "set-jitter": self._set_jitter,
            "process-ready": self._process_ready,
            "deliver-msgs": self._deliver_msgs,
            "stabilize": self._stabilize,
            "partition": self._partition,
            "heal": self._heal,
            "crash": self._crash,
            "restart": self._restart,
            "snapshot": self._snapshot,
            "report-unreachable": self._report_unreachable,
            "report-snapshot": self._report_snapshot,
            "status": self._status,
            "raft-log": self._raft_log,
        }

    def run(self, line: str) -> str:
        """Run one command line; its output (``ok`` when it prints nothing)."""
        words = shlex.split(line)
        if not words or words[0] not in self._commands:
            raise ScriptError(f"unknown command: {line!r}")
        positional = [word for word in words[1:] if "=" not in word]
        options = dict(word.split("=", 1) for word in words[1:] if "=" in word)
        try:
            lines = self._commands[words[0]](positional, options)
        except (NotLeaderError, MembershipError, ValueError) as error:
            lines = [f"error: {error}"]
        return "\n".join(lines) if lines else "ok"

    # Helpers.

    def _node(self, node_id: str) -> ScriptNode:
        if node_id not in self.nodes:
            raise ScriptError(f"no node {node_id}")
        return self.nodes[node_id]

    def _raft(self, node_id: str) -> RaftNode:
        raft = self._node(node_id).raft
        if raft is None:
            raise ScriptError(f"{node_id} is crashed")
        return raft

    def _ids(self, words: list[str]) -> list[str]:
        if not words or words == ["all"]:
            return list(self.nodes)
        for word in words:
            self._node(word)
        return words

    def _group_of(self, node_id: str) -> int | None:
        for number, group in enumerate(self.groups):
            if node_id in group:
                return number
        return None

    def _blocked(self, sender: str, recipient: str) -> bool:
        # Nodes left out of every group reach everyone.
        ours, theirs = self._group_of(sender), self._group_of(recipient)
        return ours is not None and theirs is not None and ours != theirs

    # Commands.

    def _add_nodes(self, args: list[str], options: dict[str, str]) -> list[str]:
        count = int(args[0])
        first = len(self.nodes) + 1
        ids = [f"n{k}" for k in range(first, first + count)]
        bootstrap = not self.nodes
        membership = Membership()
        if bootstrap:
            learners = frozenset(_split(options.get("learners", "")))
            voters = (frozenset(_split(options["voters"])) if "voters" in options
                      else frozenset(ids) - learners)
            membership = Membership(voters, learners)
        bugs = frozenset(InjectedBug(name) for name in _split(options.get("bugs", "")))
        for node_id in ids:
            config = Config(
                node_id,
                election_ticks=int(options.get("election", 10)),
                heartbeat_ticks=int(options.get("heartbeat", 1)),
                pre_vote=options.get("prevote", "true") == "true",
                check_quorum=options.get("checkquorum", "true") == "true",
                read_only=ReadOnlyMode(options.get("readonly", "safe")),
                max_msg_bytes=int(options.get("max-msg-bytes", 1 << 20)),
                max_inflight_msgs=int(options.get("max-inflight", 256)),
                injected_bugs=bugs,
            )
            node = ScriptNode(node_id, config, MemoryStorage(membership))
            node.start()
            self.nodes[node_id] = node
            self.mailboxes[node_id] = []
        return [f"{node_id}: {membership.describe() if bootstrap else 'empty (joins later)'}"
                for node_id in ids]

    def _campaign(self, args: list[str], options: dict[str, str]) -> list[str]:
        self._raft(args[0]).campaign()
        return []

    def _elect(self, args: list[str], options: dict[str, str]) -> list[str]:
        raft = self._raft(args[0])
        raft.campaign()
        self._stabilize([], {})
        return [f"{args[0]} is {raft.role.name} in term {raft.term}, commit {raft.commit_index}"]

    def _propose(self, args: list[str], options: dict[str, str]) -> list[str]:
        index = self._raft(args[0]).propose(args[1].encode())
        return [f"index {index}"]

    def _propose_many(self, args: list[str], options: dict[str, str]) -> list[str]:
        indexes = self._raft(args[0]).propose_many([(EntryKind.EVENTS, data.encode()) for data in args[1:]])
        return [f"indexes {indexes.start}..{indexes.stop - 1}"]

    def _propose_change(self, args: list[str], options: dict[str, str]) -> list[str]:
        op = MembershipOp[args[1].upper().replace("-", "_")]
        index = self._raft(args[0]).propose_membership_change(MembershipChange(op, args[2]))
        return [f"index {index}"]

    def _transfer_leadership(self, args: list[str], options: dict[str, str]) -> list[str]:
        self._raft(args[0]).transfer_leadership(args[1] if len(args) > 1 else None)
        return []

    def _read_index(self, args: list[str], options: dict[str, str]) -> list[str]:
        self._raft(args[0]).read_index(args[1].encode())
        return []

    def _tick_n(self, ids: list[str], count: int) -> list[str]:
        for node_id in ids:
            raft = self._raft(node_id)
            for _ in range(count):
                raft.tick()
        return []

    def _tick(self, args: list[str], options: dict[str, str]) -> list[str]:
        return self._tick_n(self._ids(args), int(options.get("n", 1)))

    def _tick_heartbeat(self, args: list[str], options: dict[str, str]) -> list[str]:
        ids = self._ids(args)
        return self._tick_n(ids, self.nodes[ids[0]].config.heartbeat_ticks)

    def _tick_election(self, args: list[str], options: dict[str, str]) -> list[str]:
        ids = self._ids(args)
        return self._tick_n(ids, self.nodes[ids[0]].config.election_ticks)

    def _set_jitter(self, args: list[str], options: dict[str, str]) -> list[str]:
        self._node(args[0]).jitter = int(args[1])
        return []

    def _handle_ready(self, node: ScriptNode) -> list[str]:
        raft = node.raft
        if raft is None or not raft.has_ready():
            return []
        ready = raft.ready()
        if ready.snapshot is not None:
            node.storage.apply_snapshot(ready.snapshot)
            node.applied = []
        node.storage.append(ready.entries)
        if ready.hard_state is not None:
            node.storage.set_hard_state(ready.hard_state)
        for message in ready.messages:
            self.mailboxes[message.recipient].append(message)
        node.applied.extend(ready.committed_entries)
        raft.advance()
        return [f"> {node.node_id} handling Ready", *ready_lines(ready)]

    def _process_ready(self, args: list[str], options: dict[str, str]) -> list[str]:
        lines = []
        for node_id in self._ids(args):
            lines += self._handle_ready(self._node(node_id))
        return lines

    def _deliver(self, node_id: str, drop: bool) -> list[str]:
        messages, self.mailboxes[node_id] = self.mailboxes[node_id], []
        if not messages:
            return []
        lines = [f"> {node_id} receiving messages"]
        raft = self.nodes[node_id].raft
        for message in messages:
            if drop or raft is None or self._blocked(message.sender, node_id):
                reason = "drop" if drop else "crashed" if raft is None else "partition"
                lines.append(f"  {message_text(message)} (dropped: {reason})")
                continue
            lines.append(f"  {message_text(message)}")
            raft.step(message)
        return lines

    def _deliver_msgs(self, args: list[str], options: dict[str, str]) -> list[str]:
        drop = options.get("drop", "false") == "true"
        lines = []
        for node_id in self._ids(args):
            lines += self._deliver(node_id, drop)
        return lines

    def _stabilize(self, args: list[str], options: dict[str, str]) -> list[str]:
        ids = self._ids(args)
        lines: list[str] = []
        for _ in range(1000):
            before = len(lines)
            for node_id in ids:
                lines += self._handle_ready(self.nodes[node_id])
            for node_id in ids:
                lines += self._deliver(node_id, drop=False)
            if len(lines) == before:
                return lines
        raise ScriptError("stabilize did not settle after 1000 rounds")

    def _partition(self, args: list[str], options: dict[str, str]) -> list[str]:
        groups: list[set[str]] = [set()]
        for word in args:
            if word == "/":
                groups.append(set())
            else:
                self._node(word)
                groups[-1].add(word)
        self.groups = [group for group in groups if group]
        return []

    def _heal(self, args: list[str], options: dict[str, str]) -> list[str]:
        self.groups = []
        return []

    def _crash(self, args: list[str], options: dict[str, str]) -> list[str]:
        node = self._node(args[0])
        node.raft = None
        node.applied = []
        self.mailboxes[args[0]] = []
        return []

    def _restart(self, args: list[str], options: dict[str, str]) -> list[str]:
        node = self._node(args[0])
        node.start()
        self.mailboxes[args[0]] = []  # what was sent while it was down is lost
        raft = self._raft(args[0])
        return [f"{args[0]} restarted: term={raft.term} commit={raft.commit_index} "
                f"applied={raft.applied_index} last={raft.last_index}"]

    def _snapshot(self, args: list[str], options: dict[str, str]) -> list[str]:
        node = self._node(args[0])
        raft = self._raft(args[0])
        index = raft.applied_index
        snapshot = node.storage.create_snapshot(index, raft.membership, f"app@{index}".encode())
        if options.get("compact", "false") == "true":
            node.storage.compact(index)
        return [f"snapshot {snapshot_text(snapshot)}"]

    def _report_unreachable(self, args: list[str], options: dict[str, str]) -> list[str]:
        self._raft(args[0]).report_unreachable(args[1])
        return []

    def _report_snapshot(self, args: list[str], options: dict[str, str]) -> list[str]:
        self._raft(args[0]).report_snapshot(args[1], args[2] == "ok")
        return []

    def _status(self, args: list[str], options: dict[str, str]) -> list[str]:
        lines = []
        for node_id in self._ids(args):
            raft = self.nodes[node_id].raft
            if raft is None:
                lines.append(f"{node_id} crashed")
                continue
            status = raft.status()
            lines.append(f"{node_id} {status.role.name} term={status.term} vote={status.vote or '-'} "
                         f"leader={status.leader or '-'} commit={status.commit} applied={status.applied} "
                         f"log={status.first_index}..{status.last_index} {status.membership.describe()}")
            if status.role is Role.LEADER:
                for member, pr in status.progress.items():
                    if member != node_id:
                        lines.append(f"  {member}: {pr.state} match={pr.match} next={pr.next}"
                                     + (" paused" if pr.paused else ""))
                if status.transferring_to:
                    lines.append(f"  transferring to {status.transferring_to}")
        return lines

    def _raft_log(self, args: list[str], options: dict[str, str]) -> list[str]:
        storage = self._node(args[0]).storage
        lines = []
        snapshot = storage.snapshot()
        if snapshot.index:
            lines.append(f"snapshot {snapshot_text(snapshot)}")
        first, last = storage.first_index(), storage.last_index()
        if last >= first:
            lines += [entry_text(entry) for entry in storage.entries(first, last + 1)]
        return lines or ["log is empty"]


def _split(names: str) -> list[str]:
    return [name for name in names.split(",") if name]


@dataclass
class _Block:
    comments: list[str]
    command: str
    expected: list[str]
    line_number: int


def _parse(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    lines = text.splitlines()
    comments: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            if line.strip():
                comments.append(line)
            i += 1
            continue
        if i + 1 >= len(lines) or lines[i + 1] != SEPARATOR:
            raise ScriptError(f"line {i + 1}: expected {SEPARATOR!r} after the command {line!r}")
        start = i + 1
        i += 2
        expected = []
        while i < len(lines) and lines[i].strip():
            expected.append(lines[i])
            i += 1
        blocks.append(_Block(comments, line, expected, start))
        comments = []
    return blocks


def run_script(path: Path, rewrite: bool = False) -> list[str]:
    """Run a script; the mismatches as readable reports (empty when it passes).

    With ``rewrite``, the file is written back with the actual outputs and
    no mismatch is reported.
    """
    blocks = _parse(path.read_text())
    env = ScriptEnv()
    failures = []
    out: list[str] = []
    for block in blocks:
        actual = env.run(block.command).splitlines()
        if actual != block.expected and not rewrite:
            failures.append(f"{path.name}:{block.line_number}: {block.command}\n"
                            f"--- expected\n" + "\n".join(block.expected)
                            + "\n--- actual\n" + "\n".join(actual))
        out += [*block.comments, block.command, SEPARATOR, *actual, ""]
    if rewrite:
        path.write_text("\n".join(out).rstrip("\n") + "\n")
    return failures
