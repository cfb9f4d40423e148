"""A :class:`~.ports.RaftLog` in memory, over ``raft.MemoryStorage``.

For tests, the simulation of a cluster in one process and benchmarks:
nothing survives the process. It keeps the port's ordering contract and
counts what it did, so tests can see group commit (several proposals per
sync) and storage failures (``fail_with``) halt the driver.
"""

from __future__ import annotations

import asyncio

from eventstream.server.raft import Membership, MemoryStorage, Ready, Snapshot


class MemoryRaftLog:
    """A node's Raft log and hard state, kept in a ``MemoryStorage``.

    Args:
        membership: the initial voters for a node of a new group; None for a
            node that joins later (see ``raft.MemoryStorage``).
        sync_seconds: time a ``must_sync`` persist takes, like an fsync
            (0: returns at once, after yielding to the loop).
    """

    def __init__(self, membership: Membership | None = None, sync_seconds: float = 0.0) -> None:
        self._storage = MemoryStorage(membership)
        self._sync_seconds = sync_seconds
        self.syncs = 0
        """Persists that had to be durable (``must_sync``)."""
        self.entries_persisted = 0
        """Entries stored (including ones a later leader overwrote)."""
        self.fail_with: BaseException | None = None
        """TEST ONLY: the next persist or snapshot raises this (and every one after)."""

    @property
    def storage(self) -> MemoryStorage:
        """The read-only port of the core (and the writes, for tests)."""
        return self._storage

    async def persist(self, ready: Ready) -> None:
        """Store the snapshot, entries and hard state of ``ready`` (see ``RaftLog.persist``)."""
        self._check()
        storage = self._storage
        if ready.snapshot is not None:
            storage.apply_snapshot(ready.snapshot)
        if ready.entries:
            storage.append(ready.entries)
            self.entries_persisted += len(ready.entries)
        if ready.hard_state is not None:
            storage.set_hard_state(ready.hard_state)
        if ready.must_sync:
            self.syncs += 1
            # A real fsync gives the loop away for its duration: proposals
            # made meanwhile go into the next Ready.
            await asyncio.sleep(self._sync_seconds)

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` and compact the entries it covers (see ``RaftLog.save_snapshot``)."""
        self._check()
        storage = self._storage
        storage.create_snapshot(snapshot.index, snapshot.membership, snapshot.data)
        storage.compact(snapshot.index)

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with
