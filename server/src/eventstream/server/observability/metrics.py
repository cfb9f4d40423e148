"""Every metric the server exports, declared once.

OpenTelemetry instruments read through the Prometheus exporter; the HTTP
listener serves them at ``metrics.path``. Instruments are recorded per
request or per batch, never per event. The event counters on the publish
path are :class:`FastCounter`s: plain integers that OpenTelemetry reads at
collection, because an SDK counter's ``add`` costs microseconds per request;
the publish latency, recorded once per publish request, is a
:class:`FastHistogram` for the same reason.
Gauges and the observable counters are read by callbacks from the components
that own the numbers, registered with :meth:`Metrics.observe`.

Rendering: the numbers the callbacks report are read at once on the event
loop's thread (they belong to it), then the collection and the text
exposition, milliseconds of Python work, run in a worker thread
(:meth:`Metrics.render_off_loop`), so a scrape does not hold the loop for
that long: the thread gives the interpreter back every switch interval. The
OpenTelemetry SDK's instruments take their own locks, so recording on the
loop while a collection runs is safe, as under prometheus_client's own HTTP
server, which also collects in a thread.

Naming: whatever only grows (a running total) is a counter, exported with
``_total``; gauges are levels that go up and down, or positions
(``eventstream_log_end_offset``). Counters whose label values are known in
advance (a transport, a lane) are exported from the start, at zero, so a rate
or an alert has a series before the first event; series labelled with a
reason or an error code appear at their first occurrence, and histograms at
their first observation. A metric of one transport alone (``_udp_`` in its
name, datagrams) carries no ``transport`` label.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import accumulate

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Publish-to-commit latency spans 50 µs (memory) to seconds (a slow disk).
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                   0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Reading = Callable[[], Iterable[tuple[float, dict[str, str]]]]

TRANSPORTS = ("grpc", "tcp", "udp")


class FastCounter:
    """A monotonic counter kept as plain integers, read by OpenTelemetry at collection.

    Same ``add(amount, attributes)`` as an OpenTelemetry counter, at the cost
    of a dictionary update; exported as an observable counter (``_total``).
    """

    def __init__(self, meter: Meter, name: str, unit: str, description: str) -> None:
        self._values: dict[tuple[tuple[str, str], ...], int] = {}
        self._frozen: list[Observation] = []
        meter.create_observable_counter(name, callbacks=[self._read], unit=unit,
                                        description=description)

    def add(self, amount: int, attributes: Mapping[str, str] | None = None) -> None:
        """Add ``amount`` to the series of ``attributes``."""
        key = tuple(attributes.items()) if attributes else ()
        self._values[key] = self._values.get(key, 0) + amount

    def freeze(self) -> None:
        """Copy the values for the next collection (on the thread that adds)."""
        self._frozen = [Observation(value, dict(key)) for key, value in list(self._values.items())]

    def _read(self, _options: CallbackOptions) -> Iterable[Observation]:
        return self._frozen


class FastHistogram(Collector):
    """A histogram of fixed buckets kept as plain numbers, exported to Prometheus as one.

    Same ``record(amount, attributes)`` as an OpenTelemetry histogram, at the
    cost of a bisection and a dictionary lookup (an SDK histogram's
    ``record`` costs microseconds, once per publish request here). It is
    exported through a collector of its own in the Prometheus registry,
    beside OpenTelemetry's, under the name OpenTelemetry would give it; like
    an OpenTelemetry histogram it appears at its first observation.

    Args:
        name: the exported name (``_bucket``, ``_count`` and ``_sum`` are added).
        description: its help text.
        bounds: the buckets' upper bounds, ascending (``+Inf`` is added).
        label: the one attribute recorded with each value.
    """

    def __init__(self, name: str, description: str, bounds: tuple[float, ...],
                 label: str) -> None:
        self._name = name
        self._description = description
        self._bounds = bounds
        self._les = [floatToGoString(bound) for bound in bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._label = label
        self._series: dict[str, tuple[list[int], list[float]]] = {}
        """Per label value: a count per bucket (+Inf last), and [sum]."""
        self._frozen: list[tuple[str, list[int], float]] = []
        REGISTRY.register(self)

    def record(self, amount: float, attributes: Mapping[str, str]) -> None:
        """Count ``amount`` in the series of ``attributes`` (its ``label`` value)."""
        value = attributes[self._label]
        series = self._series.get(value)
        if series is None:
            series = self._series[value] = ([0] * (len(self._bounds) + 1), [0.0])
        series[0][bisect_left(self._bounds, amount)] += 1
        series[1][0] += amount

    def freeze(self) -> None:
        """Copy the values for the next collection (on the thread that records)."""
        self._frozen = [(value, counts[:], total[0])
                        for value, (counts, total) in list(self._series.items())]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """The Prometheus collector's side: what :meth:`freeze` copied."""
        if not self._frozen:
            return
        family = HistogramMetricFamily(self._name, self._description, labels=[self._label])
        for value, counts, total in self._frozen:
            family.add_metric([value], list(zip(self._les, accumulate(counts))), total)
        yield family

    def close(self) -> None:
        """Leave the Prometheus registry."""
        REGISTRY.unregister(self)


