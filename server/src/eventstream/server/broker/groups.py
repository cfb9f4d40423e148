"""Consumer groups: shared partitions, acknowledgements, redelivery, dead letters.

Pure bookkeeping over the committed log, driven by the Consume handler and a
clock passed in. A group's partitions are spread over its members in join
order (partition p goes to member p mod n) and spread again when a member
joins or leaves. Per partition the group keeps:

- ``cursor``: the next offset to read from the log;
- ``frontier``: every offset below it is done (acknowledged, filtered out or
  dead-lettered): the group's committed offset, where it resumes;
- ``inflight``: delivered and not yet acknowledged, with owner and deadline;
- ``retry``: offsets to deliver again (nacked, past their deadline, or held by
  a member that left);
- ``counted``/``ahead``: for the lag, how far past the cursor the events were
  examined (:meth:`GroupCoordinator.count_ahead`) and how many of those match
  the group's patterns and minimum priority.

Delivery is at-least-once: an event is delivered again until it is
acknowledged, and after ``max_deliveries`` deliveries it is handed to the
dead-letter callback instead. A member's ack or nack applies only to events
it holds, or held until their ack deadline passed and nobody got since; the
others (held by another member, nacked, done, never delivered to it) are
ignored and counted.

The number of groups is bounded (``max_groups``), and a group without
members for ``idle_expiry_ns`` is forgotten (:meth:`GroupCoordinator.expire_idle`).

What outlives a member and a restart is in the log (:mod:`.group_state`):
a group is created by a GROUPS entry when its first member joins (with its
starting offsets), its committed offsets and dead-letter count are proposed
when they moved (:meth:`GroupCoordinator.unsaved`, by the upkeep task), and
its deletion is an entry too. Groups the log knows that no member joined
since the start resume from their committed offsets when one does, and
expire the same way. The rest (members, assignments, deliveries in flight)
is this node's own, rebuilt by members joining again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import EventStreamError, invalid
from ..storage.entries import EntryKind
from ..storage.log import EventLog
from . import group_state
from .group_state import GroupSettings, GroupTable
from .proposals import ProposalLost, ProposalRefused, Proposer
from .topics import TopicFilter

log = logging.getLogger(__name__)

GROUP_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


class _Partition:
    __slots__ = (
        "ahead",
        "attempts",
        "counted",
        "cursor",
        "done",
        "frontier",
        "inflight",
        "late",
        "retry",
    )

    def __init__(self, start: int) -> None:
        self.cursor = start
        self.frontier = start
        self.done: set[int] = set()
        self.inflight: dict[int, tuple[Member, int]] = {}
        self.retry: deque[int] = deque()
        self.attempts: dict[int, int] = {}
        self.late: dict[int, Member] = {}
        """Offsets in ``retry`` because their ack deadline passed, with the
        member that held them: its late ack still counts until they are
        delivered again."""
        self.counted = start
        self.ahead = 0

    def skip_gone(self, start: int) -> None:
        """Finish the offsets below ``start``, deleted by retention before the group read them."""
        if self.cursor >= start:
            return
        for offset in range(self.cursor, start):
            self.finish(offset)
        self.cursor = start
        self.counted, self.ahead = start, 0  # which counted ones were deleted is not known

    def read_up_to(self, cursor: int, counted_matches: int) -> None:
        """The group read up to ``cursor``.

        ``counted_matches`` of the matching events it read had been counted ahead.
        """
        self.cursor = cursor
        self.ahead -= counted_matches
        if self.counted < cursor:
            self.counted, self.ahead = cursor, 0

    def lag(self, high_watermark: int) -> int:
        """Matching events not finished.

        Read and pending, counted ahead, and committed but not examined yet (counted as matching).
        """
        pending = self.cursor - self.frontier - len(self.done)
        return pending + self.ahead + max(0, high_watermark - max(self.counted, self.cursor))

    def finish(self, offset: int) -> None:
        """Mark ``offset`` done and move the frontier over every done offset."""
        self.attempts.pop(offset, None)
        self.late.pop(offset, None)
        if offset < self.frontier:
            return
        self.done.add(offset)
        while self.frontier in self.done:
            self.done.discard(self.frontier)
            self.frontier += 1


@dataclass(eq=False)
class Member:
    """One Consume stream of a group."""

    id: str
    group: Group
    max_in_flight: int
    partitions: list[int] = field(default_factory=list)
    inflight: int = 0
    assignment_changed: bool = True
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    _next: int = 0


class Group:
    """A consumer group's members and per-partition progress."""

    def __init__(self, name: str, settings: GroupSettings, starts: list[int] | tuple[int, ...],
                 dead_lettered: int = 0) -> None:
        self.name = name
        self.settings = settings
        self.filter = TopicFilter(settings.patterns)
        self.members: list[Member] = []
        self.generation = 0
        self.parts = [_Partition(start) for start in starts]
        self.acked = 0
        self.redelivered = 0
        self.dead_lettered = dead_lettered
        """Events moved to the dead-letter topic, ever (kept in the log)."""
        self.ignored = 0
        """Acks and nacks naming events the member did not hold."""
        self.idle_since: int | None = None
        """Clock time the last member left; None while the group has members."""

    def frontiers(self) -> list[int]:
        """The committed offset of every partition."""
        return [part.frontier for part in self.parts]

    def lag(self, high_watermarks: list[int]) -> int:
        """Committed events for this group that it has not finished.

        Only events its patterns and minimum priority match count, as far as
        :meth:`GroupCoordinator.count_ahead` has examined them; committed
        events not examined yet count as matching (an upper bound while it
        catches up).
        """
        return sum(part.lag(hwm) for hwm, part in zip(high_watermarks, self.parts))


