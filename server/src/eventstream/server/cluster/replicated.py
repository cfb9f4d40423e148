"""A node of a replicated cluster: the same write path, with peers on the cluster port.

With ``cluster.enabled`` the node builds exactly the parts a single node
builds (:func:`~.one_voter.one_voter`: entry log -> Raft log adapter ->
driver -> applier), but its driver talks to the other members through a
:class:`~.transport.GrpcTransport` on ``cluster.port``, and the log starts
from the cluster's initial voters (:mod:`.bootstrap`). Nobody is made leader
at start: the members elect one when their election timers run out.

Only the leader sequences. A gRPC publish reaching a follower (Publish,
PublishBatch, each PublishStream request) is forwarded to the leader over
the cluster link (``PeerService.Forward``) and answered with the leader's
answer; so are the raw TCP and UDP frames it reads (``ingest.forwarding``).
A write this node cannot take gets ``NOT_LEADER`` (UNAVAILABLE, retryable)
naming the leader's node id and public gRPC address; with no leader known,
UNAVAILABLE with a retry delay.
Followers apply what the leader commits, so their subscribers read the same
entries in the same order.

Members: the initial voters (``cluster.peers``, or discovery) are reached at
the addresses the configuration or discovery gives; members added later
through the log (``ClusterService.AddMember``, or a node's own ``Join``) at
the address recorded in their ``MEMBERSHIP`` entry. Whenever the applied
membership changes, the transport follows it
(:meth:`ClusterMember.membership_changed`): links open to added members and
close to removed ones, whose calls are refused from then on. A joining node
(``cluster.join``, or a pod beyond ``cluster.voters``) starts with the
initial voters' addresses, asks to be added (``cluster.joining``), takes the
members a Join answer names as peers until it has applied that far, and then
follows the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config.model import ClusterConfig, Config
from ..errors import EventStreamError
from ..listeners import ListenError, env_name
from ..native import DedupTable
from ..raft import Membership, NotLeaderError
from ..security.tls import ServerTls
from ..storage.entry_api import EntryLog
from ..storage.fileops import FileOps
from ..tasks import cancel_and_wait
from .bootstrap import ClusterIdentity, load_or_bootstrap, write_identity
from .discovery import initial_members, joins
from .errors import DriverHalted, DriverStopped, TooManyReads
from .joining import Admin, JoinPolicy, JoinService, MembershipRequests, Promoter
from .node import RaftDriver
from .one_voter import ReplicatedLog, one_voter
from .settings import raft_config, tick_seconds
from .snapshot_transfer import without_entries
from .transport import Answer, ForwardFailed, GrpcTransport, JoinIntent, JoinReply
from .vote_gate import GatedTransport, VoteGate

log = logging.getLogger(__name__)

ACK_ON_APPEND_ENV = "EVENTSTREAM_TEST_ACK_ON_APPEND"
"""Test-only: ``1`` acknowledges publishes before replication (see :func:`_ack_on_append`)."""
SNAPSHOT_WITHOUT_ENTRIES_ENV = "EVENTSTREAM_TEST_SNAPSHOT_WITHOUT_ENTRIES"
"""Test-only: ``1`` sends snapshots without the leader's retained entries (see ``snapshot_transfer``)."""
NO_VOTE_GATE_ENV = "EVENTSTREAM_TEST_NO_VOTE_GATE"
"""Test-only: ``1`` lets a member vote at once after a bootstrap (see ``vote_gate``)."""
NO_LEADER_RETRY_SECONDS = 0.25
CATCH_UP_READ_SECONDS = 2.0
"""How long one catching-up read may wait (then it is tried again)."""
"""The retry delay a publish gets while no leader is known (an election takes 0.5 to 1 s)."""


