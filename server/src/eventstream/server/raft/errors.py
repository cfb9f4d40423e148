"""Errors the Raft core raises to its caller.

Pure: exception classes only. Protocol rejections (a refused vote, a
rejected append) are messages, not exceptions; storage errors are described
in ``storage.py``.
"""

from __future__ import annotations


class NotLeaderError(Exception):
    """A proposal, transfer or read was refused because this node is not (or no longer) leading.

    ``leader_hint`` is the node to forward to when one is known: the current
    leader, or the target of a leadership transfer in progress. None while
    no leader is known (retry after a short wait).
    """

    def __init__(self, leader_hint: str | None, reason: str = "not the leader") -> None:
        super().__init__(f"{reason} (leader hint: {leader_hint or 'unknown'})")
        self.leader_hint = leader_hint
        self.reason = reason


class RaftInvariantError(Exception):
    """Input contradicts an invariant Raft guarantees (a bug, or storage that lost data).

    The node cannot continue safely and must stop.
    """
