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
import itertools
import logging
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import __version__
from .broker.broker import Broker
from .broker.dedup import DedupWindow
from .broker.groups import GROUP_NAME, Group, GroupCoordinator, StoredGroup
from .broker.lanes import Submission, lanes
from .broker.priority import Lane
from .broker.write_path import RoundResult, WritePath
from .config.model import Config
from .health import HealthState
from .heap_trim import HOLE_ENV, PERIOD_SECONDS, HeapTrimmer
from .ingest.frames import FrameDecoder
from .ingest.sink import BrokerSink
from .ingest.tcp import TcpIngest
from .ingest.udp import UdpIngest
from .http.server import HttpServer
from .listeners import GRPC, HTTP, TCP, UDP, ListenError, listening
from .observability.metrics import Metrics, Reading
from .placement import place
from .native import ABI_VERSION, EventEncoder, NativeWire
from .rpc import cluster, consume, publish, subscribe
from .rpc.convert import EventValidator
from .rpc.dead_letter import DeadLetters
from .rpc.dedup_restore import restore_dedup
from .storage.disk_log import DiskLog
from .storage.failure import StorageFailed
from .storage.fileops import file_ops
from .storage.group_offsets import GroupOffsets
from .storage.memory_log import MemoryLog

log = logging.getLogger(__name__)

PUBLIC_SERVICES = [publish.SERVICE, subscribe.SERVICE, cluster.SERVICE]
LAG_COUNT_BUDGET = 4096
"""Events examined per group per tenth of a second for the lag (40 k/s)."""