class DeadLetterSink(Protocol):
    """Where events that reached max_deliveries go (:class:`.dead_letter.DeadLetters`)."""

    def move(self, group: Group, partition: int, offset: int, record: bytes,
             settle: Callable[[Group, int, int, bool], None]) -> None:
        """Start moving the event; ``settle`` is called once when the move ends."""
        ...


class GroupCoordinator:
    """Every consumer group of the node.

    Args:
        event_log: the committed log the groups read.
        dead_letters: takes each event that reached max_deliveries and settles
            it later through :meth:`settle`.
        clock_ns: monotonic clock in nanoseconds (ack deadlines, idle expiry).
        table: the groups the log knows (changed only by the applier).
        proposer: where GROUPS entries are proposed.
        max_groups: most groups at once (with members or not, stored ones too).
        idle_expiry_ns: a group without members this long is forgotten.
        wall_ns: wall clock in nanoseconds (the time written in GROUPS entries).
    """

    def __init__(self, event_log: EventLog, dead_letters: DeadLetterSink,
                 clock_ns: Callable[[], int], table: GroupTable, proposer: Proposer,
                 *, max_groups: int = 1000, idle_expiry_ns: int = 7 * 86400 * 10**9,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        self._log = event_log
        self._dead_letters = dead_letters
        self._clock_ns = clock_ns
        self._wall_ns = wall_ns
        self.table = table
        self._proposer = proposer
        self._max_groups = max_groups
        self._idle_expiry_ns = idle_expiry_ns
        self.groups: dict[str, Group] = {}
        self._creating: dict[str, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)

    @property
    def count(self) -> int:
        """Groups known: in memory, and those of the log no member has joined since the start."""
        return len(self.groups) + sum(1 for name in self.table.records if name not in self.groups)

    # -- membership -----------------------------------------------------------

    async def join(self, name: str, settings: GroupSettings) -> Member:
        """Add a member to group ``name`` (created on first use, through the log) and rebalance.

        A group the log does not know is created by a GROUPS entry holding
        its starting offsets; the member joins once it is applied.

        Raises:
            EventStreamError: INVALID_ARGUMENT for a bad group name, or patterns
                other than the group's; RESOURCE_EXHAUSTED for a new group
                when ``max_groups`` exist; UNAVAILABLE when the group cannot be
                written to the log now.
        """
        if not GROUP_NAME.fullmatch(name):
            raise invalid("GROUP_INVALID", "start.group",
                          "1 to 128 letters, digits, '.', '_' or '-'")
        while name in self._creating:  # another member is creating it
            await asyncio.shield(self._creating[name])
        group = self.groups.get(name)
        if group is None:
            record = self.table.get(name)
            if record is None:
                record = await self._create(name, settings)
            group = self.groups.get(name)
            if group is None:
                group = self.groups[name] = Group(name, settings, record.offsets,
                                                  record.dead_lettered)
        if sorted(settings.patterns) != sorted(group.settings.patterns):
            raise invalid("GROUP_PATTERNS_DIFFER", "start.patterns",
                          f"group {name!r} consumes {list(group.settings.patterns)}; "
                          "every member must give the same patterns")
        member = Member(f"{name}-{next(self._ids)}", group, settings.max_in_flight)
        group.members.append(member)
        group.idle_since = None
        self._rebalance(group)
        return member

    async def _create(self, name: str, settings: GroupSettings) -> group_state.GroupRecord:
        """Write a new group to the log (starting offsets now) and wait until it is applied."""
        if self.count >= self._max_groups:
            raise EventStreamError(
                "GROUPS_LIMIT", f"start.group: {name!r} would be a new group, and the "
                f"server has {self.count} groups, the limit of groups.max_groups; "
                "groups without members are forgotten after groups.idle_expiry_seconds",
                field="start.group")
        log = self._log
        starts = [log.high_watermark(p) if settings.start_latest else log.start_offset(p)
                  for p in range(log.partitions)]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._creating[name] = done
        try:
            await self.propose([group_state.upsert(name, settings, starts, 0)])
        finally:
            del self._creating[name]
            done.set_result(None)
        record = self.table.get(name)
        if record is None:  # deleted again at once by an expiry in flight: create it anew
            return await self._create(name, settings)
        return record

    async def propose(self, ops: list[dict[str, Any]]) -> None:
        """Propose a GROUPS entry of ``ops`` and wait until it is applied here.

        Raises:
            EventStreamError: UNAVAILABLE (COMMIT_FAILED) when it could not be
                written (not the leader, writes halted, leadership changed).
        """
        proposer = self._proposer
        try:
            index, term = proposer.propose(EntryKind.GROUPS,
                                           group_state.encode_entry(ops, self._wall_ns()))
            await proposer.wait_applied(index, term)
        except (ProposalRefused, ProposalLost) as error:
            raise EventStreamError("COMMIT_FAILED", f"the consumer group state could not be "
                                   f"written to the log: {error}; retry") from None

    def leave(self, member: Member) -> None:
        """Remove a member: what it held is delivered again to the others."""
        group = member.group
        if member not in group.members:
            return
        group.members.remove(member)
        for part in group.parts:
            held = sorted(o for o, (owner, _) in part.inflight.items() if owner is member)
            for offset in reversed(held):
                del part.inflight[offset]
                part.retry.appendleft(offset)
        member.inflight = 0
        if not group.members:
            group.idle_since = self._clock_ns()
        self._rebalance(group)

    def expire_idle(self) -> list[str]:
        """Forget every group that has had no member for ``idle_expiry_ns``.

        Groups of the log no member joined since the start count as idle
        since the entry that last wrote them.

        Returns:
            Their names (the caller proposes their deletion).
        """
        due = self._clock_ns() - self._idle_expiry_ns
        expired = [name for name, group in self.groups.items()
                   if group.idle_since is not None and group.idle_since <= due]
        for name in expired:
            del self.groups[name]
        wall_due = self._wall_ns() - self._idle_expiry_ns
        stale = [name for name, record in self.table.records.items()
                 if name not in self.groups and name not in expired
                 and record.updated_ns <= wall_due]
        return expired + stale

    def _rebalance(self, group: Group) -> None:
        group.generation += 1
        members = group.members
        for member in members:
            member.partitions = [p for p in range(len(group.parts))
                                 if members[p % len(members)] is member]
            member.assignment_changed = True
            member.wake.set()

    # -- delivery ---------------------------------------------------------------

    def take(self, member: Member, max_batch: int, max_bytes: int) -> tuple[list[bytes], int]:
        """Events for ``member`` now.

        (framed records, count), at most ``max_batch`` events and ``max_bytes`` bytes (a larger event goes
        alone).

        Redeliveries of a partition come before its new events. Events the
        filter skips count as done.
        """
        group = member.group
        room = min(max_batch, member.max_in_flight - member.inflight)
        out: list[bytes] = []
        if room <= 0 or not member.partitions:
            return out, 0
        log = self._log
        deadline = self._clock_ns() + group.settings.ack_deadline_ns
        owned = member.partitions
        size, full = 0, False
        for step in range(len(owned)):
            if len(out) >= room or full:
                break
            partition = owned[(member._next + step) % len(owned)]
            part = group.parts[partition]
            start = log.start_offset(partition)
            while part.retry and len(out) < room:
                offset = part.retry[0]
                if offset < start:        # gone by retention: nothing left to deliver
                    part.retry.popleft()
                    part.finish(offset)
                    continue
                record = log.read(partition, offset, 1).records[0]
                if out and size + len(record) > max_bytes:
                    full = True
                    break
                part.retry.popleft()
                self._deliver(member, part, offset, deadline, out, record)
                size += len(record)
                group.redelivered += 1
            part.skip_gone(start)
            if full or len(out) >= room or part.cursor >= log.high_watermark(partition):
                continue
            result = log.read(partition, part.cursor, room - len(out))
            matches, minimum = group.filter.matches, group.settings.min_priority
            read = len(result.records)
            counted, counted_matches = part.counted, 0
            for index, record in enumerate(result.records):
                offset = result.first_offset + index
                if result.priorities[index] >= minimum and matches(result.topics[index]):
                    if out and size + len(record) > max_bytes:
                        read, full = index, True   # it starts the next delivery
                        break
                    self._deliver(member, part, offset, deadline, out, record)
                    size += len(record)
                    counted_matches += offset < counted
                else:
                    part.finish(offset)
            part.read_up_to(result.first_offset + read, counted_matches)
        member._next += 1
        return out, len(out)

    def behind(self, member: Member) -> bool:
        """True when ``member`` could take more now.

        It has room for events and one of its partitions holds committed records it has not read yet.
        """
        if member.inflight >= member.max_in_flight:
            return False
        parts, log = member.group.parts, self._log
        return any(parts[p].cursor < log.high_watermark(p) for p in member.partitions)

    @staticmethod
    def _deliver(member: Member, part: _Partition, offset: int, deadline: int,
                 out: list[bytes], record: bytes) -> None:
        part.inflight[offset] = (member, deadline)
        part.attempts[offset] = part.attempts.get(offset, 0) + 1
        part.late.pop(offset, None)
        member.inflight += 1
        out.append(record)

    def count_ahead(self, budget: int) -> None:
        """Examine up to ``budget`` committed events per group past where it has read.

        Those its patterns match are counted, for :meth:`Group.lag`.

        Each event is examined once per group (off the publish path, in
        bounded steps), so the lag of a group whose members are away, or far
        behind, counts only what they will be given.
        """
        log = self._log
        for group in list(self.groups.values()):
            left = budget
            matches, minimum = group.filter.matches, group.settings.min_priority
            every = group.filter.match_all and minimum == 0
            for partition, part in enumerate(group.parts):
                part.skip_gone(log.start_offset(partition))
                todo = min(left, log.high_watermark(partition) - part.counted)
                if todo <= 0:
                    continue
                if every:  # no need to read them
                    part.ahead += todo
                    part.counted += todo
                    left -= todo
                    continue
                result = log.read(partition, part.counted, todo)
                part.ahead += sum(1 for topic, priority in zip(result.topics, result.priorities)
                                  if priority >= minimum and matches(topic))
                part.counted += len(result.records)
                left -= len(result.records)
                if left <= 0:
                    break

    # -- acknowledgements ---------------------------------------------------------

    def ack(self, member: Member, positions: Iterable[tuple[int, int]]) -> int:
        """Finish the events at ``positions`` that ``member`` holds.

        Also those it held until their ack deadline passed when nobody got
        them since. The others (held by another member, nacked, already done,
        never delivered to it) are ignored and counted in ``Group.ignored``.

        Returns:
            How many events became done.
        """
        group = member.group
        finished = 0
        for partition, offset in positions:
            part = self._part(group, partition)
            if self._release(part, offset, member):
                pass
            elif part.late.get(offset) is member:
                part.retry.remove(offset)
            else:
                group.ignored += 1
                continue
            part.finish(offset)
            finished += 1
        group.acked += finished
        self._wake(group)
        return finished

    def nack(self, member: Member, positions: Iterable[tuple[int, int]]) -> None:
        """Deliver the events at ``positions`` that ``member`` holds again (or dead-letter them).

        Those it held until their deadline are on their way again already; the others are ignored and counted,
        as by :meth:`ack`.
        """
        group = member.group
        for partition, offset in positions:
            part = self._part(group, partition)
            if self._release(part, offset, member):
                self._again(group, partition, part, offset)
            elif part.late.get(offset) is not member:
                group.ignored += 1
        self._wake(group)

    def expire(self) -> None:
        """Deliver again every event whose ack deadline passed."""
        now = self._clock_ns()
        for group in self.groups.values():
            passed = False
            for partition, part in enumerate(group.parts):
                for offset, (member, due) in list(part.inflight.items()):
                    if due > now:
                        continue
                    self._release(part, offset)
                    if self._again(group, partition, part, offset):
                        part.late[offset] = member
                    passed = True
            if passed:
                self._wake(group)

    def settle(self, group: Group, partition: int, offset: int, stored: bool) -> None:
        """How a dead-letter move ended: ``stored`` finishes the event, otherwise it is delivered again."""
        part = group.parts[partition]
        if stored:
            part.finish(offset)
            group.dead_lettered += 1
        else:
            part.retry.append(offset)
        self._wake(group)

    def _again(self, group: Group, partition: int, part: _Partition, offset: int) -> bool:
        """Queue ``offset`` to be delivered again, or dead-letter it after max_deliveries.

        Return whether it was queued.
        """
        if part.attempts.get(offset, 0) >= group.settings.max_deliveries:
            record = self._log.read(partition, offset, 1).records
            if record:
                self._dead_letters.move(group, partition, offset, record[0], self.settle)
                return False
            part.finish(offset)    # gone by retention
            return False
        part.retry.append(offset)
        return True

    @staticmethod
    def _release(part: _Partition, offset: int, owner: Member | None = None) -> bool:
        """Take ``offset`` out of flight if it is (and, given ``owner``, held by that member).

        Return whether it was.
        """
        held = part.inflight.get(offset)
        if held is None or (owner is not None and held[0] is not owner):
            return False
        del part.inflight[offset]
        held[0].inflight -= 1
        return True

    @staticmethod
    def _part(group: Group, partition: int) -> _Partition:
        if partition >= len(group.parts):
            raise invalid("POSITION_INVALID", "partition",
                          f"partition {partition} does not exist (there are {len(group.parts)})")
        return group.parts[partition]

    def _wake(self, group: Group) -> None:
        for member in group.members:
            member.wake.set()

    def unsaved(self) -> list[dict[str, Any]]:
        """The GROUPS operations that bring the log up to date with the groups in memory.

        One upsert per group whose committed offsets or dead-letter count
        moved since the log last wrote it (or that the log lost: an expiry
        that raced with a join).
        """
        ops = []
        table = self.table.records
        for name, group in self.groups.items():
            record = table.get(name)
            frontiers = group.frontiers()
            if record is None or tuple(frontiers) != record.offsets or \
                    group.dead_lettered != record.dead_lettered or \
                    group.settings != record.settings:
                ops.append(group_state.upsert(name, group.settings, frontiers,
                                              group.dead_lettered))
        return ops

    def wake_all(self) -> None:
        """New events were committed: let every member look."""
        for group in self.groups.values():
            self._wake(group)


__all__ = ["GROUP_NAME", "Group", "GroupCoordinator", "Member"]
