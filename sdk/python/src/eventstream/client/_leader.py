"""Where a client's publishes go: its target, or the leader a node named.

Pure: no I/O. Every node of a replicated cluster takes publishes (a follower
forwards them to the leader), so the target always works; going to the
leader directly saves the follower's hop. A node names the leader in the
error ``NOT_LEADER`` (``leader_address``) and, for a publish it forwarded,
in the trailer ``eventstream-leader-address``. :class:`LeaderHint` decides,
after each answer, which address the next publish goes to; the clients keep
one channel per address (:data:`MAX_CHANNELS` at most).
:class:`PublishAttempts` is the retry loop of one publish around it, shared by
the blocking and the asyncio client: they only make the calls and wait.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from ._errors import EventStreamError, error_from_rpc
from ._retry import RetryBudget

LEADER_ADDRESS = "eventstream-leader-address"
"""Trailer in which a node names the leader's public gRPC ``host:port``."""
MAX_CHANNELS = 8
"""Channels to leaders a client keeps open at most (beyond, the oldest is closed)."""


def trailer_address(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The leader's address named in trailing ``metadata`` ("" when none)."""
    for key, value in metadata or ():
        if key == LEADER_ADDRESS:
            return value.decode() if isinstance(value, bytes) else value
    return ""


class LeaderHint:
    """The address publishes go to now, and how answers move it.

    Args:
        target: the client's own target (the fallback).
        prefer_leader: also follow the leader named in the trailers of a
            forwarded answer (without it, only a ``NOT_LEADER`` error moves
            publishes to the leader).
    """

    def __init__(self, target: str, prefer_leader: bool) -> None:
        self.target = target
        self.prefer_leader = prefer_leader
        self.leader: str | None = None
        """The leader's address publishes go to; None: the target."""

    @property
    def address(self) -> str:
        """Where the next publish goes."""
        return self.leader or self.target

    def answered(self, trailers: Iterable[tuple[str, str | bytes]] | None) -> None:
        """A publish succeeded: with ``prefer_leader``, follow the leader its trailers name."""
        if self.prefer_leader and self.leader is None:
            address = trailer_address(trailers)
            if address and address != self.target:
                self.leader = address

    def failed(self, error: EventStreamError, sent_to: str) -> bool:
        """A publish sent to ``sent_to`` failed; True when the next one goes to a new leader at once.

        ``NOT_LEADER`` naming another leader's address moves publishes there.
        Another UNAVAILABLE from the leader (it is gone) moves them back to
        the target, after the usual retry wait (False).
        """
        named = error.leader_address
        if error.reason == "NOT_LEADER" and named and named != sent_to:
            self.leader = None if named == self.target else named
            return True
        if sent_to == self.leader and error.code == grpc.StatusCode.UNAVAILABLE:
            self.leader = None
        return False


class PublishAttempts:
    """The attempts of one publish: where each goes, and what follows a failure.

    A client calls :meth:`next` before each attempt, then :meth:`answered`
    with the trailers of a success, or :meth:`failed` with the error, which
    says how long to wait before the next attempt (0: at once, to the leader
    a ``NOT_LEADER`` named) or raises the error when the budget is spent.

    Args:
        hint: the client's leader hint (moved by the answers).
        budget: the call's retry budget.
    """

    def __init__(self, hint: LeaderHint, budget: RetryBudget) -> None:
        self._hint = hint
        self._budget = budget
        self._sent_to = hint.address

    def next(self) -> tuple[str, float | None]:
        """The address of the next attempt and its timeout (None: no deadline)."""
        self._sent_to = self._hint.address
        return self._sent_to, self._budget.remaining()

    def answered(self, trailers: Iterable[tuple[str, str | bytes]] | None) -> None:
        """The attempt succeeded; its trailers may name the leader."""
        self._hint.answered(trailers)

    def failed(self, rpc_error: grpc.RpcError) -> float:
        """Seconds to wait before the next attempt (0.0: at once).

        Raises:
            EventStreamError: the attempt's error, when it is not retried.
        """
        error = error_from_rpc(rpc_error)
        moved = self._hint.failed(error, self._sent_to)
        wait = self._budget.wait_after(error)
        if wait is None:
            raise error from rpc_error
        return 0.0 if moved else wait


__all__ = ["LEADER_ADDRESS", "MAX_CHANNELS", "LeaderHint", "PublishAttempts", "trailer_address"]
