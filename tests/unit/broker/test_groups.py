"""The group coordinator's bookkeeping: whose acks count, idle expiry, the group bound."""

from __future__ import annotations

from array import array

import pytest

from eventstream.server.broker.groups import GroupCoordinator, GroupSettings, StoredGroup
from eventstream.server.errors import EventStreamError
from eventstream.server.storage.log import RecordBatch
from eventstream.server.storage.memory_log import MemoryLog


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


async def one_partition_log(count: int) -> MemoryLog:
    """A log of one partition holding ``count`` records on topic ``t``."""
    data, ends, spans = b"", array("I"), array("I")
    for i in range(count):
        spans.extend((len(data), 1))
        data += b"t%d" % i
        ends.append(len(data))
    log = MemoryLog(1, 1 << 20)
    if not count:
        return log
    log.append(0, RecordBatch(data, 0, memoryview(ends), memoryview(spans), bytes(count), data), 1)
    await log.commit()
    log.publish()
    return log


def coordinator(log: MemoryLog, clock: Clock, **options) -> GroupCoordinator:
    return GroupCoordinator(log, _NoDeadLetters(), clock, **options)


async def test_acks_and_nacks_count_only_for_the_member_that_holds_the_events():
    clock = Clock()
    groups = coordinator(await one_partition_log(5), clock)
    holder = groups.join("g", SETTINGS)
    other = groups.join("g", SETTINGS)
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
    groups = coordinator(await one_partition_log(4), clock)
    member = groups.join("g", SETTINGS)
    assert groups.take(member, 10, 1 << 20)[1] == 4
    clock.now += 11 * SECOND
    groups.expire()                                # past the deadline: waiting to go again
    assert groups.ack(member, [(0, 0), (0, 1)]) == 2
    groups.nack(member, [(0, 2)])                  # on its way again anyway: not ignored
    assert member.group.ignored == 0
    assert groups.take(member, 10, 1 << 20)[1] == 2         # offsets 2 and 3 only
    successor = groups.join("g", SETTINGS)
    groups.leave(member)                           # what it held goes to the successor
    assert groups.take(successor, 10, 1 << 20)[1] == 2
    assert groups.ack(member, [(0, 3)]) == 0 and member.group.ignored == 1


async def test_groups_without_members_expire_and_their_number_is_bounded():
    clock = Clock()
    stored = {"kept": StoredGroup([0], clock.now - 5 * SECOND),
              "stale": StoredGroup([0], clock.now - 50 * SECOND)}
    groups = coordinator(await one_partition_log(0), clock, stored=stored, max_groups=3,
                         idle_expiry_ns=30 * SECOND)
    assert groups.expire_idle() == ["stale"] and groups.count == 1
    first = groups.join("first", SETTINGS)
    groups.join("second", SETTINGS)
    with pytest.raises(EventStreamError) as refused:
        groups.join("third", SETTINGS)
    assert refused.value.reason == "GROUPS_LIMIT" and "groups.max_groups" in refused.value.message
    groups.join("kept", SETTINGS)                  # a stored group is no new group
    groups.leave(first)
    clock.now += 29 * SECOND
    assert groups.expire_idle() == []
    clock.now += 2 * SECOND
    assert groups.expire_idle() == ["first"]
    assert sorted(groups.groups) == ["kept", "second"]
    groups.join("third", SETTINGS)