@dataclass(slots=True)
class ClusterMember:
    """This node's membership of a replicated cluster: identity, transport and log."""

    identity: ClusterIdentity
    peers: dict[str, str]
    """Node id -> ``host:port`` of its cluster port (this node included)."""
    transport: GrpcTransport
    replicated: ReplicatedLog
    client_address: str
    """``host:port`` of this node's public gRPC port, as its peers announce it."""
    gated: GatedTransport
    """The transport as the driver sees it: inbound votes behind the gate (``vote_gate``)."""
    root: Path
    """The data dir (``cluster.json``)."""
    ops: FileOps
    discovered: dict[str, str] = dataclasses.field(default_factory=dict)
    """Node id -> cluster address of the initial voters, as configured or discovered."""
    own_address: str = ""
    """This node's cluster address as configured (a joiner's until the log records one)."""
    requests: MembershipRequests | None = None
    """This node's own Join calls (set by :meth:`serve_joins`)."""
    policy: JoinPolicy | None = None
    learned: dict[str, str] = dataclasses.field(default_factory=dict)
    """Members a Join reply named, taken as peers until this node applied that reply's index."""
    learned_until: int = 0
    _catching_up: asyncio.Task[None] | None = None
    _promoter: Promoter | None = None
    _joining: asyncio.Task[None] | None = None
    _promoting: asyncio.Task[None] | None = None
    _peer_update: asyncio.Task[None] | None = None
    _following: asyncio.Task[None] | None = None
    _reading: asyncio.Task[None] | None = None
    removed: bool = False
    """This node was a member since it started and applied a membership without it."""
    _was_member: bool = False
    _handing_over: asyncio.Event | None = None
    """Set while :meth:`hand_over` runs: writes wait in :meth:`forward` for the new leader."""
    _read_under: str | None = None
    """The leader under which a linearizable read last returned here (None: none since
    this node last knew no leader): this node then held that leader's commit index."""

    async def start(self, host: str, port: int,
                    on_readiness: Callable[[str], Awaitable[None]] | None = None) -> None:
        """Start the driver (a follower until an election), then serve the cluster port.

        Args:
            host: the address of the cluster port.
            port: the cluster port (0: a free one).
            on_readiness: called with :meth:`unready` at once and whenever it
                changes (the gRPC health service's cluster half).

        Raises:
            ListenError: the cluster port cannot be bound.
        """
        await self.replicated.driver.start()
        self._was_member = self.identity.node_id in self.replicated.driver.membership
        self._reading = asyncio.get_running_loop().create_task(
            self._read_each_leader(), name="cluster-leader-read")
        if on_readiness is not None:
            self._following = asyncio.get_running_loop().create_task(
                self._follow_readiness(on_readiness), name="cluster-readiness")
        gate = self.gated.gate
        if gate is not None and gate.closed:
            self._catching_up = asyncio.get_running_loop().create_task(
                self._catch_up(gate), name="cluster-catch-up")
        try:
            await self.transport.start(host, port)
        except RuntimeError as error:
            raise ListenError([f"cluster: {error}; choose another with --set cluster.port=PORT "
                               f"(config key cluster.port, env {env_name('cluster.port')}), "
                               "and change this node's cluster.peers entry with it"]) from None
        log.info("member %s of cluster %s: cluster port %s:%d, peers %s",
                 self.identity.node_id, self.identity.cluster_id, host, self.transport.port,
                 ", ".join(f"{n}={a}" for n, a in sorted(self.peers.items())
                           if n != self.identity.node_id))
        loop = asyncio.get_running_loop()
        if self.requests is not None:
            self._joining = loop.create_task(self._ask_membership(self.requests),
                                             name="cluster-join")
        if self._promoter is not None:
            self._promoting = loop.create_task(self._promoter.run(), name="cluster-promote")

    def serve_joins(self, admin: Admin, tls: bool, cluster: ClusterConfig) -> None:
        """Answer Join calls with ``admin``, ask for this node's own membership, promote.

        Call before :meth:`start`. ``tls``: ``cluster.tls`` is on.
        """
        policy = self.policy = JoinPolicy(cluster, self.identity.voters, tls)
        driver = self.replicated.driver
        leads = functools.partial(_leads, self.replicated)
        service = JoinService(driver, admin, policy, self.addresses_of, leads)
        self.transport.serve_joins(service.answer, policy.admit)
        self._promoter = Promoter(driver, admin, policy, leads)
        self.requests = MembershipRequests(driver, self.transport, self.own_address,
                                           lambda: dict(self.discovered), self._learn)

    async def _ask_membership(self, requests: MembershipRequests) -> None:
        """A joiner asks to be added; an initial voter on an empty data dir asks to rejoin."""
        driver = self.replicated.driver
        me = self.identity.node_id
        gate = self.gated.gate
        try:
            if self.identity.joiner and me not in self.identity.voters:
                while True:  # again whenever it is not a member (e.g. removed meanwhile)
                    await requests.until(JoinIntent.JOIN, lambda _: me in driver.membership)
                    await driver.wait_until(lambda: me not in driver.membership)
            elif gate is not None and gate.closed and driver.last_index == 0:
                if self.identity.joiner or await requests.history_elsewhere(
                        lambda: driver.last_index == 0 and gate.closed):
                    await requests.until(JoinIntent.REJOIN, functools.partial(
                        _rejoined, driver, gate, me))
        except (DriverStopped, DriverHalted):
            return

    def _learn(self, reply: JoinReply) -> None:
        """Take calls from the members a Join reply names until this node applied its index."""
        me = self.identity.node_id
        self.learned = {node: address for node, address in reply.members.items() if node != me}
        self.learned_until = reply.applied_index
        self.membership_changed(self.replicated.driver.membership)

    async def leave(self, timeout: float) -> None:
        """Before stopping: a learner that joins by itself asks to be removed (voters never do)."""
        requests, policy = self.requests, self.policy
        driver = self.replicated.driver
        me = self.identity.node_id
        if requests is None or policy is None or not driver.running or \
                me not in driver.membership.learners or policy.is_initial_voter(me) or \
                policy.admit(me):
            return
        await cancel_and_wait(self._joining)
        await requests.leave(timeout)

    async def set_peers(self, peers: Mapping[str, str]) -> None:
        """Discovery saw the initial voters move: re-address their links."""
        self.discovered = {node: target for node, target in peers.items()
                           if node in self.identity.voters}
        await self._follow(self.replicated.driver.membership)

    def membership_changed(self, membership: Membership) -> None:
        """The driver applied a new membership: make the links follow it (in order, in the background)."""
        member = self.identity.node_id in membership
        if member or self._was_member:  # stays removed over later changes without it
            self.removed = not member
        self._was_member = member
        previous = self._peer_update

        async def follow() -> None:
            if previous is not None:
                await asyncio.wait([previous])  # its outcome was logged by itself
            try:
                await self._follow(membership)
            except Exception:  # a link that cannot close must not stop later updates
                log.exception("the peer links could not follow the membership %s",
                              membership.describe())
        self._peer_update = asyncio.get_running_loop().create_task(follow(), name="cluster-peers")

    def addresses_of(self, membership: Membership) -> dict[str, str]:
        """Node id -> cluster address of every member of ``membership`` (this node included).

        Discovery's (or the configuration's) address wins for the initial
        voters; the log's for members added through it.
        """
        recorded = membership.address_map()
        addresses: dict[str, str] = {}
        for node in membership.members():
            address = self.discovered.get(node) or recorded.get(node)
            if node == self.identity.node_id:
                address = address or self.own_address
            if address:
                addresses[node] = address
        return addresses

    async def _follow(self, membership: Membership) -> None:
        addresses = self.addresses_of(membership)
        if self.learned and self.replicated.driver.applied_index < self.learned_until:
            # Until it applied what a Join reply said, a joiner takes the members it named.
            addresses = {**self.learned, **addresses}
        if addresses == self.peers:
            return
        self.peers.clear()
        self.peers.update(addresses)
        await self.transport.set_peers(addresses)
        log.info("members now %s; peers %s", membership.describe(),
                 ", ".join(f"{n}={a}" for n, a in sorted(addresses.items())
                           if n != self.identity.node_id))

    async def _catch_up(self, gate: VoteGate) -> None:
        """Open the vote gate once a linearizable read returns here, and record it."""
        driver = self.replicated.driver
        while True:
            try:
                async with asyncio.timeout(CATCH_UP_READ_SECONDS):
                    if await driver.read_index() > 0:
                        break
            except (NotLeaderError, TooManyReads, TimeoutError):
                pass
            except (DriverStopped, DriverHalted):
                return  # stopping (or halted): the gate stays closed, as recorded
            await asyncio.sleep(CATCH_UP_READ_SECONDS / 10)
        self.identity = dataclasses.replace(self.identity, caught_up=True)
        write_identity(self.root, self.identity, self.ops)
        gate.open()

    def _needs_read(self) -> bool:
        """Whether the known leader's commit index is yet to be read here.

        Forgets the last read whenever no leader is known, so a member cut off
        and back under the same leader reads again.
        """
        leader = self.replicated.driver.leader_id
        if leader is None:
            self._read_under = None
            return False
        return leader != self._read_under

    async def _read_each_leader(self) -> None:
        """Read each new leader's commit index once (a linearizable read, applied here).

        Until then the member is ``catching up``: its own commit index only
        says what the leader told it so far (a heartbeat carries at most what
        this member is known to hold), so a member back after a restart
        would otherwise look caught up at once, with its log far behind.
        """
        driver = self.replicated.driver
        while True:
            try:
                await driver.wait_until(self._needs_read)
                leader = driver.leader_id
                async with asyncio.timeout(CATCH_UP_READ_SECONDS):
                    await driver.read_index()
            except (NotLeaderError, TooManyReads, TimeoutError):
                await asyncio.sleep(CATCH_UP_READ_SECONDS / 10)
                continue
            except (DriverStopped, DriverHalted):
                return
            if driver.leader_id == leader:
                self._read_under = leader

    async def _follow_readiness(self, on_readiness: Callable[[str], Awaitable[None]]) -> None:
        """Pass on each change of :meth:`unready`, checked after every turn of the driver."""
        driver = self.replicated.driver
        reason = self.unready()
        while True:
            await on_readiness(reason)
            changed = functools.partial(_differs, self.unready, reason)
            try:
                await driver.wait_until(changed)
            except (DriverStopped, DriverHalted):
                return  # stopping: the life cycle's half says NOT_SERVING now
            reason = self.unready()

    async def stop(self) -> None:
        """Stop the driver, then the transport (the entry log stays open)."""
        await cancel_and_wait(self._joining)
        await cancel_and_wait(self._promoting)
        await cancel_and_wait(self._following)
        await cancel_and_wait(self._reading)
        await cancel_and_wait(self._catching_up)
        await self.replicated.stop()
        await cancel_and_wait(self._peer_update)
        await self.transport.stop(0.5)

    async def hand_over(self, timeout: float,
                        settle: Callable[[], Awaitable[None]] | None = None) -> None:
        """At SIGTERM: hand leadership to the most up-to-date voter, if this node leads.

        Writes arriving meanwhile wait in :meth:`forward` (and TCP/UDP frames
        go that way, :meth:`follows`) and then go to the new leader, so a
        client sees no refusal. ``settle`` runs first: it waits until what
        this node accepted is committed (a proposal during the transfer would
        be refused). Gives up quietly after ``timeout`` seconds (the node
        then goes on leading until it drains; the others elect when it stops).
        """
        driver = self.replicated.driver
        me = self.identity.node_id
        if not driver.running or not driver.is_leader or len(driver.membership.voters) < 2:
            return
        handing_over = self._handing_over = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                if settle is not None:
                    await settle()
                driver.transfer_leadership()
                await driver.wait_until(lambda: driver.leader_id not in (None, me))
            log.info("handed leadership to %s", driver.leader_id)
        except (NotLeaderError, DriverStopped, DriverHalted, TimeoutError) as error:
            log.info("leadership not handed over (%s)", type(error).__name__)
        finally:
            self._handing_over = None
            handing_over.set()

    def unready(self) -> str:
        """Why this node cannot serve now ("" when it can): /health/ready's cluster half.

        It can once a leader is known (writes are taken or forwarded) and it
        has applied that leader's commit index as read once under it, and
        everything it knows committed since (its readers are current).
        """
        driver = self.replicated.driver
        waiting = self.requests.waiting_for if self.requests is not None else ""
        if self.identity.node_id not in driver.membership:
            if self.removed and not waiting:
                return "removed (the membership it applied no longer names it: it serves " \
                       "nothing until added again)"
            return f"not a member (waiting to be added: {waiting or 'ClusterService.AddMember'})"
        if waiting:
            return f"rejoining ({waiting})"
        leader = driver.leader_id
        if leader is None:
            return "no leader known"
        if leader != self._read_under or driver.applied_index < driver.commit_index:
            return "catching up"
        return ""

    def leader_address(self, leader: str) -> str:
        """The public gRPC address of ``leader`` ("" when it has not announced one yet)."""
        if leader == self.identity.node_id:
            return self.client_address
        return self.transport.peer_client_address(leader)

    def leader_hint(self) -> tuple[str, str]:
        """The leader's node id and public gRPC address ("" for what is not known)."""
        leader = self.replicated.driver.leader_id
        return (leader, self.leader_address(leader)) if leader else ("", "")

    def follows(self) -> bool:
        """Whether writes go to another node now (this one does not lead, or hands over)."""
        return self._handing_over is not None or not self.replicated.proposer.is_leader

    async def forward(self, kind: int, request: bytes, transport: str = "tcp") -> Answer | None:
        """Forward a public request to the leader; None when this node leads (serve it here).

        ``transport`` says which transport raw frames came in on (``tcp``, ``udp``).

        Raises:
            EventStreamError: NOT_LEADER (UNAVAILABLE, retryable) when no leader is
                known or the stream to it failed (the outcome is then unknown:
                a retry with the same event ids is safe).
        """
        handing_over = self._handing_over
        if handing_over is not None:  # bounded: hand_over's own timeout ends it
            await handing_over.wait()
        if self.replicated.proposer.is_leader:
            return None
        leader = self.replicated.driver.leader_id
        if leader is None or leader == self.identity.node_id:
            self.check_leader()  # raises: no leader known, or this node is not leading yet
            return None
        try:
            return await self.transport.forward(leader, kind, request, transport)
        except ForwardFailed as error:
            raise EventStreamError(
                "NOT_LEADER", f"forwarding to the leader {leader} failed ({error}); the "
                "outcome is unknown; publish again with the same event ids",
                retry_after=NO_LEADER_RETRY_SECONDS, leader_id=leader,
                leader_address=self.leader_address(leader)) from None

    def check_leader(self) -> None:
        """The broker's write gate: raise ``NOT_LEADER`` unless this node takes writes now."""
        driver = self.replicated.driver
        if self.replicated.proposer.is_leader:
            return
        leader = driver.leader_id
        if leader is None or leader == self.identity.node_id:
            raise EventStreamError(
                "NOT_LEADER", f"node {self.identity.node_id} knows no leader now (an election "
                "is under way, or most members are out of reach); nothing of this request was "
                "stored; retry",
                retry_after=NO_LEADER_RETRY_SECONDS)
        address = self.leader_address(leader)
        raise EventStreamError(
            "NOT_LEADER", f"node {self.identity.node_id} is a follower; the leader is {leader}"
            f"{f' at {address}' if address else ''}; nothing of this request was stored; "
            "publish to the leader", leader_id=leader, leader_address=address)


