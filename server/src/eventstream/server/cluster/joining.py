"""Membership without an operator: who may ask, what the leader does, what a node asks for.

A node asks over the cluster port (``PeerService.Join``, ``transport.join``):

- a **joiner** (not an initial voter: a StatefulSet pod beyond
  ``cluster.voters``, or ``cluster.join`` with ``static``) asks to be added as a
  learner whenever it is not a member, with back-off, following the leader
  hint of whoever answers (:class:`MembershipRequests`);
- an **initial voter on an empty data dir** first asks its peers whether the
  cluster has a log; when one has, it asks to *rejoin*: the leader removes it
  as a voter and adds it back as a learner (two changes, one at a time), and
  promotes it once it has caught up (:class:`Promoter`). When the peers have
  no log either, the cluster is being formed and it stays a voter;
- a joiner that stops (SIGTERM) asks to *leave*; a voter never does.

Who may ask (:class:`JoinPolicy`): the caller names this cluster's id (checked
before, on every peer call), and its node id must be plausible: with ``dns``
or ``kubernetes`` discovery, a pod of this StatefulSet; with ``static``, an
initial voter (``cluster.peers``), or anyone when ``cluster.tls`` proves the
caller holds a certificate of the members' CA. Then: only an initial voter
may rejoin, and only a node that is not one may join. Everything else is
refused and counted (``eventstream_cluster_peer_refused_total{reason=
"implausible_joiner"}``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from ..config.model import ClusterConfig
from ..errors import EventStreamError
from ..raft import Membership
from .discovery import parse_pod_name
from .discovery.statefulset import is_voter_ordinal
from .node import RaftDriver
from .transport import GrpcTransport, JoinFailed, JoinIntent, JoinRefused, JoinReply

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 5.0
ASK_TIMEOUT_SECONDS = 25.0
"""One Join call: the leader answers once its changes are applied (10 s each, at most two)."""
PROMOTE_CHECK_SECONDS = 0.5
"""How often the leader looks for initial voters to promote."""
MAX_PROMOTE_LAG = 1000
"""Entries behind the leader's last one a rejoining voter may be and be promoted."""


class Admin(Protocol):
    """The membership changes the leader makes (``rpc.cluster_admin.MembershipAdmin``)."""

    async def add_member(self, node_id: str, address: str, origin: str = "admin") -> int:
        """Add ``node_id`` as a learner; the entry's index (counted under ``origin``)."""
        ...

    async def remove_member(self, node_id: str, origin: str = "admin") -> int:
        """Remove ``node_id``; the entry's index (counted under ``origin``)."""
        ...

    async def promote_learner(self, node_id: str, max_lag: int, origin: str = "admin") -> int:
        """Make learner ``node_id`` a voter; the entry's index (counted under ``origin``)."""
        ...


class JoinPolicy:
    """Which node ids may ask, and for what (see the module docstring).

    Args:
        cluster: the ``cluster`` section (discovery, node id, voters).
        initial_voters: the initial voters (``cluster.json``).
        tls: ``cluster.tls`` is on (every caller holds a member's certificate).
    """

    def __init__(self, cluster: ClusterConfig, initial_voters: Collection[str], tls: bool) -> None:
        self._cluster = cluster
        self._initial = frozenset(initial_voters)
        self._tls = tls
        own = parse_pod_name(cluster.node_id)
        self._statefulset = own.statefulset if own is not None else None

    def admit(self, sender: str) -> str:
        """Whether ``sender``, not a peer now, may call Join: "" if so, else why not."""
        if sender in self._initial:
            return ""
        if self._cluster.discovery == "static":
            if self._tls:
                return ""
            return ("with cluster.discovery static and no cluster.tls only the initial voters "
                    "(cluster.peers) are added by themselves; add it with ClusterService.AddMember")
        pod = parse_pod_name(sender)
        if pod is None or pod.statefulset != self._statefulset:
            return f"not a pod of StatefulSet {self._statefulset!r} (<statefulset>-<ordinal>)"
        return ""

    @property
    def addresses_move(self) -> bool:
        """Whether a node may come back at another address (``kubernetes`` discovery: pod IPs)."""
        return self._cluster.discovery == "kubernetes"

    def is_initial_voter(self, node: str) -> bool:
        """Whether ``node`` is an initial voter (promoted again after a rejoin)."""
        if node in self._initial:
            return True
        if self._cluster.discovery == "static":
            return False
        pod = parse_pod_name(node)
        return pod is not None and pod.statefulset == self._statefulset and \
            is_voter_ordinal(pod, self._cluster)

    def check(self, sender: str, intent: JoinIntent) -> None:
        """Refuse an intent ``sender`` may not have.

        Raises:
            JoinRefused: an initial voter asking to join as a read replica, or
                another node asking to rejoin.
        """
        initial = self.is_initial_voter(sender)
        if intent is JoinIntent.JOIN and initial:
            raise JoinRefused(f"{sender!r} is an initial voter: it never joins as a learner "
                              "by itself, it rejoins when it starts on an empty data dir")
        if intent is JoinIntent.REJOIN and not initial:
            raise JoinRefused(f"{sender!r} is not an initial voter: it joins, it cannot rejoin")


