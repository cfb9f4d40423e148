"""A consumer group's lag counts only the events its patterns match.

Over an in-memory log: events of other topics and of lower priority than the
group's minimum do not count once examined; events not examined yet count
(an upper bound), and the examination goes in bounded steps.
"""

from __future__ import annotations

from eventstream.server.broker.groups import GroupCoordinator, GroupSettings
from eventstream.server.storage.log import RecordBatch
from eventstream.server.storage.memory_log import MemoryLog


class _NoDeadLetters:
    """Takes events that reached max_deliveries and never settles them."""

    def move(self, *args: object) -> None:
        """Forget the event."""


HIGH, LOW = 3, 1


def settings(*patterns: str, min_priority: int = 0) -> GroupSettings:
    return GroupSettings(patterns=patterns, min_priority=min_priority, start_latest=False,
                         max_in_flight=1000, ack_deadline_ns=10**12, max_deliveries=5)


def committed(log: MemoryLog, topics: list[str], priority: int = HIGH) -> None:
    log.append(0, RecordBatch.of([t.encode() for t in topics], topics, bytes([priority]) * len(topics)), 0)
    log.publish()


def lag(coordinator: GroupCoordinator, name: str, log: MemoryLog) -> int:
    return coordinator.groups[name].lag([log.high_watermark(0)])


def coordinator_over(log: MemoryLog) -> GroupCoordinator:
    return GroupCoordinator(log, _NoDeadLetters(), lambda: 0)


def test_events_of_other_topics_leave_the_lag_once_examined():
    log = MemoryLog(1, 1 << 20)
    coordinator = coordinator_over(log)
    member = coordinator.join("billing", settings("orders/#"))
    coordinator.leave(member)  # a group whose members are away
    committed(log, ["sensors/a"] * 90 + ["orders/1"] * 10)
    assert lag(coordinator, "billing", log) == 100  # not examined yet: an upper bound
    coordinator.count_ahead(budget=60)
    assert lag(coordinator, "billing", log) == 40   # 60 examined, none matched; 40 to go
    coordinator.count_ahead(budget=60)
    assert lag(coordinator, "billing", log) == 10
    committed(log, ["sensors/b"] * 5)
    coordinator.count_ahead(budget=60)
    assert lag(coordinator, "billing", log) == 10


def test_a_member_reading_keeps_the_count_right():
    log = MemoryLog(1, 1 << 20)
    coordinator = coordinator_over(log)
    member = coordinator.join("billing", settings("orders/#", min_priority=HIGH))
    committed(log, ["orders/1", "sensors/a", "orders/2"])
    committed(log, ["orders/3"], priority=LOW)  # below the group's minimum
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
    committed(log, ["orders/4", "orders/5"])
    assert lag(coordinator, "billing", log) == 2  # new events count until examined
    coordinator.count_ahead(budget=1000)
    assert lag(coordinator, "billing", log) == 2


def test_a_group_of_everything_counts_without_reading():
    log = MemoryLog(1, 1 << 20)
    coordinator = coordinator_over(log)
    coordinator.join("all", settings("#"))
    committed(log, ["a", "b/c", "d"])
    coordinator.count_ahead(budget=2)
    assert lag(coordinator, "all", log) == 3
    coordinator.count_ahead(budget=2)
    assert lag(coordinator, "all", log) == 3
