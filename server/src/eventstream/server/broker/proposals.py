"""What the broker needs from the replicated log: proposing entries and learning their fate.

Pure: a ``typing.Protocol`` and its exceptions. The broker is written against
:class:`Proposer`; the Raft shell implements it (``cluster.proposer``) over
the Raft driver and the entry log, so the broker never imports the shell.

Every method is called on the event loop thread. An entry proposed at
``(index, term)`` is committed when the entry applied at ``index`` has that
term; the applier reports each applied entry (:mod:`.applier`), so callers
that sequenced an entry learn its fate from there, in index order.
"""

from __future__ import annotations

from typing import Protocol

from ..storage.entries import EntryBatch, EntryKind


class ProposalRefused(Exception):
    """A proposal was not taken: this node does not lead, or its writes halted."""


class NotLeader(ProposalRefused):
    """This node is not the leader (or hands leadership over).

    Args:
        leader_hint: the node to send writes to, when one is known.
    """

    def __init__(self, leader_hint: str | None) -> None:
        super().__init__(f"this node is not the leader; the leader is {leader_hint or 'unknown'}")
        self.leader_hint = leader_hint


class WritesHalted(ProposalRefused):
    """The log takes no more writes: a storage error halted it, or it stopped."""


class ProposalLost(Exception):
    """Another term's entry was committed at the proposal's index: it will never commit."""


class Proposer(Protocol):
    """The leader side of the replicated log, as the write path and group coordinator use it."""

    @property
    def is_leader(self) -> bool:
        """Whether this node leads now (proposals are taken)."""
        ...

    @property
    def term(self) -> int:
        """The current term: the term the next proposal gets."""
        ...

    @property
    def last_index(self) -> int:
        """Index of the last entry in the log, persisted or not: the next proposal gets one more."""
        ...

    @property
    def appended_index(self) -> int:
        """Index of the last entry handed to the entry log (written or being written)."""
        ...

    async def wait_appended(self, index: int) -> None:
        """Return once :attr:`appended_index` reached ``index``.

        Raises:
            WritesHalted: the log halted or stopped first.
        """
        ...

    def propose_events(self, batch: EntryBatch) -> None:
        """Propose one EVENTS entry already encoded at ``last_index + 1`` with ``term``.

        The encoded bytes are what the log writes (no second copy).

        Raises:
            NotLeader: not the leader.
            WritesHalted: the log halted or stopped.
            ValueError: the batch is not one entry at the next index and term.
        """
        ...

    def propose(self, kind: EntryKind, payload: bytes) -> tuple[int, int]:
        """Propose one entry of ``kind`` (GROUPS, RETENTION); return its (index, term).

        Raises:
            NotLeader: not the leader.
            WritesHalted: the log halted or stopped.
        """
        ...

    async def wait_applied(self, index: int, term: int) -> None:
        """Return once the entry proposed at ``(index, term)`` is applied on this node.

        Raises:
            ProposalLost: another term's entry was committed there.
            WritesHalted: the log halted or stopped first.
        """
        ...


__all__ = ["NotLeader", "ProposalLost", "ProposalRefused", "Proposer", "WritesHalted"]