class JoinService:
    """Answers Join calls on this node (any node answers; only the leader changes anything).

    Args:
        driver: the node's Raft driver.
        admin: the membership changes (the leader's).
        policy: who may ask for what.
        addresses: node id -> cluster address of every member of a membership.
        is_leader: whether this node takes writes now.
    """

    def __init__(self, driver: RaftDriver, admin: Admin, policy: JoinPolicy,
                 addresses: Callable[[Membership], Mapping[str, str]],
                 is_leader: Callable[[], bool]) -> None:
        self._driver = driver
        self._admin = admin
        self._policy = policy
        self._addresses = addresses
        self._is_leader = is_leader
        self._lock = asyncio.Lock()

    async def answer(self, sender: str, intent: JoinIntent, address: str) -> JoinReply:
        """See ``transport.join.JoinTarget``.

        Raises:
            JoinRefused: ``sender`` may not ask for ``intent``.
        """
        self._policy.check(sender, intent)
        if not self._is_leader():
            return self.reply(sender, "this node does not lead")
        async with self._lock:  # one change at a time; a second caller waits, then retries
            try:
                await self._change(sender, intent, address)
            except EventStreamError as error:
                return self.reply(sender, f"{error.reason}: {error}")
        return self.reply(sender)

    async def _change(self, sender: str, intent: JoinIntent, address: str) -> None:
        membership = self._driver.membership
        origin = intent.name.lower()  # join, rejoin, leave: the metric's origin label
        if intent is JoinIntent.LEAVE:
            if sender in membership.learners:
                await self._admin.remove_member(sender, origin)
                log.info("removed learner %s: it left", sender)
            return
        if intent is JoinIntent.REJOIN and sender in membership.voters:
            await self._admin.remove_member(sender, origin)
            log.info("removed voter %s: it lost its data dir and rejoins as a learner", sender)
        elif self._policy.addresses_move and sender in membership.learners and \
                membership.address_map().get(sender) != address:
            # Back at another address (a pod's new IP): a learner is re-added there.
            await self._admin.remove_member(sender, origin)
            log.info("removed learner %s: it is back at %s", sender, address)
        if sender not in self._driver.membership:
            await self._admin.add_member(sender, address, origin)
            log.info("added %s at %s as a learner (it asked to %s)", sender, address,
                     intent.name.lower())

    def reply(self, sender: str, detail: str = "") -> JoinReply:
        """What this node knows, for ``sender``."""
        driver = self._driver
        membership = driver.membership
        leader = driver.leader_id or ""
        addresses = dict(self._addresses(membership))
        return JoinReply(sender in membership, leader, addresses.get(leader, ""), addresses,
                         frozenset(membership.voters), driver.last_index, driver.applied_index,
                         detail)


