"""Composition root: builds the node from its configuration and runs its lifecycle.

The only module that wires concrete classes together. Start-up: HTTP first
(health says NOT_SERVING), then the write path and the gRPC listener, then
SERVING. Shutdown (SIGTERM or SIGINT): NOT_SERVING and new publishes refused
at once, an optional grace period for load balancers, every accepted event
committed and acknowledged, subscriptions ended with UNAVAILABLE, then exit.
A storage error halts the write path: health turns NOT_SERVING for good
(phase ``storage failed``), readers keep reading, and the process exits 1
when it is stopped.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
import uuid
from collections.abc import Callable

from . import __version__
from .broker.broker import Broker
from .broker.dead_letter import DeadLetters
from .broker.dedup import DedupWindow
from .broker.group_upkeep import GroupUpkeep, stored_groups
from .broker.groups import GroupCoordinator
from .broker.lanes import lanes
from .broker.write_path import WritePath
from .config.model import Config
from .heap_trim import HeapTrimTask
from .http.server import HttpServer
from .http.status import Native, NodeStatus
from .ingest.frames import FrameDecoder
from .ingest.sink import BrokerSink
from .ingest.tcp import TcpIngest
from .ingest.udp import UdpIngest
from .listeners import GRPC, HTTP, TCP, UDP, ListenError, listening
from .native import ABI_VERSION, EventEncoder, NativeWire
from .observability.metrics import Metrics
from .observability.readings import (
    CommitRecorder,
    observe_disk_log,
    observe_groups,
    observe_ingest,
    observe_lanes,
    observe_log,
    observe_node,
    retention_deleted,
)
from .placement import place
from .rpc import cluster, consume, publish, subscribe
from .rpc.convert import EventValidator
from .rpc.dead_letter_copies import ProtobufCopies
from .rpc.dedup_restore import restore_dedup
from .rpc.guard import Guard
from .rpc.health import HealthState
from .rpc.server import PUBLIC_SERVICES, GrpcServer
from .security import AccessControl, SecurityReload, ServerTls, TlsFiles, read_tokens
from .storage.disk_log import DiskLog
from .storage.fileops import file_ops
from .storage.group_offsets import GroupOffsets
from .storage.memory_log import MemoryLog

log = logging.getLogger(__name__)


class Node:
    """One EventStream node: listeners, broker, write path and log.

    Args:
        config: the loaded configuration.
        config_file: the file it came from, watched for new ``auth`` rules.
        reload_config: loads the configuration again as at start (for those rules).

    Raises:
        TlsFileError: the certificate files cannot be used.
        TokensError: the tokens file cannot be used.
    """

    def __init__(self, config: Config, config_file: str | None = None,
                 reload_config: Callable[[], Config] | None = None) -> None:
        self.config = config
        self.started_at = time.monotonic()
        node_id = config.cluster.node_id
        storage = config.storage
        metrics = self.metrics = Metrics(node_id)
        self.placement = place(config.numa.enabled)
        self.lanes = lanes(config.queues.realtime_capacity, config.queues.batch_capacity)
        # Every file operation of the durable log, made once here (faulty only in tests).
        self.file_ops = file_ops()
        self.log: MemoryLog | DiskLog
        if storage.engine == "memory":
            self.log = MemoryLog(storage.partitions, storage.memory_max_bytes)
        else:
            self.log = DiskLog(storage, NativeWire(), file_ops=self.file_ops,
                               on_fsync=metrics.fsync_duration.record,
                               on_delete=retention_deleted(metrics))
        self.dedup = DedupWindow(int(config.dedup.window_seconds * 1e9), config.dedup.max_ids)
        restored = restore_dedup(self.dedup, self.log, time.time_ns())
        if restored:
            log.info("de-duplication: %d event ids restored from the log", restored)
        self.health = HealthState(PUBLIC_SERVICES)
        # Ids the server assigns: unique per process start, then a counter.
        id_prefix = (uuid.uuid4().hex[:16] + "-").encode()
        validator = EventValidator(config.limits)
        self.encoder = EventEncoder(validator.encoder_limits(), id_prefix)
        self.write_path = WritePath(
            self.lanes, self.log, self.dedup, self.encoder,
            drain_batch_events=config.queues.drain_batch_events,
            batch_share=config.queues.batch_lane_share,
            on_commit=CommitRecorder(metrics), on_halt=self.health.storage_failed)
        if isinstance(self.log, DiskLog):
            self.log.on_failure = self.write_path.storage_failed
        self.broker = Broker(self.write_path, config.subscribe.max_batch_events,
                             config.subscribe.max_batch_bytes)
        # Committed group offsets live beside the log: in memory with the
        # in-memory log, in <data_dir>/groups with the durable one.
        group_offsets = (GroupOffsets(storage.data_dir, self.file_ops)
                         if storage.engine == "disk" else None)
        self.dead_letters = DeadLetters(self.broker, self.encoder, ProtobufCopies(validator),
                                        metrics)
        self.groups = GroupCoordinator(
            self.log, self.dead_letters, time.monotonic_ns,
            stored_groups(group_offsets, self.log.partitions),
            max_groups=config.groups.max_groups,
            idle_expiry_ns=int(config.groups.idle_expiry_seconds * 1e9))
        self.write_path.on_applied = self.groups.wake_all
        self.group_upkeep = GroupUpkeep(self.groups, group_offsets,
                                        config.groups.idle_expiry_seconds)
        self.heap_trim = HeapTrimTask(metrics.memory_trimmed.add)
        tls = config.tls
        self.tls = ServerTls(TlsFiles(tls.cert_file, tls.key_file, tls.client_ca_file,
                                      tls.client_auth == "require")) if tls.enabled else None
        self.access = AccessControl(config.auth, read_tokens(config.auth.tokens_file),
                                    NativeWire(), metrics)
        self.security_reload = SecurityReload(config, config_file, reload_config, self.access,
                                              self.tls, metrics)
        guard = Guard(self.access)
        self.cluster = cluster.ClusterServicer(config, self.write_path, metrics, guard)
        consumer = consume.ConsumeServicer(self.broker, self.groups, config.groups,
                                           config.limits, metrics, guard)
        self.grpc = GrpcServer(config, [
            publish.PublishServicer(self.broker, self.encoder, config.limits, metrics,
                                    guard).handlers(),
            subscribe.SubscribeServicer(self.broker, config.limits, metrics, consumer,
                                        guard).handlers(),
            self.cluster.handlers(),
        ], self.health, self.tls)
        decoder = FrameDecoder(self.encoder, config.limits, config.ingest.max_frame_bytes)
        self.tcp = TcpIngest(config.ingest, config.limits, decoder,
                             BrokerSink(self.broker, "tcp"), metrics, self.access,
                             self.tls if tls.tcp else None)
        self.udp = UdpIngest(config.ingest, decoder, BrokerSink(self.broker, "udp"), metrics,
                             numa=config.numa.enabled)
        self.status = NodeStatus(
            config, __version__, self.health, self.write_path, self.lanes, self.log, self.broker,
            self.placement, Native(ABI_VERSION, NativeWire().crc32c_hardware), self.cluster.status,
            self._listener_ports, self.log.status if isinstance(self.log, DiskLog) else dict,
            self.started_at)
        self.http = HttpServer(self.health, metrics, self.status.document,
                               metrics_enabled=config.metrics.enabled,
                               metrics_path=config.metrics.path,
                               max_connections=config.metrics.max_connections,
                               header_timeout=config.metrics.header_timeout_seconds)
        self._stopping = asyncio.Event()
        observe_lanes(metrics, self.lanes)
        observe_log(metrics, self.log)
        if isinstance(self.log, DiskLog):
            observe_disk_log(metrics, self.log)
        observe_groups(metrics, self.groups, self.log)
        observe_ingest(metrics, self.tcp, self.udp)
        observe_node(metrics, dedup=self.dedup, placement=self.placement,
                     write_path=self.write_path, started_at=self.started_at)

    def _listener_ports(self) -> dict[str, int]:
        """The bound port of each listener (0 until it listens)."""
        return {"grpc": self.grpc.port, "http": self.http.port,
                "tcp": self.tcp.port, "udp": self.udp.port}

    async def start(self) -> None:
        """Bring the node up; it is SERVING when this returns."""
        config = self.config
        host = config.server.host
        await self.health.set(False, "starting")
        with listening(HTTP, host, config.metrics.port):
            await self.http.start(host, config.metrics.port)
        if isinstance(self.log, DiskLog):
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
        self.heap_trim.start()
        if config.server.warmup_seconds:
            await self.health.set(False, "warming up")
            await asyncio.sleep(config.server.warmup_seconds)
        # Everything made so far (modules, handlers, the server's own objects)
        # lives as long as the process: frozen, the collector stops scanning it,
        # which cut a full collection under load from 23-57 ms to 1-15 ms.
        gc.collect()
        gc.freeze()
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
        if config.cluster.enabled:
            log.warning("cluster.enabled is set but replication is not available in this "
                        "version: this node runs as a cluster of one")

    async def shutdown(self) -> bool:
        """Drain and stop.

        Returns True when every accepted event was committed (never after a storage error halted the write
        path).
        """
        server = self.config.server
        deadline = time.monotonic() + server.drain_grace_seconds + server.drain_timeout_seconds
        log.info("shutting down: NOT_SERVING, refusing new publishes and ingest connections")
        self.tcp.stop_accepting()
        self.udp.stop_accepting()
        # Datagrams already read are queued before publishing closes.
        await self.udp.finish(max(min(deadline - time.monotonic(), 5.0), 0.1))
        self.broker.stop_accepting()
        self.groups.wake_all()  # group members see the drain and end their streams
        await self.health.set(False, "draining")
        if server.drain_grace_seconds:
            await asyncio.sleep(server.drain_grace_seconds)
        clean = await self.broker.drain(max(deadline - time.monotonic(), 0.0))
        # Committed now: acknowledged-mode connections get their last ACKs.
        await self.tcp.close(max(min(deadline - time.monotonic(), 5.0), 0.1))
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
        await self.group_upkeep.stop()
        await self.broker.stop()
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
        except ListenError:
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
