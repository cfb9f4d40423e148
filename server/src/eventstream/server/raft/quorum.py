"""Majority arithmetic: what a set of voters has committed, and who won a vote.

Pure: no I/O, clock or randomness. Voter sets are small (3 or 5), so these
sort instead of keeping incremental structures; ``tests/unit/raft`` checks
them against a naive count over every candidate index.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from enum import Enum


class VoteResult(Enum):
    """The outcome of a vote so far."""

    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def majority(voter_count: int) -> int:
    """How many voters make a majority of ``voter_count``."""
    return voter_count // 2 + 1


def committed_index(voters: Collection[str], acked: Callable[[str], int]) -> int:
    """The highest index that a majority of ``voters`` has acknowledged.

    ``acked(voter)`` is the highest index that voter is known to store.
    No voters commit nothing (0).
    """
    if len(voters) <= 1:  # no voters commit nothing; one voter, what it stores
        return next(map(acked, voters), 0)
    indexes = sorted(map(acked, voters), reverse=True)
    return indexes[majority(len(indexes)) - 1]


def vote_result(voters: Collection[str], votes: Mapping[str, bool]) -> VoteResult:
    """Whether ``votes`` (voter -> granted) already decide an election among ``voters``.

    Votes from nodes that are not voters are ignored.
    """
    need = majority(len(voters))
    granted = rejected = 0
    for voter in voters:
        vote = votes.get(voter)
        if vote is True:
            granted += 1
        elif vote is False:
            rejected += 1
    if granted >= need:
        return VoteResult.WON
    if len(voters) - rejected < need:
        return VoteResult.LOST
    return VoteResult.PENDING


def has_quorum(voters: Collection[str], present: Collection[str]) -> bool:
    """Whether the nodes in ``present`` include a majority of ``voters``."""
    return sum(1 for voter in voters if voter in present) >= majority(len(voters))
