"""The group coordinator's bookkeeping: whose acks count, idle expiry, the group bound."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from eventstream.server.broker import group_state
from eventstream.server.broker.groups import GroupCoordinator, GroupSettings
from eventstream.server.errors import EventStreamError
from eventstream.server.storage.memory_entry_log import MemoryEntryLog
from tests.support.one_node import commit_records, leading


class _NoDeadLetters:
    """Takes events that reached max_deliveries and never settles them."""

    def move(self, *args: object) -> None:
        """Forget the event."""


SECOND = 10**9
SETTINGS = GroupSettings(patterns=("#",), min_priority=0, start_latest=False, max_in_flight=100,
                         ack_deadline_ns=10 * SECOND, max_deliveries=5)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * SECOND

    def __call__(self) -> int:
        return self.now


@asynccontextmanager
async def coordinator(count: int, clock: Clock, **options) -> AsyncIterator[GroupCoordinator]:
    """A coordinator over a log of one partition holding ``count`` records on topic ``t``."""
    log = MemoryEntryLog(1, 1 << 20)
    async with leading(log) as replicated:
        if count:
            await commit_records(replicated, 0, ["t"] * count)
        yield GroupCoordinator(log, _NoDeadLetters(), clock, replicated.applier.groups,
                               replicated.proposer, wall_ns=clock, **options)


async def test_acks_and_nacks_count_only_for_the_member_that_holds_the_events():
    clock = Clock()
    async with coordinator(5, clock) as groups:
        await check_acks_and_nacks(groups)


async def check_acks_and_nacks(groups: GroupCoordinator) -> None:
    holder = await groups.join("g", SETTINGS)
    other = await groups.join("g", SETTINGS)
    assert holder.partitions == [0] and other.partitions == []
    assert groups.take(holder, 10, 1 << 20)[1] == 5
    positions = [(0, offset) for offset in range(5)]
    assert groups.ack(other, positions) == 0
    groups.nack(other, positions)
    assert holder.group.ignored == 10
    groups.nack(holder, positions)                 # still the holder's: back for delivery
    assert groups.take(holder, 10, 1 << 20)[1] == 5
    assert groups.ack(holder, positions) == 5
    assert groups.ack(holder, positions) == 0      # done already
    assert holder.group.frontiers() == [5] and holder.group.ignored == 15


async def test_a_late_ack_counts_until_the_event_is_delivered_again():
    clock = Clock()
    async with coordinator(4, clock) as groups:
        await check_late_acks(groups, clock)


async def check_late_acks(groups: GroupCoordinator, clock: Clock) -> None:
    member = await groups.join("g", SETTINGS)
    assert groups.take(member, 10, 1 << 20)[1] == 4
    clock.now += 11 * SECOND
    groups.expire()                                # past the deadline: waiting to go again
    assert groups.ack(member, [(0, 0), (0, 1)]) == 2
    groups.nack(member, [(0, 2)])                  # on its way again anyway: not ignored
    assert member.group.ignored == 0
    assert groups.take(member, 10, 1 << 20)[1] == 2         # offsets 2 and 3 only
    successor = await groups.join("g", SETTINGS)
    groups.leave(member)                           # what it held goes to the successor
    assert groups.take(successor, 10, 1 << 20)[1] == 2
    assert groups.ack(member, [(0, 3)]) == 0 and member.group.ignored == 1


async def test_groups_without_members_expire_and_their_number_is_bounded():
    clock = Clock()
    async with coordinator(0, clock, max_groups=3, idle_expiry_ns=30 * SECOND) as groups:
        # Groups of the log no member joined since the start: idle since their last entry.
        clock.now -= 50 * SECOND
        await groups.propose([group_state.upsert("stale", SETTINGS, [0], 0)])
        clock.now += 45 * SECOND
        await groups.propose([group_state.upsert("kept", SETTINGS, [0], 0)])
        clock.now += 5 * SECOND
        assert groups.expire_idle() == ["stale"]
        await groups.propose([group_state.delete("stale")])
        assert groups.count == 1
        first = await groups.join("first", SETTINGS)
        await groups.join("second", SETTINGS)
        with pytest.raises(EventStreamError) as refused:
            await groups.join("third", SETTINGS)
        assert refused.value.reason == "GROUPS_LIMIT"
        assert "groups.max_groups" in refused.value.message
        await groups.join("kept", SETTINGS)        # a group of the log is no new group
        groups.leave(first)
        clock.now += 29 * SECOND
        assert groups.expire_idle() == []
        clock.now += 2 * SECOND
        assert groups.expire_idle() == ["first"]
        assert sorted(groups.groups) == ["kept", "second"]
        await groups.propose([group_state.delete("first")])
        await groups.join("third", SETTINGS)
