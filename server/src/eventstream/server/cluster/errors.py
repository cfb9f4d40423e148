"""What the Raft driver raises to the write path and other callers.

Pure: exception classes. ``raft.NotLeaderError`` (with its ``leader_hint``)
is raised as it is by the propose calls, ``transfer_leadership`` and
``read_index``.
"""

from __future__ import annotations


class DriverStopped(Exception):
    """The driver is not running (not started yet, or stopped); nothing was done."""


class DriverHalted(DriverStopped):
    """The driver stopped after an error (``cause``); the node takes no more writes until restarted.

    A storage error, an applier error or a broken Raft invariant halts the
    driver: a Raft node cannot go on with a log it failed to write.
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"the Raft driver halted: {cause!r}")
        self.cause = cause


class ProposalDropped(Exception):
    """The entry proposed at ``index`` in ``term`` was replaced: another leader's entry was committed there.

    The proposal was not applied and will never be; it is safe to propose
    it again (to the current leader).
    """

    def __init__(self, index: int, term: int, committed_term: int) -> None:
        super().__init__(f"entry {index} of term {term} was dropped: the committed entry {index} "
                         f"is of term {committed_term}")
        self.index = index
        self.term = term
        self.committed_term = committed_term


class TooManyReads(Exception):
    """Too many linearizable reads are waiting for their read index; retry later."""


class SnapshotUnavailable(Exception):
    """A snapshot cannot be sent now (the log moved past it, or its transfer is over the limit)."""
