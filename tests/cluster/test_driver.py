"""The Raft driver with three nodes in one process on the fake hub.

Elections, replication, refusals on followers, a partitioned leader stepping
down, group commit under a slow fsync, a storage error halting the node,
reads, leadership transfer, and convergence through a lossy, reordering
network. Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import AsyncIterator

import pytest

from eventstream.server.cluster import DriverHalted, DriverStopped, MemoryRaftLog, ProposalDropped, RaftDriver
from eventstream.server.raft import (
    Config,
    EntryKind,
    Heartbeat,
    Membership,
    NotLeaderError,
    Role,
)
from eventstream.server.testing.raft_cluster import LocalCluster, RecordingApplier
from eventstream.server.testing.raft_hub import FakeHub

IDS = ("n1", "n2", "n3")
EVENTS = EntryKind.EVENTS


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    hub = FakeHub(seed=7)
    yield hub
    hub.close()


async def started(hub: FakeHub, **options) -> LocalCluster:
    cluster = LocalCluster({node_id: hub.transport(node_id) for node_id in IDS}, **options)
    await cluster.start()
    return cluster


@pytest.fixture
async def cluster(hub: FakeHub) -> AsyncIterator[LocalCluster]:
    cluster = await started(hub)
    yield cluster
    await cluster.stop()


def followers(cluster: LocalCluster, leader: RaftDriver) -> list[RaftDriver]:
    return [driver for driver in cluster.drivers.values() if driver is not leader]


async def test_three_nodes_elect_one_leader_all_agree_on(cluster: LocalCluster):
    leader = await cluster.wait_for_leader()
    assert [d.node_id for d in cluster.drivers.values() if d.role is Role.LEADER] == [leader.node_id]
    assert {d.leader_id for d in cluster.drivers.values()} == {leader.node_id}
    assert leader.elections_won == 1


async def test_committed_entries_are_applied_in_order_with_identical_bytes_on_every_node(
        cluster: LocalCluster):
    leader = await cluster.wait_for_leader()
    payloads = [b"entry-%d" % number * (number % 7 + 1) for number in range(60)]
    last = 0
    for start in range(0, len(payloads), 6):  # batches of six through one call
        indexes = leader.propose_many([(EVENTS, data) for data in payloads[start:start + 6]])
        assert len(indexes) == 6
        assert indexes.start == last + 1 or last == 0  # the first batch follows the leader's no-op
        last = indexes[-1]
    await leader.wait_applied(last, leader.term)
    await cluster.wait_applied_everywhere(last)
    logs = {node_id: applier.entries[:last] for node_id, applier in cluster.appliers.items()}
    assert logs["n1"] == logs["n2"] == logs["n3"]
    assert cluster.appliers["n1"].payloads() == payloads
    assert [entry.index for entry in logs["n1"]] == list(range(1, last + 1))


async def test_a_proposal_on_a_follower_is_refused_with_the_leader_as_hint(cluster: LocalCluster):
    leader = await cluster.wait_for_leader()
    for follower in followers(cluster, leader):
        with pytest.raises(NotLeaderError) as refused:
            follower.propose_many([(EVENTS, b"x")])
        assert refused.value.leader_hint == leader.node_id


async def test_a_partitioned_leader_steps_down_and_the_majority_elects_and_commits(
        hub: FakeHub, cluster: LocalCluster):
    old = await cluster.wait_for_leader()
    await cluster.propose(b"before")
    hub.isolate(old.node_id)
    majority = [node_id for node_id in IDS if node_id != old.node_id]
    new = await cluster.wait_for_leader(majority, other_than=old.node_id)
    assert new.term > old.term or old.role is not Role.LEADER
    # Check-quorum: the old leader hears from nobody and steps down on its own.
    await cluster.wait_until(lambda: old.role is not Role.LEADER)
    with pytest.raises(NotLeaderError):
        old.propose_many([(EVENTS, b"refused")])
    index = await cluster.propose(b"during", among=majority)
    hub.heal()
    await cluster.wait_applied_everywhere(index)
    assert cluster.appliers[old.node_id].payloads() == [b"before", b"during"]


async def test_an_entry_proposed_by_a_cut_off_leader_is_dropped_when_another_term_commits_there(
        hub: FakeHub, cluster: LocalCluster):
    old = await cluster.wait_for_leader()
    await cluster.propose(b"before")
    hub.isolate(old.node_id)
    indexes = old.propose_many([(EVENTS, b"lost")])  # appended, never replicated
    waiting = asyncio.ensure_future(old.wait_applied(indexes[-1], old.term))
    majority = [node_id for node_id in IDS if node_id != old.node_id]
    committed = [await cluster.propose(b"won-%d" % number, among=majority) for number in range(3)]
    assert committed[-1] >= indexes[-1]
    hub.heal()
    with pytest.raises(ProposalDropped) as dropped:
        async with asyncio.timeout(30):
            await waiting
    assert dropped.value.index == indexes[-1]
    await cluster.wait_applied_everywhere(committed[-1])
    assert b"lost" not in cluster.appliers[old.node_id].payloads()


async def test_proposals_made_during_a_slow_fsync_are_persisted_together(hub: FakeHub):
    cluster = await started(hub, sync_seconds=0.02)
    try:
        leader = await cluster.wait_for_leader()
        raft_log = cluster.logs[leader.node_id]
        syncs_before = raft_log.syncs
        last = 0
        term = leader.term
        for number in range(200):
            last = leader.propose_many([(EVENTS, b"p%d" % number)])[-1]
            await asyncio.sleep(0)  # let the driver run between proposals, as separate publishers would
        await leader.wait_applied(last, term)
        syncs = raft_log.syncs - syncs_before
        # One proposal per sync would be 200 syncs; a 20 ms fsync gathers many.
        assert syncs * 10 < 200, f"{syncs} syncs for 200 proposals"
    finally:
        await cluster.stop()


async def test_a_storage_error_halts_the_node_its_waiters_and_its_writes(hub: FakeHub, cluster: LocalCluster):
    leader = await cluster.wait_for_leader()
    await cluster.propose(b"ok")
    failure = OSError(errno.EIO, "injected")
    cluster.logs[leader.node_id].fail_with = failure
    indexes = leader.propose_many([(EVENTS, b"never")])
    with pytest.raises(DriverHalted) as halted:
        async with asyncio.timeout(30):
            await leader.wait_applied(indexes[-1])
    assert halted.value.cause is failure
    assert leader.halted is failure and not leader.running
    with pytest.raises(DriverHalted):
        leader.propose_many([(EVENTS, b"after")])
    # The others go on without it.
    others = [node_id for node_id in IDS if node_id != leader.node_id]
    await cluster.wait_for_leader(others, other_than=leader.node_id)
    await cluster.propose(b"later", among=others)


async def test_a_failing_applier_halts_the_node(hub: FakeHub, cluster: LocalCluster):
    leader = await cluster.wait_for_leader()
    broken = cluster.appliers[leader.node_id]

    async def fail(entries):
        raise RuntimeError("applier broke")

    broken.apply = fail  # type: ignore[method-assign]
    leader.propose_many([(EVENTS, b"x")])
    await cluster.wait_until(lambda: leader.halted is not None)
    assert isinstance(leader.halted, RuntimeError)


async def test_read_index_on_leader_and_follower_covers_every_acknowledged_write(cluster: LocalCluster):
    written = await cluster.propose(b"w")
    for driver in cluster.drivers.values():
        async with asyncio.timeout(30):
            index = await driver.read_index()
        assert index >= written
        assert driver.applied_index >= index


async def test_reads_pending_when_leadership_changes_are_refused(hub: FakeHub, cluster: LocalCluster):
    leader = await cluster.wait_for_leader()
    await cluster.propose(b"w")
    follower = followers(cluster, leader)[0]
    hub.isolate(follower.node_id)  # its read request never reaches the leader
    read = asyncio.ensure_future(follower.read_index())
    with pytest.raises(NotLeaderError):
        async with asyncio.timeout(30):
            await read  # the cut-off follower loses its leader, then campaigns
    hub.heal()


async def test_leadership_moves_to_the_node_asked_for(cluster: LocalCluster):
    leader = await cluster.wait_for_leader()
    await cluster.propose(b"w")
    target = followers(cluster, leader)[-1]
    leader.transfer_leadership(target.node_id)
    new = await cluster.wait_for_leader(other_than=leader.node_id)
    assert new is target


async def test_replication_converges_through_loss_delay_and_reordering(hub: FakeHub):
    for a in IDS:
        for b in IDS:
            if a != b:
                hub.drop(a, b, 0.1)
                hub.delay(a, b, 0.001, jitter=0.01)
    cluster = await started(hub)
    try:
        last = 0
        for number in range(40):
            last = await cluster.propose(b"m%d" % number)
        await cluster.wait_applied_everywhere(last)
        applied = [applier.payloads() for applier in cluster.appliers.values()]
        assert applied[0] == applied[1] == applied[2]
        assert applied[0][-1] == b"m39" and len(applied[0]) == 40
        assert hub.lost > 0  # the faults were real
    finally:
        await cluster.stop()


async def test_messages_for_another_node_or_group_are_dropped_and_counted(cluster: LocalCluster):
    driver = cluster.drivers["n1"]
    await driver.deliver([Heartbeat(0, "n2", "n9", 1, 0), Heartbeat(5, "n2", "n1", 1, 0)])
    await cluster.wait_until(lambda: driver.dropped_messages == 2)


class BlockingLog(MemoryRaftLog):
    """A log whose persists wait until released."""

    def __init__(self, membership: Membership) -> None:
        super().__init__(membership)
        self.release = asyncio.Event()
        self.persisting = asyncio.Event()

    async def persist(self, ready) -> None:
        self.persisting.set()
        await self.release.wait()
        await super().persist(ready)


@contextlib.asynccontextmanager
async def stuck_in_persist(hub: FakeHub, inbox_batches: int) -> AsyncIterator[tuple[RaftDriver, BlockingLog]]:
    """A single voter whose first Ready waits in persist until ``release`` is set."""
    raft_log = BlockingLog(Membership(frozenset({"n1"})))
    driver = RaftDriver(Config("n1"), raft_log, hub.transport("n1"), RecordingApplier(),
                        tick_seconds=0.01, inbox_batches=inbox_batches)
    await driver.start()
    try:
        driver.campaign()  # a single voter wins at once; its Ready blocks in persist
        async with asyncio.timeout(30):
            await raft_log.persisting.wait()
        yield driver, raft_log
    finally:
        raft_log.release.set()
        await driver.stop()


async def test_delivery_waits_while_the_inbox_is_full(hub: FakeHub):
    async with stuck_in_persist(hub, inbox_batches=2) as (driver, raft_log):
        message = Heartbeat(0, "n2", "n1", 0, 0)
        assert driver.try_deliver([message]) and driver.try_deliver([message])
        assert not driver.try_deliver([message])
        third = asyncio.ensure_future(driver.deliver([message]))
        await asyncio.sleep(0)
        assert not third.done()
        raft_log.release.set()
        async with asyncio.timeout(30):
            await third


async def test_a_single_voter_commits_alone_and_stop_fails_later_calls(hub: FakeHub):
    applier = RecordingApplier()
    driver = RaftDriver(Config("solo"), MemoryRaftLog(Membership(frozenset({"solo"}))),
                        hub.transport("solo"), applier, tick_seconds=0.01)
    await driver.start()
    driver.campaign()
    await driver.wait_until(lambda: driver.is_leader)
    indexes = driver.propose_many([(EVENTS, b"a"), (EVENTS, b"b")])
    await driver.wait_applied(indexes[-1], driver.term)
    assert applier.payloads() == [b"a", b"b"]
    await driver.stop()
    with pytest.raises(DriverStopped):
        driver.propose_many([(EVENTS, b"c")])
    with pytest.raises(DriverStopped):
        await driver.wait_until(lambda: False)


async def test_a_transport_waiting_on_a_full_inbox_is_let_go_when_the_node_halts(hub: FakeHub):
    async with stuck_in_persist(hub, inbox_batches=1) as (driver, raft_log):
        message = Heartbeat(0, "n2", "n1", 0, 0)
        assert driver.try_deliver([message])
        blocked = asyncio.ensure_future(driver.deliver([message]))
        await asyncio.sleep(0)
        assert not blocked.done()
        raft_log.fail_with = OSError(errno.EIO, "injected")
        raft_log.release.set()  # the persist fails: the driver halts
        async with asyncio.timeout(30):
            await blocked
        assert driver.halted is not None and driver.dropped_messages >= 1
