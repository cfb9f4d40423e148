"""One suite, both transports: the fake hub and the real gRPC transport on 127.0.0.1.

Three Raft drivers with in-memory logs elect a leader, replicate a steady
stream of proposals (many in flight at once) applied in order with the same
bytes everywhere, survive the leader being cut off (it steps down, the
others elect and commit, healing converges), and bring a follower that
fell behind a compacted log up to date with a snapshot. With gRPC, the
cut is real: every link goes through a TCP proxy that resets its
connections and refuses new ones.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from eventstream.server.raft import EntryKind, NotLeaderError, Role
from eventstream.server.testing.grpc_network import GrpcNetwork
from eventstream.server.testing.raft_cluster import LocalCluster
from eventstream.server.testing.raft_hub import FakeHub

IDS = ("n1", "n2", "n3")
SNAPSHOT_CHUNK = 16 * 1024


class HubNetwork:
    """The fake hub behind the same three calls as :class:`GrpcNetwork`."""

    def __init__(self) -> None:
        self.hub = FakeHub(seed=3)
        self.transports = {node_id: self.hub.transport(node_id) for node_id in IDS}

    async def start(self):
        return self.transports

    def isolate(self, node_id: str) -> None:
        self.hub.isolate(node_id)

    def heal(self) -> None:
        self.hub.heal()

    async def stop(self) -> None:
        self.hub.close()


@pytest.fixture(params=["hub", "grpc"])
async def network(request) -> AsyncIterator[HubNetwork | GrpcNetwork]:
    network = HubNetwork() if request.param == "hub" else GrpcNetwork(
        IDS, snapshot_chunk_bytes=SNAPSHOT_CHUNK)
    try:
        yield network
    finally:
        await network.stop()


@pytest.fixture
async def cluster(network) -> AsyncIterator[LocalCluster]:
    # 50 ms ticks: an election timeout of 0.5-1 s, robust to a busy shared machine.
    cluster = LocalCluster(await network.start(), tick_seconds=0.05)
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


async def test_a_leader_is_elected_and_known_to_all(cluster: LocalCluster):
    leader = await cluster.wait_for_leader()
    assert sum(driver.role is Role.LEADER for driver in cluster.drivers.values()) == 1
    for driver in cluster.drivers.values():
        if driver is not leader:
            with pytest.raises(NotLeaderError) as refused:
                driver.propose_many([(EntryKind.EVENTS, b"x")])
            assert refused.value.leader_hint == leader.node_id


async def test_a_steady_stream_of_proposals_is_applied_in_order_everywhere(cluster: LocalCluster):
    leader = await cluster.wait_for_leader()
    term = leader.term
    payloads = [os.urandom(32) + b"%d" % number for number in range(600)]
    waiting = []
    for start in range(0, len(payloads), 3):
        indexes = leader.propose_many([(EntryKind.EVENTS, data) for data in payloads[start:start + 3]])
        waiting.append(asyncio.ensure_future(leader.wait_applied(indexes[-1], term)))
        if len(waiting) % 20 == 0:
            await asyncio.sleep(0)  # publishers arrive over time, not all in one loop turn
    async with asyncio.timeout(60):
        await asyncio.gather(*waiting)
    last = leader.last_index
    await cluster.wait_applied_everywhere(last)
    for applier in cluster.appliers.values():
        assert applier.payloads() == payloads
        assert [entry.index for entry in applier.entries] == list(range(1, len(applier.entries) + 1))


async def test_a_cut_off_leader_steps_down_the_rest_elect_and_healing_converges(
        network, cluster: LocalCluster):
    old = await cluster.wait_for_leader()
    old_term = old.term
    await cluster.propose(b"before")
    network.isolate(old.node_id)
    rest = [node_id for node_id in IDS if node_id != old.node_id]
    new = await cluster.wait_for_leader(rest, other_than=old.node_id)
    await cluster.wait_until(lambda: old.role is not Role.LEADER)  # check-quorum
    assert new.term > old_term
    committed = await cluster.propose(b"during", among=rest)
    assert old.applied_index < committed
    network.heal()
    await cluster.wait_applied_everywhere(committed)
    after = await cluster.propose(b"after")
    await cluster.wait_applied_everywhere(after)
    for applier in cluster.appliers.values():
        assert applier.payloads() == [b"before", b"during", b"after"]


async def test_a_follower_behind_a_compacted_log_is_sent_a_snapshot(network, cluster: LocalCluster):
    leader = await cluster.wait_for_leader()
    lagging = next(node_id for node_id in IDS if node_id != leader.node_id)
    network.isolate(lagging)
    rest = [node_id for node_id in IDS if node_id != lagging]
    last = 0
    for number in range(5):
        last = await cluster.propose(b"e%d" % number, among=rest)
    # The leader's application takes a snapshot (larger than one chunk) and
    # the log before it is compacted away.
    storage = cluster.logs[leader.node_id].storage
    data = os.urandom(5 * SNAPSHOT_CHUNK + 123)
    storage.create_snapshot(last, leader.status().membership, data)
    storage.compact(last)
    network.heal()
    follower = cluster.appliers[lagging]
    await cluster.wait_until(lambda: bool(follower.restored))
    assert follower.restored[-1].index == last and follower.restored[-1].data == data
    if isinstance(network, GrpcNetwork):  # it went through the chunked InstallSnapshot stream
        stats = network.transports[leader.node_id].link_stats()[lagging]
        await cluster.wait_until(lambda: stats.snapshots_sent >= 1)
    after = await cluster.propose(b"after-snapshot")
    await cluster.wait_applied_everywhere(after)
    assert follower.payloads()[-1] == b"after-snapshot"
