"""The administrative half of eventstream.v1.ClusterService: membership changes and leadership.

AddMember, PromoteLearner, RemoveMember and TransferLeadership are served by
the leader only (a follower raises ``NOT_LEADER`` naming the leader, through
the node's write gate). A membership change is one ``MEMBERSHIP`` entry
proposed to the Raft core; the call returns once the leader applied it
(every node applies it too, in log order). Each refusal names its field and
has its own reason (``errors.KINDS``): an unknown node, a member added
twice, a change while another is not applied yet, the last voter, a learner
too far behind to be promoted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from ..errors import EventStreamError
from ..observability.metrics import Metrics
from ..raft import (
    Membership,
    MembershipChange,
    MembershipError,
    MembershipOp,
    NotLeaderError,
    Status,
)

MAX_NODE_ID_BYTES = 255
"""Longest node id accepted (the peer protocol's metadata limit)."""
MAX_ADDRESS_BYTES = 255
"""Longest cluster address accepted."""
CHANGES = {MembershipOp.ADD_LEARNER: "add_learner", MembershipOp.PROMOTE_LEARNER: "promote",
           MembershipOp.REMOVE_NODE: "remove"}
"""The ``change`` label of each membership operation."""
ORIGINS = {"admin": ("add_learner", "promote", "remove"), "join": ("add_learner", "remove"),
           "rejoin": ("remove", "add_learner"), "leave": ("remove",), "auto_promote": ("promote",)}
"""Who asks for membership changes (the ``origin`` label), and which changes each asks for
(counted from zero). ``join`` removes a learner back at another address before adding it."""
DEFAULT_MAX_LAG = 1000
"""Entries a learner may be behind the leader's last index and still be promoted (max_lag 0)."""
APPLY_TIMEOUT_SECONDS = 10.0
"""How long a change may take to be committed and applied before the call gives up."""


class AdminDriver(Protocol):
    """What the admin RPCs use of the node's Raft driver (``cluster.node.RaftDriver``)."""

    @property
    def membership(self) -> Membership: ...

    @property
    def membership_pending(self) -> bool: ...

    @property
    def leader_id(self) -> str | None: ...

    @property
    def node_id(self) -> str: ...

    @property
    def term(self) -> int: ...

    def status(self) -> Status: ...

    def propose_membership_change(self, change: MembershipChange) -> int: ...

    def transfer_leadership(self, to: str | None = None) -> None: ...

    async def wait_applied(self, index: int, term: int | None = None) -> None: ...

    async def wait_until(self, predicate: Callable[[], bool]) -> None: ...


class MembershipAdmin:
    """Checks and makes membership changes and leadership transfers on the leader.

    Args:
        driver: the node's Raft driver.
        check_leader: raises ``NOT_LEADER`` (with the leader hint) unless this
            node takes writes now; None on a node that does not replicate
            (every change is then refused with ``NOT_REPLICATED``).
        transfer_timeout: seconds a transfer may take (an election timeout or two).
        metrics: counts the changes applied, by change and origin (one of
            :data:`ORIGINS`, which each change method takes).
    """

    def __init__(self, driver: AdminDriver, check_leader: Callable[[], None] | None, *,
                 transfer_timeout: float, metrics: Metrics) -> None:
        self._driver = driver
        self._check_leader = check_leader
        self._transfer_timeout = transfer_timeout
        self._changes = metrics.membership_changes
        for origin, changes in ORIGINS.items():
            for change in changes:
                self._changes.add(0, {"change": change, "origin": origin})

    async def add_member(self, node_id: str, address: str, origin: str = "admin") -> int:
        """Add ``node_id`` (cluster port at ``address``) as a learner; the entry's index."""
        self._check_node_id(node_id)
        host, colon, port = address.rpartition(":")
        if not host or not colon or not port.isdigit() or not 0 < int(port) < 65536 or \
                len(address.encode()) > MAX_ADDRESS_BYTES:
            raise EventStreamError("MEMBER_INVALID", f"address: {address!r} is not host:port of "
                                   "the node's cluster port", field="address")
        self._check_change()
        if node_id in self._driver.membership:
            raise EventStreamError("MEMBER_EXISTS", f"node_id: {node_id!r} is already a member",
                                   field="node_id")
        return await self._change(MembershipChange(MembershipOp.ADD_LEARNER, node_id, address),
                                  origin)

    async def promote_learner(self, node_id: str, max_lag: int, origin: str = "admin") -> int:
        """Make learner ``node_id`` a voter, if at most ``max_lag`` entries behind; the entry's index."""
        self._check_node_id(node_id)
        self._check_change()
        membership = self._driver.membership
        if node_id in membership.voters:
            raise EventStreamError("NOT_LEARNER", f"node_id: {node_id!r} is a voter already",
                                   field="node_id")
        if node_id not in membership.learners:
            raise self._unknown(node_id)
        status = self._driver.status()
        progress = status.progress.get(node_id)
        match = progress.match if progress is not None else 0
        lag = status.last_index - match
        allowed = max_lag or DEFAULT_MAX_LAG
        # A learner that never acknowledged an entry may not even run: as a
        # voter it could stall every commit.
        if lag > allowed or match == 0:
            raise EventStreamError(
                "LEARNER_BEHIND", f"node_id: learner {node_id!r} is {lag} entries behind the "
                f"leader (max_lag {allowed}"
                f"{'; it has not acknowledged any entry yet' if match == 0 else ''}); wait "
                "until it caught up, then promote it", field="node_id", retry_after=1.0)
        return await self._change(MembershipChange(MembershipOp.PROMOTE_LEARNER, node_id), origin)

    async def remove_member(self, node_id: str, origin: str = "admin") -> int:
        """Remove voter or learner ``node_id``; the entry's index."""
        self._check_node_id(node_id)
        self._check_change()
        membership = self._driver.membership
        if node_id not in membership:
            raise self._unknown(node_id)
        if membership.voters == {node_id}:
            raise EventStreamError("LAST_VOTER", f"node_id: {node_id!r} is the last voter; a "
                                   "cluster cannot remove its only voter", field="node_id")
        return await self._change(MembershipChange(MembershipOp.REMOVE_NODE, node_id), origin)

    async def transfer_leadership(self, node_id: str) -> str:
        """Hand leadership to voter ``node_id`` ("" for the best one); the node that leads after."""
        driver = self._driver
        self._check_replicated()
        membership = driver.membership
        me = driver.node_id
        if node_id:
            self._check_node_id(node_id)
            if node_id not in membership:
                raise self._unknown(node_id)
            if node_id not in membership.voters:
                raise EventStreamError("NOT_VOTER", f"node_id: {node_id!r} is a learner; only "
                                       "a voter can lead (promote it first)", field="node_id")
            if node_id == me:
                return me  # it leads already (the write gate let the call through)
        elif not membership.voters - {me}:
            raise EventStreamError("NOT_VOTER", f"node_id: {me!r} is the only voter; there is "
                                   "nobody to hand leadership to", field="node_id")
        try:
            driver.transfer_leadership(node_id or None)
        except NotLeaderError:
            self._check_leader_now()
            raise
        try:
            async with asyncio.timeout(self._transfer_timeout):
                await driver.wait_until(lambda: driver.leader_id not in (None, me))
        except TimeoutError:
            raise EventStreamError(
                "MEMBERSHIP_TIMEOUT", f"leadership was not handed to {node_id or 'a voter'} "
                f"within {self._transfer_timeout:g}s (the target did not catch up or answer); "
                f"{me} may still lead", field="node_id") from None
        return driver.leader_id or ""

    # ------------------------------------------------------------------

    async def _change(self, change: MembershipChange, origin: str) -> int:
        driver = self._driver
        try:
            index = driver.propose_membership_change(change)
        except NotLeaderError:
            self._check_leader_now()
            raise
        except MembershipError as error:  # raced with another change
            raise self._pending(str(error)) from None
        term = driver.term
        try:
            async with asyncio.timeout(APPLY_TIMEOUT_SECONDS):
                await driver.wait_applied(index, term)
        except TimeoutError:
            raise EventStreamError(
                "MEMBERSHIP_TIMEOUT", f"node_id: the change ({change.describe()}) is entry {index} "
                f"but was not applied within {APPLY_TIMEOUT_SECONDS:g}s (no majority reachable?); "
                "it may still be applied: check GetClusterStatus before retrying",
                field="node_id") from None
        self._changes.add(1, {"change": CHANGES[change.op], "origin": origin})
        return index

    def _check_change(self) -> None:
        self._check_replicated()
        self._check_leader_now()
        if self._driver.membership_pending:
            raise self._pending("a membership change (or the leader's first entry) is not "
                                "applied yet")

    def _check_replicated(self) -> None:
        if self._check_leader is None:
            raise EventStreamError("NOT_REPLICATED", "this node runs alone (cluster.enabled is "
                                   "false): its membership cannot change")
        self._check_leader_now()

    def _check_leader_now(self) -> None:
        assert self._check_leader is not None
        self._check_leader()

    @staticmethod
    def _check_node_id(node_id: str) -> None:
        if not node_id or len(node_id.encode()) > MAX_NODE_ID_BYTES:
            raise EventStreamError("MEMBER_INVALID", f"node_id: must be 1 to {MAX_NODE_ID_BYTES} "
                                   f"bytes, got {len(node_id.encode())}", field="node_id")

    def _unknown(self, node_id: str) -> EventStreamError:
        membership = self._driver.membership
        return EventStreamError("MEMBER_UNKNOWN", f"node_id: {node_id!r} is not a member "
                                f"({membership.describe()})", field="node_id")

    @staticmethod
    def _pending(detail: str) -> EventStreamError:
        return EventStreamError("MEMBERSHIP_CHANGE_PENDING", f"node_id: {detail}; one membership "
                                "change at a time: retry once it is applied", field="node_id",
                                retry_after=0.5)


__all__ = ["CHANGES", "DEFAULT_MAX_LAG", "ORIGINS", "MembershipAdmin"]