class Metrics:
    """The server's instruments and the Prometheus text rendering of them.

    Args:
        node_id: recorded on the resource (``target_info``), not per series.
    """

    def __init__(self, node_id: str) -> None:
        self._reader = PrometheusMetricReader()
        views = [View(instrument_name="eventstream.storage.fsync.duration",
                      aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS))]
        self._provider = MeterProvider(
            resource=Resource.create({"service.name": "eventstream", "service.instance.id": node_id}),
            metric_readers=[self._reader], views=views,
            exemplar_filter=AlwaysOffExemplarFilter())  # no traces to link; each record cost a check
        meter = self._provider.get_meter("eventstream.server")
        self._readings: dict[str, Reading] = {}
        self.received = FastCounter(
            meter, "eventstream.events.received", unit="1",
            description="Events received from producers, by transport")
        self.rejected = FastCounter(
            meter, "eventstream.events.rejected", unit="1",
            description="Events refused, by transport and reason")
        self.committed = FastCounter(
            meter, "eventstream.events.committed", unit="1",
            description="Events committed to the log, by transport")
        self.duplicates = FastCounter(
            meter, "eventstream.events.deduplicated", unit="1",
            description="Events acknowledged as duplicates of an earlier id, by transport")
        self.delivered = FastCounter(
            meter, "eventstream.events.delivered", unit="1",
            description="Events sent to subscribers, by transport")
        self.frames_forwarded = FastCounter(
            meter, "eventstream.ingest.forwarded", unit="1",
            description="Raw TCP and UDP frames this node forwarded to the leader while "
                        "following, by transport")
        self.publish_latency = FastHistogram(
            "eventstream_publish_latency_seconds",
            "Time from receiving a publish to acknowledging it", LATENCY_BUCKETS, "transport")
        self.fsync_duration = meter.create_histogram(
            "eventstream.storage.fsync.duration", unit="s",
            description="Time of one fsync round of the durable log (every file of a commit)")
        self.memory_trimmed = FastCounter(
            meter, "eventstream.memory.trimmed", unit="By",
            description="Resident bytes of freed C heap given back to the system (malloc_trim)")
        self.commits = FastCounter(
            meter, "eventstream.log.commits", unit="1", description="Commits of the write path")
        self.subscribers = meter.create_up_down_counter(
            "eventstream.subscribers", unit="1", description="Open subscriptions")
        self.rpc_errors = meter.create_counter(
            "eventstream.rpc.errors", unit="1",
            description="RPCs that ended with an error status, by method and code")
        self.ingest_connections = meter.create_up_down_counter(
            "eventstream.ingest.connections", unit="1",
            description="Raw TCP ingest connections open, by transport")
        self.ingest_closed = meter.create_counter(
            "eventstream.ingest.connections.closed", unit="1",
            description="Raw TCP ingest connections closed or refused, by transport and reason")
        self.ingest_backpressure = meter.create_counter(
            "eventstream.ingest.backpressure", unit="1",
            description="Times raw ingest (a TCP connection, or the UDP receive queue) "
                        "stopped reading because a lane was full, or a TCP connection "
                        "because ingest.max_buffered_bytes were in use, or (on a follower) "
                        "because its frames forwarded to the leader were at their bound")
        self.ingest_batch_paced = FastCounter(
            meter, "eventstream.ingest.batch_paced", unit="1",
            description="Times a raw TCP connection whose last read brought only batch events "
                        "waited for the batch lane to drain to queues.batch_ingest_mark "
                        "(only while realtime publishers are active)")
        self.http_closed = meter.create_counter(
            "eventstream.http.connections.closed", unit="1",
            description="HTTP connections refused (CONNECTION_LIMIT) or cut short "
                        "(HEADER_TIMEOUT), by reason")
        self.auth_failures = meter.create_counter(
            "eventstream.auth.failures", unit="1",
            description="Clients refused as unauthenticated, by transport and reason "
                        "(CREDENTIALS_MISSING, TOKEN_INVALID, CERTIFICATE_INVALID, TLS_HANDSHAKE)")
        self.auth_denied = meter.create_counter(
            "eventstream.auth.denied", unit="1",
            description="Requests (and published events) refused by an identity's permissions, "
                        "by identity (configured names, others as 'other') and access")
        self.quota_exceeded = meter.create_counter(
            "eventstream.quota.exceeded", unit="1",
            description="Requests refused (gRPC) or paused (TCP) by an identity's quota, by "
                        "identity (configured names, others as 'other') and quota")
        self.tls_reloads = meter.create_counter(
            "eventstream.tls.reloads", unit="1",
            description="Changed certificate files taken (result=ok) or refused (result=error), "
                        "by listener")
        self.auth_reloads = meter.create_counter(
            "eventstream.auth.reloads", unit="1",
            description="Changed auth rules or tokens files taken (result=ok) or refused "
                        "(result=error)")
        self.membership_changes = meter.create_counter(
            "eventstream.cluster.membership.changes", unit="1",
            description="Membership changes this node applied as the leader that made them, by "
                        "change (add_learner, promote, remove) and origin (admin: "
                        "ClusterService; join, rejoin, leave: a node's own Join request; "
                        "auto_promote: a rejoined initial voter that caught up)")
        self.datagrams = meter.create_counter(
            "eventstream.ingest.datagrams", unit="1",
            description="UDP datagrams read by the server")
        self.datagrams_dropped = meter.create_counter(
            "eventstream.ingest.datagrams.dropped", unit="1",
            description="UDP datagrams read but not accepted, by reason")
        for name, unit, description in (
            ("eventstream.queue.depth", "1", "Events accepted but not yet committed, by lane"),
            ("eventstream.queue.capacity", "1", "Events a lane holds, by lane"),
            ("eventstream.queue.waiting_peak", "1",
             "The most events that waited at once for the drain since start, by lane "
             "(queues.batch_ingest_mark bounds the batch lane's for TCP ingest while "
             "realtime publishers are active)"),
            ("eventstream.log.retained", "By", "Bytes of records retained, by partition"),
            ("eventstream.log.end_offset", "1", "Next offset of each partition"),
            ("eventstream.storage.bytes", "By", "Bytes of segment files, by partition"),
            ("eventstream.storage.segments", "1",
             "Segment files of the log, by partition (each holds every partition's records: "
             "the same count for each)"),
            ("eventstream.raft.term", "1", "The Raft term this node is in"),
            ("eventstream.raft.commit_index", "1", "Index of the last committed log entry"),
            ("eventstream.raft.applied_index", "1", "Index of the last applied log entry"),
            ("eventstream.cluster.is_leader", "1", "1 while this node leads its cluster, else 0"),
            ("eventstream.cluster.term", "1", "The Raft term this node is in"),
            ("eventstream.cluster.commit_index", "1", "Index of the last committed log entry"),
            ("eventstream.cluster.applied_index", "1", "Index of the last applied log entry"),
            ("eventstream.cluster.peers_connected", "1",
             "Peers whose link from this node is up (0 for a single node)"),
            ("eventstream.cluster.replication_lag", "1",
             "Entries a member lacks behind the leader's last entry, by peer (on the leader)"),
            ("eventstream.cluster.members", "1",
             "Members of the cluster as this node applied them, by role (voter, learner)"),
            ("eventstream.cluster.is_learner", "1",
             "1 while this node is a learner (a non-voting member), else 0"),
            ("eventstream.cluster.replication_lag_seconds", "s",
             "Age of the oldest entry a member lacks, by peer (on the leader; 0 when it "
             "lacks none)"),
            ("eventstream.storage.failed", "1",
             "1 once a storage error halted writes (by error, e.g. ENOSPC, EIO), else 0"),
            ("eventstream.dedup.ids", "1", "Event ids remembered for de-duplication"),
            ("eventstream.group.lag", "1", "Committed events a consumer group has not finished"),
            ("eventstream.group.members", "1", "Members of a consumer group"),
            ("eventstream.group.committed", "1",
             "Committed offsets of a consumer group as the log holds them, summed over the "
             "partitions (on every node of a cluster; moves when the leader writes them)"),
            ("eventstream.groups", "1",
             "Consumer groups the node knows (groups.max_groups), with members or not"),
            ("eventstream.numa.nodes", "1", "NUMA nodes found on this machine"),
            ("eventstream.gc.frozen", "1",
             "Objects made at start-up that the garbage collector no longer scans"),
            ("eventstream.uptime", "s", "Seconds since the node started"),
            ("eventstream.ingest.udp.queue.depth", "1",
             "UDP datagrams read and waiting in the receive queue"),
            ("eventstream.ingest.udp.queue.used", "By",
             "Bytes in use in the UDP receive queue (4 bytes of header per datagram)"),
            ("eventstream.ingest.udp.queue.capacity", "By", "Bytes the UDP receive queue holds"),
            ("eventstream.ingest.buffered", "By",
             "Bytes TCP ingest connections hold beyond their receive buffers "
             "(ingest.max_buffered_bytes)"),
        ):
            meter.create_observable_gauge(name, callbacks=[self._callback(name)], unit=unit,
                                          description=description)
        for name, description in (
            ("eventstream.queue.pushes", "Events queued, by lane"),
            ("eventstream.queue.pops", "Events taken by the drain, by lane"),
            ("eventstream.queue.full", "Requests refused because a lane was full, by lane"),
            ("eventstream.group.acks", "Events a consumer group acknowledged"),
            ("eventstream.group.redeliveries", "Events delivered again to a consumer group"),
            ("eventstream.group.dead_lettered", "Events moved to a group's dead-letter topic"),
            ("eventstream.group.acks_ignored",
             "Acks and nacks of a consumer group naming events the member did not hold"),
            ("eventstream.log.evicted", "Records evicted from the in-memory log"),
            ("eventstream.log.rounds",
             "Rounds of the write path: EVENTS entries proposed to the log, each one write"),
            ("eventstream.storage.fsyncs",
             "fdatasync calls on the log's segment files (under fsync: always, one per "
             "round or group of rounds written together, however many partitions)"),
            ("eventstream.storage.retention.deleted_segments",
             "Segments deleted by retention, by partition (the same count for each)"),
            ("eventstream.ingest.udp.kernel_drops",
             "UDP datagrams the kernel dropped before the server read them (socket buffer full)"),
            ("eventstream.cluster.elections",
             "Elections this node won since it started (summed over the members: every "
             "election)"),
            ("eventstream.cluster.forwarded",
             "Publish requests this node forwarded to the leader while following"),
            ("eventstream.cluster.peer.refused",
             "Calls refused on the cluster port, by reason (not_peer_method, no_identity, "
             "other_cluster, unknown_node, wrong_recipient, invalid, unknown_group, "
             "snapshot_too_large, snapshot_damaged)"),
            ("eventstream.cluster.snapshots",
             "Snapshot transfers to followers sent in whole and from the leader received "
             "and checked, by direction (sent, received)"),
        ):
            meter.create_observable_counter(name, callbacks=[self._callback(name)], unit="1",
                                            description=description)
        name = "eventstream.queue.batch_yield"
        meter.create_observable_counter(name, callbacks=[self._callback(name)], unit="s",
                                        description="Time the drain held rounds of only batch "
                                                    "events back while realtime publishers were "
                                                    "active and the event loop saturated "
                                                    "(queues.batch_yield_ms)")
        name = "eventstream.storage.retention.deleted"
        meter.create_observable_counter(name, callbacks=[self._callback(name)], unit="By",
                                        description="Bytes of records deleted by retention, "
                                                    "by partition")

        self._start_at_zero()
        self._fast = [value for value in vars(self).values() if isinstance(value, FastCounter)]
        self._frozen: dict[str, list[Observation]] = {}
        self._rendering = asyncio.Lock()

    def _start_at_zero(self) -> None:
        """Export the counters whose label values are known in advance at zero."""
        for transport in TRANSPORTS:
            attributes = {"transport": transport}
            for counter in (self.received, self.committed, self.duplicates):
                counter.add(0, attributes)
        self.delivered.add(0, {"transport": "grpc"})
        for transport in ("tcp", "udp"):
            self.ingest_backpressure.add(0, {"transport": transport})
            self.frames_forwarded.add(0, {"transport": transport})
        self.ingest_batch_paced.add(0, {"transport": "tcp"})
        self.ingest_connections.add(0, {"transport": "tcp"})
        for instrument in (self.commits, self.memory_trimmed, self.datagrams, self.subscribers):
            instrument.add(0)

    def _callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def read(_options: CallbackOptions) -> Iterable[Observation]:
            return self._frozen.get(name, [])
        return read

    def _freeze(self) -> None:
        """Read every number the callbacks report now, for the next collection."""
        for counter in self._fast:
            counter.freeze()
        self.publish_latency.freeze()
        self._frozen = {name: [Observation(value, attributes) for value, attributes in reading()]
                        for name, reading in list(self._readings.items())}

    def observe(self, name: str, reading: Reading) -> None:
        """Have gauge or observable counter ``name`` report what ``reading`` returns at each scrape."""
        self._readings[name] = reading

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric, all on the caller's thread."""
        self._freeze()
        return generate_latest(REGISTRY)

    async def render_off_loop(self) -> bytes:
        """The Prometheus text exposition of every metric, rendered in a worker thread.

        The numbers are read on the loop first; one rendering at a time.
        """
        async with self._rendering:
            self._freeze()
            return await asyncio.to_thread(generate_latest, REGISTRY)

    def shutdown(self) -> None:
        """Stop the provider and unregister from the Prometheus registry."""
        self._provider.shutdown()
        self.publish_latency.close()
