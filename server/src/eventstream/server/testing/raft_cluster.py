"""A Raft group in one process: real drivers over in-memory logs, on any transport.

:class:`LocalCluster` builds one :class:`~eventstream.server.cluster.node.RaftDriver`
per node id, each with a :class:`~eventstream.server.cluster.memory_log.MemoryRaftLog`
and a :class:`RecordingApplier`, on the transports it is given (the fake hub's
or the gRPC transport). It waits on conditions, never for fixed times: every
wait takes a deadline.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from eventstream.server.cluster.errors import DriverStopped, ProposalDropped
from eventstream.server.cluster.memory_log import MemoryRaftLog
from eventstream.server.cluster.node import RaftDriver
from eventstream.server.cluster.ports import Transport
from eventstream.server.raft import Config, Entry, EntryKind, Membership, NotLeaderError, Snapshot


class ApplyOrderError(AssertionError):
    """An applier was given an entry out of index order."""


class RecordingApplier:
    """An application that keeps every entry applied to it and checks they come in order."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.applied_index = 0
        self.restored: list[Snapshot] = []

    async def apply(self, entries: Sequence[Entry]) -> None:
        """Record ``entries``; they must follow the last one applied."""
        for entry in entries:
            if entry.index != self.applied_index + 1:
                raise ApplyOrderError(f"entry {entry.index} applied after {self.applied_index}")
            self.applied_index = entry.index
        self.entries.extend(entries)

    async def restore(self, snapshot: Snapshot) -> None:
        """Start over from ``snapshot`` (its data is the applied index, in ASCII)."""
        self.restored.append(snapshot)
        self.applied_index = snapshot.index
        self.entries = [entry for entry in self.entries if entry.index <= snapshot.index]

    async def snapshot(self) -> bytes:
        """The applied index, as the application's state."""
        return b"%d" % self.applied_index

    def payloads(self, kind: EntryKind = EntryKind.EVENTS) -> list[bytes]:
        """The data of the applied entries of ``kind``, in order."""
        return [bytes(entry.data) for entry in self.entries if entry.kind is kind]


class LocalCluster:
    """Drivers for ``node_ids`` (all initial voters) on the given transports.

    Args:
        transports: node id -> that node's transport.
        tick_seconds: the drivers' tick.
        election_ticks: the core's election timeout, in ticks.
        seed: seeds every node's election jitter.
        sync_seconds: time each ``must_sync`` persist takes (a simulated fsync).
        make_applier: makes each node's application (default: a :class:`RecordingApplier`).
    """

    def __init__(self, transports: Mapping[str, Transport], *, tick_seconds: float = 0.02,
                 election_ticks: int = 10, seed: int = 0, sync_seconds: float = 0.0,
                 make_applier: Callable[[], Any] = RecordingApplier) -> None:
        membership = Membership(frozenset(transports))
        self.node_ids = sorted(transports)
        self.logs = {node_id: MemoryRaftLog(membership, sync_seconds) for node_id in self.node_ids}
        self.appliers: dict[str, Any] = {node_id: make_applier() for node_id in self.node_ids}
        """Each node's application (``RecordingApplier`` unless ``make_applier`` says otherwise)."""
        self.drivers = {
            node_id: RaftDriver(Config(node_id, election_ticks=election_ticks), self.logs[node_id],
                                transports[node_id], self.appliers[node_id], tick_seconds=tick_seconds,
                                rng=random.Random(seed * 1000 + number))
            for number, node_id in enumerate(self.node_ids)}

    async def start(self) -> None:
        """Start every driver."""
        for driver in self.drivers.values():
            await driver.start()

    async def stop(self) -> None:
        """Stop every driver."""
        for driver in self.drivers.values():
            await driver.stop()

    async def wait_for_leader(self, among: Iterable[str] | None = None, *, timeout: float = 30.0,
                              other_than: str | None = None) -> RaftDriver:
        """The leader, one of ``among`` (default: all), that every node of ``among`` knows.

        With ``other_than``, waits for a leader that is not that node.
        """
        names = list(among or self.node_ids)
        members = [self.drivers[node_id] for node_id in names]

        def agreed() -> str | None:
            leaders = {driver.leader_id for driver in members}
            leader = leaders.pop() if len(leaders) == 1 else None
            if leader is None or leader == other_than or leader not in names:
                return None
            driver = self.drivers[leader]
            return leader if driver.is_leader and driver.term == max(d.term for d in members) else None

        await self.wait_until(lambda: agreed() is not None, timeout=timeout)
        leader = agreed()
        assert leader is not None
        return self.drivers[leader]

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 30.0) -> None:
        """Return once ``predicate()`` holds; checked after every turn of a running driver's loop.

        Every driver turns at least once a tick, so this re-checks at least that often.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                running = [driver for driver in self.drivers.values() if driver.running]
                if not running:
                    raise RuntimeError("no driver is running")
                try:
                    await running[0].wait_until(predicate)
                except DriverStopped:
                    continue

    async def propose(self, data: bytes, *, timeout: float = 30.0,
                      among: Iterable[str] | None = None) -> int:
        """Propose ``data`` at the current leader (retrying through elections) until it is applied there."""
        async with asyncio.timeout(timeout):
            while True:
                leader = await self.wait_for_leader(among, timeout=timeout)
                try:
                    indexes = leader.propose_many([(EntryKind.EVENTS, data)])
                    term = leader.term
                    await leader.wait_applied(indexes[-1], term)
                    return indexes[-1]
                except (NotLeaderError, ProposalDropped, DriverStopped):
                    continue  # an election, or that node stopped: ask the next leader

    async def wait_applied_everywhere(self, index: int, *, among: Iterable[str] | None = None,
                                      timeout: float = 30.0) -> None:
        """Return once every node of ``among`` (default: all) applied ``index``."""
        async with asyncio.timeout(timeout):
            for node_id in among or self.node_ids:
                driver = self.drivers[node_id]
                await driver.wait_until(_applied_at_least(driver, index))


def _applied_at_least(driver: RaftDriver, index: int) -> Callable[[], bool]:
    return lambda: driver.applied_index >= index