class MembershipRequests:
    """This node's own requests: join, rejoin, leave (see the module docstring).

    Args:
        driver: the node's Raft driver.
        transport: the peer transport (its ``ask_join``).
        own_address: this node's cluster address, recorded when it is added.
        voters: node id -> cluster address of the initial voters (whom to ask first).
        learn: called with the members a reply names (their calls are taken from then on).
        rng: the back-off's jitter.
    """

    def __init__(self, driver: RaftDriver, transport: GrpcTransport, own_address: str,
                 voters: Callable[[], Mapping[str, str]],
                 learn: Callable[[JoinReply], None], rng: random.Random | None = None) -> None:
        self._driver = driver
        self._transport = transport
        self._own_address = own_address
        self._voters = voters
        self._learn = learn
        self._rng = rng or random.Random()
        self.waiting_for = ""
        """What this node waits for ("" when nothing): /health/ready says it."""

    def _targets(self, hint: tuple[str, str] | None) -> list[tuple[str, str]]:
        me = self._driver.node_id
        targets = [(node, address) for node, address in sorted(self._voters().items())
                   if node != me]
        self._rng.shuffle(targets)
        return [hint, *targets] if hint is not None and hint[0] != me else targets

    async def _ask(self, node: str, address: str, intent: JoinIntent) -> JoinReply | str:
        """The reply, or why there is none."""
        try:
            reply = await self._transport.ask_join(node, address, intent, self._own_address,
                                                   ASK_TIMEOUT_SECONDS)
        except JoinFailed as error:
            return f"asking {node} ({intent.name.lower()}): {error}"
        self._learn(reply)
        return reply

    async def history_elsewhere(self, still_empty: Callable[[], bool]) -> bool:
        """Ask the initial voters, until one answers, whether the cluster has a log.

        True when one has; False when the first to answer has none either (the
        cluster is being formed), or when this node's own log stopped being
        empty meanwhile (it was taken into the cluster as it formed).
        """
        backoff = FIRST_BACKOFF_SECONDS
        while still_empty():
            for node, address in self._targets(None):
                # The leader rejoins this node at once: what the next step would ask.
                reply = await self._ask(node, address, JoinIntent.REJOIN)
                if isinstance(reply, str):
                    continue
                if reply.last_index > 0 or reply.leader_id:
                    log.info("%s has a log (last index %d, leader %s): rejoining as a learner",
                             node, reply.last_index, reply.leader_id or "unknown")
                    return True
                log.info("%s has no log either: the cluster is being formed", node)
                return False
            await self._sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        return False

    async def until(self, intent: JoinIntent, done: Callable[[JoinReply | None], bool]) -> None:
        """Ask for ``intent`` (the leader first, when a reply named it) until ``done``.

        ``done`` is asked with each reply, and with None before each round.
        """
        me = self._driver.node_id
        backoff = FIRST_BACKOFF_SECONDS
        hint: tuple[str, str] | None = None
        hinted: set[tuple[str, str]] = set()  # leaders asked at once since the last back-off
        while not done(None):
            named = None
            for node, address in self._targets(hint):
                reply = await self._ask(node, address, intent)
                if isinstance(reply, str):
                    self.waiting_for = reply
                    continue
                if done(reply):
                    self.waiting_for = ""
                    return
                outcome = reply.detail or ("granted; waiting for the log" if reply.member
                                           else "not done yet")
                self.waiting_for = f"asking {node} ({intent.name.lower()}): {outcome}"
                if reply.leader_id and reply.leader_id not in (node, me) and reply.leader_address:
                    named = (reply.leader_id, reply.leader_address)
                    break  # ask the leader next
            if named is not None and named not in hinted:
                hint = named  # a leader not asked yet: at once (stale hints cannot spin)
                hinted.add(named)
                continue
            hinted.clear()
            await self._sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        self.waiting_for = ""

    async def leave(self, timeout: float) -> bool:
        """Ask the leader to remove this learner, for at most ``timeout`` seconds; whether it did."""

        def removed(reply: JoinReply | None) -> bool:
            # The leader's own answer (a follower's says why it changed nothing).
            return reply is not None and not reply.member and not reply.detail
        try:
            async with asyncio.timeout(timeout):
                await self.until(JoinIntent.LEAVE, removed)
        except TimeoutError:
            log.warning("leaving: not removed within %.1f s (%s); the leader keeps it as an "
                        "unreachable learner", timeout, self.waiting_for or "no answer")
            return False
        log.info("left the cluster: removed as a learner")
        return True

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds * self._rng.uniform(0.5, 1.5))


class Promoter:
    """On the leader: promotes initial voters that rejoined as learners once caught up.

    Joiners (not initial voters) are never promoted: they are read replicas.

    Args:
        driver: the node's Raft driver.
        admin: the membership changes.
        policy: which learners are initial voters.
    """

    def __init__(self, driver: RaftDriver, admin: Admin, policy: JoinPolicy,
                 is_leader: Callable[[], bool]) -> None:
        self._driver = driver
        self._admin = admin
        self._policy = policy
        self._is_leader = is_leader

    async def run(self) -> None:
        """Until cancelled: look every :data:`PROMOTE_CHECK_SECONDS` and promote."""
        while True:
            await asyncio.sleep(PROMOTE_CHECK_SECONDS)
            await self.promote_once()

    async def promote_once(self) -> None:
        """Promote the first caught-up learner that is an initial voter, if this node leads."""
        driver = self._driver
        # The usual case, checked before the Raft status is built (every half second).
        if not driver.membership.learners or not self._is_leader() or driver.membership_pending:
            return
        status = driver.status()
        for learner in sorted(driver.membership.learners):
            progress = status.progress.get(learner)
            if not self._policy.is_initial_voter(learner) or progress is None or \
                    progress.match == 0 or status.last_index - progress.match > MAX_PROMOTE_LAG:
                continue
            try:
                await self._admin.promote_learner(learner, MAX_PROMOTE_LAG, "auto_promote")
            except EventStreamError as error:  # raced with another change, or fell behind
                log.info("promoting %s: %s (tried again)", learner, error)
                return
            log.info("promoted %s: an initial voter caught up as a learner", learner)
            return


__all__ = ["Admin", "JoinPolicy", "JoinService", "MembershipRequests", "Promoter"]