def _differs(now: Callable[[], str], told: str) -> bool:
    return now() != told


def _rejoined(driver: RaftDriver, gate: VoteGate, me: str, reply: JoinReply | None) -> bool:
    """The rejoin is done: the leader said so, or this node applied it (or caught up)."""
    if reply is not None:  # asked again later, the leader could remove a promoted voter again
        return reply.member and not reply.detail and me not in reply.voters
    return not gate.closed or me in driver.membership.learners


def _leads(replicated: ReplicatedLog) -> bool:
    return replicated.proposer.is_leader


def join_cluster(config: Config, event_log: EntryLog, window: DedupTable, ops: FileOps, *,
                 discovered: Mapping[str, str] | None = None,
                 on_halt: Callable[[BaseException], None] | None = None,
                 tls: ServerTls | None = None) -> ClusterMember:
    """Build this node's membership (see the module docstring); bootstraps an empty data dir.

    ``discovered`` is the peer map discovery found (None: ``cluster.peers``);
    the initial voters are ``initial_members(cluster)``, the same on every member.
    ``tls`` is the member's certificate for mutual TLS on the cluster port
    (``cluster.tls``; None: plaintext).

    Raises:
        DataDirRefused: the data dir belongs to another node or holds a log
            without a cluster identity.
        DiscoveryError: this node cannot be an initial voter.
    """
    cluster = config.cluster
    node_id = cluster.node_id
    initial = initial_members(cluster)
    identity = load_or_bootstrap(Path(config.storage.data_dir), node_id, initial, event_log, ops,
                                 cluster.name, joiner=joins(cluster))
    if not identity.caught_up and not identity.joiner:
        log.info("catching up after a bootstrap: no votes for candidates with a log until this "
                 "member holds the cluster's commit index")
    found = initial if discovered is None else discovered
    peers = {node: target for node, target in found.items() if node in identity.voters}
    # A joiner is not among the initial voters: it announces its own listening address.
    own_address = found.get(node_id) or initial.get(node_id) or \
        f"{config.server.host}:{cluster.port}"
    # dns targets read dns://server/host:port: the host is what clients are told.
    own_host = own_address.rpartition("/")[2].rpartition(":")[0]
    client_address = f"{own_host}:{config.server.grpc_port}"
    transport = GrpcTransport(node_id, identity.cluster_id, peers, client_address=client_address,
                              send_queue_messages=cluster.send_queue_messages,
                              max_batch_bytes=cluster.max_batch_bytes,
                              max_message_bytes=cluster.max_message_bytes,
                              max_snapshot_bytes=cluster.max_snapshot_bytes,
                              spool_dir=config.storage.data_dir, tls=tls,
                              server_name=cluster.tls.server_name if cluster.tls else "")
    withhold = not identity.caught_up and os.environ.get(NO_VOTE_GATE_ENV) != "1"
    gated = GatedTransport(transport, lambda inbox: VoteGate(inbox, withhold))
    # A joiner's log starts from the initial voters without itself (a member
    # rejoining under its id is not a voter until promoted again): it never
    # campaigns before the log says it may.
    voters = identity.voters - {node_id} if identity.joiner else identity.voters
    replicated = one_voter(event_log, raft_config(cluster), window,
                           tick_seconds=tick_seconds(cluster),
                           snapshot_bytes=config.storage.segment_bytes, on_halt=on_halt,
                           transport=gated, voters=voters)
    # A follower far behind gets the leader's retained entries with the snapshot.
    transport.snapshot_data = replicated.raft_log.transfer_data
    replicated.raft_log.max_transfer_bytes = cluster.max_snapshot_bytes
    if os.environ.get(SNAPSHOT_WITHOUT_ENTRIES_ENV) == "1":
        log.warning("%s=1: snapshots go without the retained entries (a deliberately broken "
                    "build)", SNAPSHOT_WITHOUT_ENTRIES_ENV)
        raft_log, partitions = replicated.raft_log, event_log.partitions
        transport.snapshot_data = lambda snapshot: without_entries(
            raft_log.transfer_data(snapshot), partitions, snapshot.index, raft_log.codec)
    if os.environ.get(ACK_ON_APPEND_ENV) == "1":
        _ack_on_append(replicated)
    member = ClusterMember(identity, dict(peers), transport, replicated, client_address, gated,
                           Path(config.storage.data_dir), ops, discovered=dict(peers),
                           own_address=own_address)
    replicated.driver.on_membership = member.membership_changed
    return member


def _ack_on_append(replicated: ReplicatedLog) -> None:
    """Test-only bug: acknowledge publishes before a majority has their entry.

    Entries are reported applied once handed to the local log, so the write
    path answers early; the cluster tests must catch the events this loses.
    """
    log.warning("%s=1: acknowledging before replication (a deliberately broken build)",
                ACK_ON_APPEND_ENV)
    applier, driver = replicated.applier, replicated.driver
    reported = replicated.raft_log.appended_index

    def appended(index: int) -> None:
        nonlocal reported
        if applier.on_entry is not None and driver.is_leader:
            for early in range(reported + 1, index + 1):
                applier.on_entry(early, driver.term)
        reported = index

    replicated.raft_log.on_appended = appended


__all__ = ["NO_LEADER_RETRY_SECONDS", "ClusterMember", "join_cluster"]
