"""Composition root: builds the node from its configuration and runs its lifecycle.

The only module that wires concrete classes together. Start-up: HTTP first
(:class:`Probes`: live, health NOT_SERVING), before discovery and the log's
recovery; then the write path and the gRPC listener, then SERVING. Shutdown
(SIGTERM or SIGINT) of a single node: NOT_SERVING and new publishes refused at
once, an optional grace period for load balancers, every accepted event
committed and acknowledged, subscriptions ended with UNAVAILABLE, then exit.
A cluster member turns NOT_SERVING at once too, but first hands leadership over,
then keeps taking publishes during the grace (forwarding them to the leader)
and serving subscribers, and only then refuses and drains as a single node
does; a read replica asks to be removed last.
A storage error halts the write path: health turns NOT_SERVING for good
(phase ``storage failed``), readers keep reading, and the process exits 1
when it is stopped.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .broker.broker import Broker
from .broker.dead_letter import DeadLetters
from .broker.group_upkeep import GroupUpkeep
from .broker.groups import GroupCoordinator
from .broker.lanes import lanes
from .broker.retention import RetentionPolicy
from .broker.sequencer import Sequencer
from .broker.write_path import WritePath
from .cluster.errors import DriverHalted
from .cluster.one_voter import one_voter
from .cluster.replicated import ClusterMember, join_cluster
from .cluster.settings import election_seconds, raft_config, replicates, tick_seconds
from .config.model import Config
from .heap_trim import HeapTrimTask
from .http.server import HttpServer
from .http.status import Native, NodeStatus
from .ingest.forwarding import FORWARD_FRAMES, ForwardedFrames, FrameForwarder
from .ingest.frames import FrameDecoder
from .ingest.sink import BrokerSink
from .ingest.tcp import TcpIngest
from .ingest.udp import UdpIngest
from .listeners import GRPC, HTTP, TCP, UDP, ListenError, listening
from .native import ABI_VERSION, DedupTable, EventEncoder, NativeWire
from .observability.cluster_readings import observe_cluster
from .observability.metrics import Metrics
from .observability.readings import (
    CommitRecorder,
    observe_disk_log,
    observe_groups,
    observe_ingest,
    observe_lanes,
    observe_log,
    observe_node,
    observe_raft,
)
from .placement import place
from .rpc import cluster, consume, publish, subscribe
from .rpc.cluster_admin import MembershipAdmin
from .rpc.consume_relay import ConsumeRelay
from .rpc.convert import EventValidator
from .rpc.dead_letter_copies import ProtobufCopies
from .rpc.guard import Guard
from .rpc.health import HealthState
from .rpc.server import PUBLIC_SERVICES, GrpcServer
from .security import (
    AccessControl,
    CertificateWatch,
    SecurityReload,
    ServerTls,
    TlsFileError,
    TlsFiles,
    read_tokens,
)
from .storage.entry_log import DiskEntryLog
from .storage.failure import DataDirRefused, halt_reason
from .storage.fileops import file_ops
from .storage.memory_entry_log import MemoryEntryLog

LEADERSHIP_SECONDS = 30.0
"""How long the start waits for this node to lead its cluster of one and apply its log."""
LEAVE_SECONDS = 5.0
"""At SIGTERM: how long a read replica may take to be removed before the drain goes on."""
HAND_OVER_SECONDS = 2.0
"""At SIGTERM: how long a leader may take to commit what it accepted and hand leadership over."""
SHUTDOWN_ORDER_ENV = "EVENTSTREAM_TEST_SHUTDOWN_ORDER"
"""Test-only: ``refuse_first`` gives a cluster member the single node's order (refuse at
once, hand leadership over after the drain), so the SIGTERM test can prove it would fail."""

log = logging.getLogger(__name__)


def peer_tls(config: Config) -> ServerTls | None:
    """The certificate of the cluster port (``cluster.tls``; None: plaintext).

    Raises:
        TlsFileError: the files cannot be used (the message starts with ``cluster.tls``).
    """
    peer = config.cluster.tls
    if peer is None:
        return None
    try:
        return ServerTls(TlsFiles(peer.cert_file, peer.key_file, peer.ca_file,
                                  require_client_certificate=True))
    except TlsFileError as error:
        raise TlsFileError(f"cluster.tls: {error}") from None


@dataclass(slots=True)
class Probes:
    """What answers the probes from the process's first moments, before the node is built.

    The HTTP listener (/health/live, /health/ready, /metrics, /status) with the
    serving state and the metrics it reports: started before discovery and log
    recovery, which can take minutes, so /health/live answers 200 meanwhile
    (phase ``discovering``, then ``recovering``) and /health/ready 503. The
    node built afterwards takes them over.
    """

    metrics: Metrics
    health: HealthState
    http: HttpServer

    @classmethod
    def of(cls, config: Config) -> Probes:
        """The probes of a node with ``config`` (not listening yet)."""
        metrics = Metrics(config.cluster.node_id)
        health = HealthState(PUBLIC_SERVICES)
        return cls(metrics, health, HttpServer(
            health, metrics, metrics_enabled=config.metrics.enabled,
            metrics_path=config.metrics.path, max_connections=config.metrics.max_connections,
            header_timeout=config.metrics.header_timeout_seconds))

    async def start(self, config: Config, phase: str) -> None:
        """Listen on ``metrics.port``, reporting ``phase`` (not serving).

        Raises:
            ListenError: the port cannot be bound.
        """
        await self.health.set(False, phase)
        with listening(HTTP, config.server.host, config.metrics.port):
            await self.http.start(config.server.host, config.metrics.port)


class Node:
    """One EventStream node: listeners, broker, write path and log.

    Building it opens the log (recovery: its segments checked, a torn tail
    cut), which reads the data dir and can take long; the server builds it in
    a worker thread while :class:`Probes` answer on the event loop.

    Args:
        config: the loaded configuration.
        config_file: the file it came from, watched for new ``auth`` rules.
        reload_config: loads the configuration again as at start (for those rules).

        peers: the members discovery found (``cluster.enabled``); None: ``cluster.peers``.
        probes: the probes already listening (None: made here, listening from :meth:`start`).

    Raises:
        TlsFileError: the certificate files cannot be used.
        TokensError: the tokens file cannot be used.
    """

    def __init__(self, config: Config, config_file: str | None = None,
                 reload_config: Callable[[], Config] | None = None, *,
                 peers: Mapping[str, str] | None = None, probes: Probes | None = None) -> None:
        self.config = config
        self.started_at = time.monotonic()
        self.gc_frozen = 0
        """Objects frozen at start-up (the collector no longer scans them)."""
        storage = config.storage
        probes = probes if probes is not None else Probes.of(config)
        metrics = self.metrics = probes.metrics
        self.placement = place(config.numa.enabled)
        self.lanes = lanes(config.queues.realtime_capacity, config.queues.batch_capacity)
        # Every file operation of the durable log, made once here (faulty only in tests).
        self.file_ops = file_ops()
        self.log: MemoryEntryLog | DiskEntryLog
        disk = storage.engine == "disk"
        if not disk:
            self.log = MemoryEntryLog(storage.partitions, storage.memory_max_bytes)
        else:
            self.log = DiskEntryLog(storage, NativeWire(), ops=self.file_ops,
                                    on_fsync=metrics.fsync_duration.record,
                                    on_halt=self._log_halted)
        self.health = probes.health
        # One log, one path: a single node is a Raft group of one voter
        # (the driver, the log adapter, the applier) whose transport has no peers.
        self.dedup = DedupTable(int(config.dedup.window_seconds * 1e9), config.dedup.max_ids)
        # A member of a replicated cluster runs the same parts with peers (cluster.replicated).
        self.member: ClusterMember | None = None
        self.peer_tls: ServerTls | None = None
        if replicates(config.cluster):
            self.peer_tls = peer_tls(config)
            self.member = join_cluster(config, self.log, self.dedup, self.file_ops,
                                       discovered=peers, on_halt=self._log_halted,
                                       tls=self.peer_tls)
            self.replicated = self.member.replicated
        else:
            self.replicated = one_voter(self.log, raft_config(config.cluster), self.dedup,
                                        tick_seconds=tick_seconds(config.cluster),
                                        snapshot_bytes=storage.segment_bytes,
                                        on_halt=self._log_halted)
        self.applier = self.replicated.applier
        self.driver = self.replicated.driver
        proposer = self.replicated.proposer
        # Ids the server assigns: unique per process start, then a counter.
        id_prefix = (uuid.uuid4().hex[:16] + "-").encode()
        validator = EventValidator(config.limits)
        self.encoder = EventEncoder(validator.encoder_limits(), id_prefix)
        sequencer = Sequencer(self.encoder, NativeWire(), self.dedup, storage.partitions,
                              self.log.durability)
        self.write_path = WritePath(
            self.lanes, sequencer, proposer, self.log, self.applier, NativeWire(),
            drain_batch_events=config.queues.drain_batch_events,
            batch_share=config.queues.batch_lane_share,
            max_rounds_in_flight=(config.cluster.max_rounds_in_flight if self.member is not None
                                  else config.queues.max_rounds_in_flight),
            further_round_events=(round(config.cluster.further_round_share
                                        * config.queues.drain_batch_events)
                                  if self.member is not None else 0),
            batch_yield_seconds=config.queues.batch_yield_ms / 1000,
            on_commit=CommitRecorder(metrics), on_halt=self.health.storage_failed)
        self.broker = Broker(self.write_path, config.subscribe.max_batch_events,
                             config.subscribe.max_batch_bytes)
        if self.member is not None:
            self.broker.write_gate = self.member.check_leader
        self.dead_letters = DeadLetters(self.broker, self.encoder, ProtobufCopies(validator),
                                        metrics)
        self.groups = GroupCoordinator(
            self.log, self.dead_letters, time.monotonic_ns, self.applier.groups, proposer,
            max_groups=config.groups.max_groups,
            idle_expiry_ns=int(config.groups.idle_expiry_seconds * 1e9))
        self.group_upkeep = GroupUpkeep(self.groups, proposer,
                                        config.groups.idle_expiry_seconds)
        # Retention drops segments of the durable log; the in-memory log evicts by
        # storage.memory_max_bytes on its own (its "segments" are its appends).
        self.retention = RetentionPolicy(
            self.log, proposer, retention_ms=storage.retention_ms if disk else 0,
            retention_bytes=storage.retention_bytes if disk else 0)
        self.applier.on_applied = self._applied
        self.heap_trim = HeapTrimTask(metrics.memory_trimmed.add)
        tls = config.tls
        self.tls = ServerTls(TlsFiles(tls.cert_file, tls.key_file, tls.client_ca_file,
                                      tls.client_auth == "require")) if tls.enabled else None
        self.access = AccessControl(config.auth, read_tokens(config.auth.tokens_file),
                                    NativeWire(), metrics)
        watches = [CertificateWatch("public", self.tls, tls.reload_interval_seconds)] \
            if self.tls is not None else []
        if self.peer_tls is not None and self.member is not None and config.cluster.tls is not None:
            watches.append(CertificateWatch("cluster", self.peer_tls,
                                            config.cluster.tls.reload_interval_seconds,
                                            self.member.transport.certificate_changed))
        self.security_reload = SecurityReload(config, config_file, reload_config, self.access,
                                              watches, metrics)
        guard = Guard(self.access)
        member = self.member
        admin = MembershipAdmin(self.driver, member.check_leader if member else None,
                                transfer_timeout=2 * election_seconds(config.cluster),
                                metrics=metrics)
        if member is not None:
            member.serve_joins(admin, config.cluster.tls is not None, config.cluster)
        self.cluster = cluster.ClusterServicer(
            config, self.driver, metrics, guard, addresses=member.peers if member else None,
            connected=member.transport.connected_peers if member else frozenset,
            leader_hint=member.leader_hint if member else None, admin=admin)
        self.publisher = publish.PublishServicer(self.broker, self.encoder, config.limits, metrics,
                                                 guard, forwarder=self.member)
        # A follower's group members are served by the leader, over the peer link.
        self.consume_relay = None if self.member is None else ConsumeRelay(
            self.member.follows, self.member.leader_hint, config.cluster.node_id,
            self.member.transport.relay_consume)
        consumer = consume.ConsumeServicer(self.broker, self.groups, config.groups,
                                           config.limits, metrics, guard, self.consume_relay)
        if self.member is not None:
            self.member.transport.serve_relayed(consumer.serve_relayed)
        self.grpc = GrpcServer(config, [
            self.publisher.handlers(),
            subscribe.SubscribeServicer(self.broker, config.limits, metrics, consumer,
                                        guard).handlers(),
            self.cluster.handlers(),
        ], self.health, self.tls)
        decoder = FrameDecoder(self.encoder, config.limits, config.ingest.max_frame_bytes)
        # A follower sends the raw frames it reads to the leader, which queues them.
        self.forwarded_frames = ForwardedFrames(decoder, {
            transport: BrokerSink(self.broker, transport) for transport in ("tcp", "udp")})
        self.frame_forwarder = None if self.member is None else FrameForwarder(
            self.member, self.forwarded_frames, metrics)
        if self.member is not None:
            self.member.transport.serve_forwarded(self._serve_forwarded)
        tcp_sink = BrokerSink(self.broker, "tcp", config.queues.batch_ingest_mark)
        self.tcp = TcpIngest(config.ingest, config.limits, decoder, tcp_sink, metrics, self.access,
                             self.tls if tls.tcp else None, forwarder=self.frame_forwarder)
        self.udp = UdpIngest(config.ingest, decoder, BrokerSink(self.broker, "udp"), metrics,
                             numa=config.numa.enabled, forwarder=self.frame_forwarder)
        self.status = NodeStatus(
            config, __version__, self.health, self.write_path, self.lanes, self.log, self.broker,
            self.placement, Native(ABI_VERSION, NativeWire().crc32c_hardware), self.cluster.summary,
            self._listener_ports, self.log.status if isinstance(self.log, DiskEntryLog) else dict,
            self.started_at)
        self.http = probes.http
        self.http.attach(self.status.document, self.member.unready if self.member else None)
        self._stopping = asyncio.Event()
        observe_lanes(metrics, self.lanes)
        observe_log(metrics, self.log)
        if isinstance(self.log, DiskEntryLog):
            observe_disk_log(metrics, self.log)
        observe_raft(metrics, self.driver, self.write_path)
        observe_cluster(metrics, self.driver, self.member.transport if self.member else None)
        observe_groups(metrics, self.groups, self.log)
        observe_ingest(metrics, self.tcp, self.udp)
        observe_node(metrics, dedup=self.dedup, placement=self.placement,
                     write_path=self.write_path, started_at=self.started_at,
                     frozen=lambda: self.gc_frozen)

    async def _serve_forwarded(self, kind: int, request: bytes,
                               transport: str) -> tuple[bytes, int, str, bytes]:
        """Serve a request a follower forwarded: raw frames here, publishes by the publisher."""
        if kind == FORWARD_FRAMES:
            return await self.forwarded_frames.serve(request, transport)
        return await self.publisher.serve_forwarded(kind, request)

    def _applied(self) -> None:
        """After each applied batch: group members may take more, retention may be due."""
        self.groups.wake_all()
        self.retention.applied()

    def _log_halted(self, error: BaseException) -> None:
        """A storage error halted the log or the Raft driver: writes stop until a restart."""
        reason, name = halt_reason(error, Path(self.config.storage.data_dir))
        self.write_path.halt(reason, name)

    def _listener_ports(self) -> dict[str, int]:
        """The bound port of each listener (0 until it listens)."""
        return {"grpc": self.grpc.port, "http": self.http.port,
                "tcp": self.tcp.port, "udp": self.udp.port}

    async def start(self) -> None:
        """Bring the node up; it is SERVING when this returns."""
        config = self.config
        host = config.server.host
        await self.health.set(False, "starting")
        if not self.http.port:  # else the probes listen already
            with listening(HTTP, host, config.metrics.port):
                await self.http.start(host, config.metrics.port)
        try:
            if self.member is not None:
                await self.member.start(host, config.cluster.port, on_readiness=self.health.hold)
            else:
                await self.replicated.lead(LEADERSHIP_SECONDS)
        except DriverHalted as error:  # the start's own writes failed (its first entry)
            reason, _ = halt_reason(error.cause, Path(config.storage.data_dir))
            raise DataDirRefused(f"storage.data_dir {config.storage.data_dir}: cannot start: "
                                 f"{reason}") from error
        if isinstance(self.log, DiskEntryLog):
            self.log.start()
        self.broker.start()
        with listening(GRPC, host, config.server.grpc_port):
            self.grpc.bind(host, config.server.grpc_port)
        await self.grpc.start()
        with listening(TCP, host, config.server.tcp_port):
            await self.tcp.start(host, config.server.tcp_port)
        if config.ingest.udp_enabled:
            with listening(UDP, host, config.server.udp_port):
                await self.udp.start(host, config.server.udp_port)
        self.security_reload.start()
        self.group_upkeep.start()
        self.retention.start()
        self.heap_trim.start()
        if config.server.warmup_seconds:
            await self.health.set(False, "warming up")
            await asyncio.sleep(config.server.warmup_seconds)
        # Everything made so far (modules, handlers, the server's own objects)
        # lives as long as the process: frozen, the collector stops scanning it,
        # which cut a full collection under load from 23-57 ms to 1-15 ms.
        gc.collect()
        gc.freeze()
        self.gc_frozen = gc.get_freeze_count()
        if self.write_path.halted is not None:
            return  # a storage error during the warm-up: it stays NOT_SERVING
        await self.health.set(True, "serving")
        log.info("EventStream %s node %s serving: gRPC %s:%d, HTTP http://%s:%d "
                 "(/health, %s, /status), TCP frames %s:%d, UDP frames %s:%d "
                 "(receive buffer %d bytes); log: %s, %d partitions",
                 __version__, config.cluster.node_id, host, self.grpc.port, host, self.http.port,
                 config.metrics.path, host, self.tcp.port, host, self.udp.port,
                 self.udp.receive_buffer, _describe_log(config), self.log.partitions)
        if self.tls is not None or self.access.enabled:
            log.info("security: TLS %s, authentication %s", _describe_tls(config),
                     f"on ({len(config.auth.identities)} identities)" if self.access.enabled
                     else "off")

    async def shutdown(self) -> bool:
        """Drain and stop.

        Returns True when every accepted event was committed (never after a storage error halted the write
        path).
        """
        server = self.config.server
        deadline = time.monotonic() + server.drain_grace_seconds + server.drain_timeout_seconds
        member = self.member
        if member is not None and os.environ.get(SHUTDOWN_ORDER_ENV) != "refuse_first":
            deadline += HAND_OVER_SECONDS
            log.info("shutting down: NOT_SERVING, handing leadership over, serving for %.1fs",
                     server.drain_grace_seconds)
            await self.health.set(False, "draining")
            await member.hand_over(HAND_OVER_SECONDS, self.broker.lanes.wait_idle)
            if server.drain_grace_seconds:  # publishes are forwarded to the new leader meanwhile
                await asyncio.sleep(server.drain_grace_seconds)
            log.info("grace over: refusing new publishes and ingest connections")
            await self._refuse_publishes(deadline)
            # A read replica leaves only now: removed, it could forward nothing during the grace
            # (it joins again when it starts).
            return await self._drain(deadline, leave=True)
        log.info("shutting down: NOT_SERVING, refusing new publishes and ingest connections")
        if member is not None:  # the test-only old order: leave, refuse, drain, then hand over
            log.warning("%s=refuse_first is set: the single node's order (a test-only setting)",
                        SHUTDOWN_ORDER_ENV)
            await member.leave(max(min(deadline - time.monotonic(), LEAVE_SECONDS), 0.1))
        await self._refuse_publishes(deadline)
        await self.health.set(False, "draining")
        if server.drain_grace_seconds:
            await asyncio.sleep(server.drain_grace_seconds)
        return await self._drain(deadline)

    async def _refuse_publishes(self, deadline: float) -> None:
        """Stop taking ingest connections and datagrams, then refuse new publishes and subscriptions."""
        self.tcp.stop_accepting()
        self.udp.stop_accepting()
        # Datagrams already read are queued (or forwarded) before publishing closes.
        await self.udp.finish(max(min(deadline - time.monotonic(), 5.0), 0.1))
        self.broker.stop_accepting()
        self.groups.wake_all()  # group members see the drain and end their streams

    async def _drain(self, deadline: float, leave: bool = False) -> bool:
        """Commit what was accepted, hand over if still leading, end subscriptions and stop.

        ``leave``: a read replica that joined by itself asks to be removed once its
        connections got their last answers.
        """
        clean = await self.broker.drain(max(deadline - time.monotonic(), 0.0))
        if self.member is not None:  # the others need not wait for an election
            await self.member.hand_over(max(min(deadline - time.monotonic(), 2.0), 0.1))
        # Committed now: acknowledged-mode connections get their last ACKs.
        await self.tcp.close(max(min(deadline - time.monotonic(), 5.0), 0.1))
        if leave and self.member is not None:
            await self.member.leave(max(min(deadline - time.monotonic(), LEAVE_SECONDS), 0.1))
        await self._release(max(min(deadline - time.monotonic(), 5.0), 0.1))
        if self.write_path.halted is not None:
            log.error("stopped after a storage failure: %s", self.write_path.halted)
            return False
        log.info("stopped%s", "" if clean else " with uncommitted events")
        return clean

    async def _release(self, grace: float) -> None:
        """Stop the listeners, the background tasks, the write path and the log.

        The gRPC server gets ``grace`` seconds for calls in flight; the HTTP
        listener stops last.
        """
        await self.grpc.stop(grace)
        await self.security_reload.stop()
        await self.heap_trim.stop()
        await self.retention.stop()
        await self.group_upkeep.stop()
        await self.broker.stop()
        if self.frame_forwarder is not None:
            await self.frame_forwarder.close()
        if self.member is not None:
            await self.member.stop()
        else:
            await self.replicated.stop()
        self.log.close()
        await self.http.stop()
        self.metrics.shutdown()

    async def _abandon_start(self) -> None:
        """Undo a start that failed on a listener, quietly: the node never served (no drain.

        Events accepted in the moment, if any, were not acknowledged and their publishers retry).
        """
        self.tcp.stop_accepting()
        self.udp.stop_accepting()
        await self.udp.finish(0.1)
        await self.tcp.close(0.1)
        await self._release(0.1)

    def request_stop(self) -> None:
        """Ask :meth:`run` to shut down (signal handlers call this)."""
        self._stopping.set()

    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, shut down; returns the exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        try:
            await self.start()
        except (ListenError, DataDirRefused):
            await self._abandon_start()
            raise
        await self._stopping.wait()
        clean = await self.shutdown()
        return 0 if clean else 1


def _describe_tls(config: Config) -> str:
    tls = config.tls
    if not tls.enabled:
        return "off"
    ports = "gRPC and TCP" if tls.tcp else "gRPC"
    return f"on {ports}" + (" with client certificates" if tls.client_auth == "require" else "")


def _describe_log(config: Config) -> str:
    storage = config.storage
    if storage.engine == "memory":
        return "in memory"
    return f"on disk at {storage.data_dir} (fsync {storage.fsync})"
