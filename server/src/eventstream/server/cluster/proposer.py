"""The broker's ``Proposer`` over the Raft driver and the entry log port.

An EVENTS round arrives encoded (index, term, CRC and all) by the
sequencer: its bytes are staged with :class:`~.entry_raft_log.EntryRaftLog`
(which writes them as they are) and its payload, a view into the same
buffer, is what the Raft core holds and would send to followers. Other
entries are proposed as payloads. The driver's errors become the broker's
(``broker.proposals``), so the broker never sees the shell's types.
"""

from __future__ import annotations

from collections.abc import Callable

from eventstream.server.raft import EntryKind as RaftKind
from eventstream.server.raft import NotLeaderError, Role

from ..broker.proposals import NotLeader, ProposalLost, WritesHalted
from ..storage.entries import ENTRY_HEADER_SIZE, EntryBatch, EntryKind
from ..storage.entry_api import LogHalted
from .entry_raft_log import EntryRaftLog
from .errors import DriverStopped, ProposalDropped
from .node import RaftDriver


class LogProposer:
    """Implements ``broker.proposals.Proposer`` (see the module docstring).

    Args:
        driver: the node's Raft driver.
        raft_log: its log port over the entry log.
    """

    def __init__(self, driver: RaftDriver, raft_log: EntryRaftLog) -> None:
        self._driver = driver
        self._raft_log = raft_log

    @property
    def is_leader(self) -> bool:
        """Whether this node leads and is not handing leadership over."""
        driver = self._driver
        return driver.running and driver.role is Role.LEADER and driver.transferring_to is None

    @property
    def term(self) -> int:
        """The current term."""
        return self._driver.term

    @property
    def last_index(self) -> int:
        """The core's last index (persisted or not)."""
        return self._driver.last_index

    @property
    def appended_index(self) -> int:
        """The last index handed to the entry log."""
        return self._raft_log.appended_index

    async def wait_appended(self, index: int) -> None:
        """See ``Proposer.wait_appended``."""
        try:
            await self._raft_log.wait_appended(index)
        except LogHalted as error:
            raise WritesHalted(str(error)) from None

    def propose_events(self, batch: EntryBatch) -> None:
        """See ``Proposer.propose_events``."""
        driver = self._driver
        index = batch.first_index
        if batch.count != 1 or index != driver.last_index + 1 or batch.terms[0] != driver.term:
            raise ValueError(f"an EVENTS round encoded for entry {index} of term "
                             f"{batch.terms[0] if batch.count else '?'}; the next entry is "
                             f"{driver.last_index + 1} of term {driver.term}")
        payload = memoryview(batch.data)[ENTRY_HEADER_SIZE:batch.ends[0]]
        self._raft_log.stage(batch)
        try:
            driver.propose_many(((RaftKind.EVENTS, payload),))
        except (NotLeaderError, DriverStopped) as error:
            self._raft_log.unstage(index)
            raise self._refusal(error) from None
        except BaseException:
            self._raft_log.unstage(index)
            raise

    def propose(self, kind: EntryKind, payload: bytes) -> tuple[int, int]:
        """See ``Proposer.propose``."""
        driver = self._driver
        indexes = self._call(lambda: driver.propose_many([(RaftKind(kind), payload)]))
        return indexes[0], driver.term

    async def wait_applied(self, index: int, term: int) -> None:
        """See ``Proposer.wait_applied``."""
        try:
            await self._driver.wait_applied(index, term)
        except ProposalDropped as error:
            raise ProposalLost(str(error)) from None
        except DriverStopped as error:
            raise WritesHalted(str(error)) from None

    @staticmethod
    def _call(propose: Callable[[], range]) -> range:
        try:
            return propose()
        except (NotLeaderError, DriverStopped) as error:
            raise LogProposer._refusal(error) from None

    @staticmethod
    def _refusal(error: NotLeaderError | DriverStopped) -> NotLeader | WritesHalted:
        """The broker's error for the driver's."""
        if isinstance(error, NotLeaderError):
            return NotLeader(error.leader_hint)
        return WritesHalted(str(error))


__all__ = ["LogProposer"]
