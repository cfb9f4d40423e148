"""A consumer group's lag counts only the events its patterns match.

Over an in-memory log: events of other topics and of lower priority than the
group's minimum do not count once examined; events not examined yet count
(an upper bound), and the examination goes in bounded steps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventstream.server.broker.groups import GroupCoordinator, GroupSettings
from eventstream.server.cluster.one_voter import ReplicatedLog
from eventstream.server.storage.entry_api import EntryLog
from eventstream.server.storage.memory_entry_log import MemoryEntryLog
from tests.support.one_node import commit_records, leading


class _NoDeadLetters:
    """Takes events that reached max_deliveries and never settles them."""

    def move(self, *args: object) -> None:
        """Forget the event."""


HIGH, LOW = 3, 1


def settings(*patterns: str, min_priority: int = 0) -> GroupSettings:
    return GroupSettings(patterns=patterns, min_priority=min_priority, start_latest=False,
                         max_in_flight=1000, ack_deadline_ns=10**12, max_deliveries=5)


def lag(coordinator: GroupCoordinator, name: str, log: EntryLog) -> int:
    return coordinator.groups[name].lag([log.high_watermark(0)])


@asynccontextmanager
async def node() -> AsyncIterator[tuple[ReplicatedLog, GroupCoordinator]]:
    """A node's replicated log of one partition and a group coordinator over it."""
    log = MemoryEntryLog(1, 1 << 20)
    async with leading(log) as replicated:
        yield replicated, GroupCoordinator(log, _NoDeadLetters(), lambda: 0,
                                           replicated.applier.groups, replicated.proposer)


async def test_events_of_other_topics_leave_the_lag_once_examined():
    async with node() as (replicated, coordinator):
        await check_other_topics(replicated, coordinator)


async def check_other_topics(replicated: ReplicatedLog, coordinator: GroupCoordinator) -> None:
    log = replicated.event_log
    member = await coordinator.join("billing", settings("orders/#"))
    coordinator.leave(member)  # a group whose members are away
    await commit_records(replicated, 0, ["sensors/a"] * 90 + ["orders/1"] * 10, HIGH)
    assert lag(coordinator, "billing", log) == 100  # not examined yet: an upper bound
    coordinator.count_ahead(budget=60)
    assert lag(coordinator, "billing", log) == 40   # 60 examined, none matched; 40 to go
    coordinator.count_ahead(budget=60)
    assert lag(coordinator, "billing", log) == 10
    await commit_records(replicated, 0, ["sensors/b"] * 5, HIGH)
    coordinator.count_ahead(budget=60)
    assert lag(coordinator, "billing", log) == 10


async def test_a_member_reading_keeps_the_count_right():
    async with node() as (replicated, coordinator):
        await check_member_reading(replicated, coordinator)


async def check_member_reading(replicated: ReplicatedLog, coordinator: GroupCoordinator) -> None:
    log = replicated.event_log
    member = await coordinator.join("billing", settings("orders/#", min_priority=HIGH))
    await commit_records(replicated, 0, ["orders/1", "sensors/a", "orders/2"], HIGH)
    await commit_records(replicated, 0, ["orders/3"], LOW)  # below the group's minimum
    coordinator.count_ahead(budget=1000)
    assert lag(coordinator, "billing", log) == 2
    _records, count = coordinator.take(member, max_batch=1, max_bytes=1 << 20)  # reads up to the first match
    assert count == 1 and lag(coordinator, "billing", log) == 2  # delivered, not acked
    coordinator.ack(member, [(0, 0)])
    assert lag(coordinator, "billing", log) == 1
    _, count = coordinator.take(member, max_batch=10, max_bytes=1 << 20)
    assert count == 1 and lag(coordinator, "billing", log) == 1
    coordinator.ack(member, [(0, 2)])
    assert lag(coordinator, "billing", log) == 0
    await commit_records(replicated, 0, ["orders/4", "orders/5"], HIGH)
    assert lag(coordinator, "billing", log) == 2  # new events count until examined
    coordinator.count_ahead(budget=1000)
    assert lag(coordinator, "billing", log) == 2


async def test_a_group_of_everything_counts_without_reading():
    async with node() as (replicated, coordinator):
        await check_everything(replicated, coordinator)


async def check_everything(replicated: ReplicatedLog, coordinator: GroupCoordinator) -> None:
    log = replicated.event_log
    await coordinator.join("all", settings("#"))
    await commit_records(replicated, 0, ["a", "b/c", "d"], HIGH)
    coordinator.count_ahead(budget=2)
    assert lag(coordinator, "all", log) == 3
    coordinator.count_ahead(budget=2)
    assert lag(coordinator, "all", log) == 3
