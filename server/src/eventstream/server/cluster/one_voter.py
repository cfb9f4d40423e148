"""The replicated log of one node, built once: entry log -> Raft log adapter -> driver -> applier.

A node that runs alone is a Raft group of one voter on exactly the path a
replicated node uses: the same :class:`~.entry_raft_log.EntryRaftLog`,
:class:`~.node.RaftDriver` and applier, with a transport that has no peers
(:class:`~.alone.NoPeers`). With one voter an entry commits once it is
durable locally. The composition root and the tests build it here, so there
is one way to put it together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from eventstream.server.raft import Config, Membership

from ..broker.applier import EntryApplier
from ..broker.group_state import GroupTable
from ..native import DedupTable, NativeWire
from ..storage.entry_api import EntryLog, LogHalted
from .alone import NoPeers
from .entry_raft_log import EntryRaftLog
from .node import RaftDriver
from .ports import Transport
from .proposer import LogProposer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplicatedLog:
    """The parts of one node's replicated log."""

    event_log: EntryLog
    raft_log: EntryRaftLog
    applier: EntryApplier
    driver: RaftDriver
    proposer: LogProposer

    async def lead(self, timeout: float) -> None:
        """Start the driver, win the (one-voter) election and apply everything the log holds.

        Raises:
            TimeoutError: not leading with the log applied within ``timeout`` seconds.
        """
        driver = self.driver
        await driver.start()
        driver.campaign()
        async with asyncio.timeout(timeout):
            await driver.wait_until(lambda: driver.is_leader)
            await driver.wait_applied(driver.last_index)
        log.info("leading term %d; log applied up to entry %d (de-duplication: %d event ids "
                 "restored from the log)", driver.term, driver.applied_index,
                 len(self.applier.window))

    async def stop(self) -> None:
        """Stop the driver (the entry log stays open: its owner closes it)."""
        await self.driver.stop()


def one_voter(event_log: EntryLog, raft: Config, window: DedupTable, *,
              tick_seconds: float, snapshot_bytes: int = 0,
              on_halt: Callable[[BaseException], None] | None = None,
              transport: Transport | None = None,
              voters: frozenset[str] | None = None) -> ReplicatedLog:
    """Build the replicated log of a node alone in its group (see the module docstring).

    A replicated node (``cluster.replicated``) builds the same parts with its
    peer transport and the cluster's initial voters.

    Args:
        event_log: the entry log, opened.
        raft: the Raft core's settings (its ``node_id`` is the only voter).
        window: the de-duplication window the applier fills.
        tick_seconds: the real time of one Raft tick.
        snapshot_bytes: the applier asks for a snapshot after this many bytes of entries.
        on_halt: called once with the error when the driver halts.
        transport: the peer transport (none: :class:`~.alone.NoPeers`).
        voters: the initial voters of a new log (default: this node alone).
    """
    wire = NativeWire()
    applier = EntryApplier(event_log, wire, window, GroupTable(event_log.partitions),
                           snapshot_bytes=snapshot_bytes)
    raft_log = EntryRaftLog(event_log, wire, Membership(voters or frozenset({raft.node_id})))
    raft_log.scanner, raft_log.on_scanned = wire, applier.expect_scanned
    driver = RaftDriver(raft, raft_log, transport or NoPeers(), applier, tick_seconds=tick_seconds,
                        on_halt=on_halt, expected_errors=(LogHalted,))
    applier.request_snapshot = driver.request_snapshot
    return ReplicatedLog(event_log, raft_log, applier, driver, LogProposer(driver, raft_log))


__all__ = ["ReplicatedLog", "one_voter"]