class Node:
    """One EventStream node: listeners, broker, write path and log.

    Args:
        config: the loaded configuration.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started_at = time.monotonic()
        node_id = config.cluster.node_id
        self.metrics = Metrics(node_id)
        self.placement = place(config.numa.enabled)
        self.lanes = lanes(config.queues.realtime_capacity, config.queues.batch_capacity)
        # Every file operation of the durable log, made once here (faulty only in tests).
        self.file_ops = file_ops()
        self.storage_error = ""
        """The errno name of the storage error that halted writes ("" while none did)."""
        self._halting: asyncio.Task[None] | None = None
        self.log = self._open_log()
        self.dedup = DedupWindow(int(config.dedup.window_seconds * 1e9), config.dedup.max_ids)
        restored = restore_dedup(self.dedup, self.log, time.time_ns())
        if restored:
            log.info("de-duplication: %d event ids restored from the log", restored)
        # Ids the server assigns: unique per process start, then a counter.
        id_prefix = (uuid.uuid4().hex[:16] + "-").encode()
        self.encoder = EventEncoder(EventValidator(config.limits).encoder_limits(), id_prefix)
        self.write_path = WritePath(
            self.lanes, self.log, self.dedup, self.encoder,
            drain_batch_events=config.queues.drain_batch_events,
            batch_share=config.queues.batch_lane_share, on_commit=self._on_commit,
            on_halt=self._on_halt)
        self.broker = Broker(self.write_path, config.subscribe.max_batch_events,
                             config.subscribe.max_batch_bytes)
        # Committed group offsets live beside the log: in memory with the
        # in-memory log, in <data_dir>/groups with the durable one.
        self.group_offsets = (GroupOffsets(config.storage.data_dir, self.file_ops)
                              if config.storage.engine == "disk" else None)
        self.groups = GroupCoordinator(
            self.log, lambda *args: self.dead_letters.move(*args), time.monotonic_ns,
            self._stored_groups(), max_groups=config.groups.max_groups,
            idle_expiry_ns=int(config.groups.idle_expiry_seconds * 1e9))
        self.dead_letters = DeadLetters(self.broker, self.groups, self.encoder,
                                        EventValidator(config.limits), self.metrics)
        self.consume = consume.ConsumeServicer(self.broker, self.groups, config.groups,
                                               config.limits, self.metrics)
        self._expiry: asyncio.Task[None] | None = None
        self._trimming: asyncio.Task[None] | None = None
        self.health = HealthState(PUBLIC_SERVICES)
        self.cluster = cluster.ClusterServicer(config, self.write_path, self.metrics)
        self.http = HttpServer(self.health, self.metrics, self.status,
                               metrics_enabled=config.metrics.enabled,
                               metrics_path=config.metrics.path,
                               max_connections=config.metrics.max_connections,
                               header_timeout=config.metrics.header_timeout_seconds)
        decoder = FrameDecoder(self.encoder, config.limits, config.ingest.max_frame_bytes)
        self.tcp = TcpIngest(config.ingest, config.limits, decoder,
                             BrokerSink(self.broker, "tcp"), self.metrics)
        self.udp = UdpIngest(config.ingest, decoder, BrokerSink(self.broker, "udp"), self.metrics,
                             numa=config.numa.enabled)
        self.grpc_server: grpc.aio.Server | None = None
        self.grpc_port = 0
        self._stopping = asyncio.Event()
        self._observe()

    def _stored_groups(self) -> dict[str, StoredGroup]:
        """The groups whose committed offsets are on disk, idle since their last save.

        Raises:
            DataDirRefused: a damaged offsets file.
        """
        if self.group_offsets is None:
            return {}
        saved = self.group_offsets.load_all(
            self.log.partitions, lambda name: GROUP_NAME.fullmatch(name) is not None)
        ago = time.time_ns() - time.monotonic_ns()   # wall clock minus monotonic clock
        return {name: StoredGroup(entry.offsets, min(entry.saved_ns - ago, time.monotonic_ns()))
                for name, entry in saved.items()}

    def _open_log(self) -> MemoryLog | DiskLog:
        storage, metrics = self.config.storage, self.metrics
        if storage.engine == "memory":
            return MemoryLog(storage.partitions, storage.memory_max_bytes)

        def deleted(partition: int, segments: int, size: int) -> None:
            attrs = {"partition": str(partition)}
            metrics.retention_segments.add(segments, attrs)
            metrics.retention_bytes.add(size, attrs)

        disk_log = DiskLog(storage, NativeWire(), file_ops=self.file_ops,
                           on_fsync=metrics.fsync_duration.record, on_delete=deleted,
                           on_failure=self._on_storage_failure)
        partitions = [(p, {"partition": str(p)}) for p in range(disk_log.partitions)]
        metrics.start_partitions_at_zero(disk_log.partitions)
        metrics.observe("eventstream.storage.bytes",
                        lambda: [(disk_log.retained_bytes(p), a) for p, a in partitions])
        metrics.observe("eventstream.storage.segments",
                        lambda: [(disk_log.segment_count(p), a) for p, a in partitions])
        return disk_log

    def _observe(self) -> None:
        lanes, event_log, metrics = self.lanes, self.log, self.metrics
        by_lane = [(lane, {"queue": lane.label}) for lane in Lane]
        metrics.observe("eventstream.queue.depth",
                        lambda: [(lanes.depth[lane], attrs) for lane, attrs in by_lane])
        metrics.observe("eventstream.queue.capacity",
                        lambda: [(lanes.capacity[lane], attrs) for lane, attrs in by_lane])
        metrics.observe("eventstream.queue.full",
                        lambda: [(lanes.full_rejections[lane], attrs) for lane, attrs in by_lane])
        metrics.observe("eventstream.queue.pushes",
                        lambda: [(lanes.pushed[lane], attrs) for lane, attrs in by_lane])
        metrics.observe("eventstream.queue.pops",
                        lambda: [(lanes.popped[lane], attrs) for lane, attrs in by_lane])
        partitions = [(p, {"partition": str(p)}) for p in range(event_log.partitions)]
        metrics.observe("eventstream.log.retained",
                        lambda: [(event_log.retained_bytes(p), a) for p, a in partitions])
        metrics.observe("eventstream.log.end_offset",
                        lambda: [(event_log.high_watermark(p), a) for p, a in partitions])
        metrics.observe("eventstream.log.evicted", lambda: [(event_log.evicted, {})])
        metrics.observe("eventstream.dedup.ids", lambda: [(len(self.dedup), {})])
        groups = self.groups.groups

        def per_group(read: Callable[[Group], int]) -> Reading:
            return lambda: [(read(group), {"group": name}) for name, group in list(groups.items())]

        metrics.observe("eventstream.group.lag", per_group(
            lambda group: group.lag([event_log.high_watermark(p)
                                     for p in range(event_log.partitions)])))
        metrics.observe("eventstream.group.members", per_group(lambda group: len(group.members)))
        metrics.observe("eventstream.group.acks", per_group(lambda group: group.acked))
        metrics.observe("eventstream.group.redeliveries", per_group(lambda group: group.redelivered))
        metrics.observe("eventstream.group.dead_lettered",
                        per_group(lambda group: group.dead_lettered))
        metrics.observe("eventstream.group.acks_ignored", per_group(lambda group: group.ignored))
        metrics.observe("eventstream.groups", lambda: [(self.groups.count, {})])
        metrics.observe("eventstream.numa.nodes",
                        lambda: [(len(self.placement.nodes), {})])
        metrics.observe("eventstream.gc.frozen", lambda: [(gc.get_freeze_count(), {})])
        metrics.observe("eventstream.ingest.udp.kernel_drops",
                        lambda: [(self.udp.kernel_drops(), {})])
        for name, field in (("depth", "depth"), ("used", "depth_bytes"),
                            ("capacity", "capacity_bytes")):
            metrics.observe(f"eventstream.ingest.udp.queue.{name}",
                            lambda field=field: self.udp.queue_reading(field))
        metrics.observe("eventstream.storage.failed", lambda: [
            (1, {"error": self.storage_error}) if self.storage_error else (0, {})])
        metrics.observe("eventstream.ingest.buffered",
                        lambda: [(self.tcp.budget.used, {"transport": "tcp"})])
        metrics.observe("eventstream.uptime",
                        lambda: [(time.monotonic() - self.started_at, {})])

    async def _expire_acks(self) -> None:
        """Deliver again, ten times a second, what passed its ack deadline and
        examine new events for the groups' lag; twice a second, forget groups
        idle too long and save moved group offsets."""
        for tick in itertools.count(1):
            await asyncio.sleep(0.1)
            self.groups.expire()
            self.groups.count_ahead(LAG_COUNT_BUDGET)
            if tick % 5 == 0:
                expired = self.groups.expire_idle()
                if expired:
                    log.info("consumer groups without members for %g s forgotten "
                             "(groups.idle_expiry_seconds): %s",
                             self.config.groups.idle_expiry_seconds, ", ".join(expired))
                if self.group_offsets is not None:
                    moved = self.groups.unsaved()
                    if moved or expired:
                        await asyncio.to_thread(self._save_group_offsets, moved, expired)

    async def _trim_heap(self, trimmer: HeapTrimmer) -> None:
        """Every few seconds, give freed C heap back to the system if there is enough."""
        if hole := trimmer.leave_hole_if_asked():
            log.warning("%s=%d: left that much free heap to trim (a test-only setting)", HOLE_ENV, hole)
        while True:
            await asyncio.sleep(PERIOD_SECONDS)
            if trimmer.due():
                self.metrics.memory_trimmed.add(await asyncio.to_thread(trimmer.trim))

    def _save_group_offsets(self, moved: list[tuple[Group, list[int]]],
                            expired: Sequence[str] = ()) -> None:
        """Save the offsets of groups that moved and delete those of expired
        groups (fsync: off the event loop when it runs)."""
        assert self.group_offsets is not None
        for name in expired:
            try:
                self.group_offsets.delete(name)
            except OSError:
                log.exception("cannot delete the offsets of expired group %s", name)
        for group, frontiers in moved:
            try:
                self.group_offsets.save(group.name, frontiers)
            except OSError as error:
                log.error("cannot save the offsets of group %s (%s); retrying", group.name, error)
                continue
            self.groups.saved(group, frontiers)

    def _on_storage_failure(self, failure: StorageFailed) -> None:
        """The durable log failed outside a commit (a periodic fsync): halt writes."""
        self.write_path.halt(failure.reason, failure.error)

    def _on_halt(self, reason: str, error: str) -> None:
        """Writes halted: NOT_SERVING until the process restarts; /status and a metric say why."""
        self.storage_error = error
        self._halting = asyncio.get_running_loop().create_task(
            self.health.set(False, "storage failed"), name="storage-failed")

    def _on_commit(self, taken: list[Submission], results: list[RoundResult]) -> None:
        self.groups.wake_all()
        metrics = self.metrics
        now = time.time_ns()
        for submission, result in zip(taken, results):
            attrs = {"transport": submission.transport}
            duplicates = result.duplicates
            metrics.committed.add(result.count - duplicates, attrs)
            if duplicates:
                metrics.duplicates.add(duplicates, attrs)
            metrics.publish_latency.record((now - submission.received_ns) / 1e9, attrs)
        metrics.commits.add(1)

    def status(self) -> dict[str, Any]:
        """The /status document."""
        cluster_status = self.cluster.status()
        return {
            "node": self.config.cluster.node_id,
            "version": __version__,
            "role": "leader",
            "phase": self.health.phase,
            "serving": self.health.serving,
            "writes": {"halted": self.write_path.halted is not None,
                       "reason": self.write_path.halted},
            "uptime_seconds": round(time.monotonic() - self.started_at, 3),
            "native": {"abi_version": ABI_VERSION, "crc32c_hardware": NativeWire().crc32c_hardware},
            "numa": self.placement.status(),
            "cluster": {
                "enabled": self.config.cluster.enabled,
                "replication": "none (cluster of one)",
                "term": cluster_status.term,
                "commit_index": cluster_status.commit_index,
                "leader": cluster_status.leader_id,
                "members": [m.node_id for m in cluster_status.members],
            },
            "lanes": {
                lane.label: {"depth": self.lanes.depth[lane], "capacity": self.lanes.capacity[lane],
                             "full_rejections": self.lanes.full_rejections[lane]}
                for lane in Lane
            },
            "log": {
                "kind": self.config.storage.engine,
                "partitions": self.log.partitions,
                "retained_bytes": sum(self.log.retained_bytes(p)
                                      for p in range(self.log.partitions)),
                "end_offsets": [self.log.high_watermark(p) for p in range(self.log.partitions)],
                "start_offsets": [self.log.start_offset(p) for p in range(self.log.partitions)],
                "evicted": self.log.evicted,
                **(self.log.status() if isinstance(self.log, DiskLog) else {}),
            },
            "subscribers": self.broker.subscription_count,
            "listeners": {"grpc": self.grpc_port, "http": self.http.port,
                          "tcp": self.tcp.port, "udp": self.udp.port},
        }

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
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", config.limits.max_request_bytes),
            ("grpc.max_send_message_length", send_limit(config)),
            ("grpc.so_reuseport", 0),
        ])
        server.add_generic_rpc_handlers((
            publish.PublishServicer(self.broker, self.encoder, config.limits, self.metrics).handlers(),
            subscribe.SubscribeServicer(self.broker, config.limits, self.metrics,
                                        self.consume).handlers(),
            self.cluster.handlers(),
        ))
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, server)
        reflection.enable_server_reflection(
            [*PUBLIC_SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME], server)
        with listening(GRPC, host, config.server.grpc_port):
            self.grpc_port = server.add_insecure_port(f"{host}:{config.server.grpc_port}")
            if not self.grpc_port:
                raise RuntimeError("no port bound")
        await server.start()
        self.grpc_server = server
        with listening(TCP, host, config.server.tcp_port):
            await self.tcp.start(host, config.server.tcp_port)
        with listening(UDP, host, config.server.udp_port):
            await self.udp.start(host, config.server.udp_port)
        self._expiry = asyncio.get_running_loop().create_task(self._expire_acks(), name="ack-deadlines")
        trimmer = HeapTrimmer()
        if trimmer.available:
            self._trimming = asyncio.get_running_loop().create_task(
                self._trim_heap(trimmer), name="heap-trim")
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
                 __version__, config.cluster.node_id, host, self.grpc_port, host, self.http.port,
                 config.metrics.path, host, self.tcp.port, host, self.udp.port,
                 self.udp.receive_buffer, _describe_log(config), self.log.partitions)
        if config.cluster.enabled:
            log.warning("cluster.enabled is set but replication is not available in this "
                        "version: this node runs as a cluster of one")

    async def shutdown(self) -> bool:
        """Drain and stop; returns True when every accepted event was committed
        (never after a storage error halted the write path)."""
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
        """Stop the gRPC server (``grace`` seconds for calls in flight), the
        background tasks, the write path and the log, and the HTTP listener."""
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=grace)
        for task in (self._expiry, self._trimming):
            if task is not None:
                task.cancel()
        if self.group_offsets is not None:
            self._save_group_offsets(self.groups.unsaved())
        await self.broker.stop()
        await self.http.stop()
        self.metrics.shutdown()

    async def _abandon_start(self) -> None:
        """Undo a start that failed on a listener, quietly: the node never
        served (no drain; events accepted in the moment, if any, were not
        acknowledged and their publishers retry)."""
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


# What a stored record adds to an event as published (the server's fields, a
# generated id, the framing) is far below this.
_RECORD_SLACK = 64 * 1024


def send_limit(config: Config) -> int:
    """The gRPC send limit: above every delivery the node can build, so that
    any one event it accepted can always be delivered."""
    limits = config.limits
    largest = max(limits.event_bytes(), limits.max_message_bytes + limits.max_topic_bytes,
                  config.subscribe.max_batch_bytes, config.groups.max_batch_bytes,
                  limits.max_request_bytes)
    return min(largest + _RECORD_SLACK, 2**31 - 1)


def _describe_log(config: Config) -> str:
    storage = config.storage
    if storage.engine == "memory":
        return "in memory"
    return f"on disk at {storage.data_dir} (fsync {storage.fsync})"
