"""The server's configuration: frozen dataclasses with their defaults.

Pure: no I/O. The keys of the seed's ConfigMap (``server``, ``queues``,
``cluster``, ``metrics``) keep their names; the other sections are ours.
Loading, validation and overrides live in :mod:`.load`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServerConfig:
    """Listeners and lifecycle of the node."""

    host: str = "0.0.0.0"
    """Address every listener binds to: a host name or an address (``0.0.0.0``
    for every IPv4 interface, ``::`` for every interface); never empty.
    Default ``0.0.0.0``."""
    grpc_port: int = 9200
    """gRPC API port. Default 9200."""
    tcp_port: int = 9000
    """Raw TCP frame ingest port. Default 9000."""
    udp_port: int = 9001
    """Raw UDP frame ingest port. Default 9001."""
    warmup_seconds: float = 0.0
    """After start-up: seconds to keep answering NOT_SERVING with every listener
    up, so a node joins load balancing only once it is settled. Default 0."""
    drain_grace_seconds: float = 0.0
    """After SIGTERM: seconds to keep answering NOT_SERVING before closing, so load
    balancers stop routing here. A single node refuses new publishes meanwhile; a
    cluster member, after handing leadership over, forwards them. Default 0."""
    drain_timeout_seconds: float = 20.0
    """After SIGTERM: upper bound on committing accepted events and ending
    streams, after which the process exits anyway. Default 20 s."""
    event_loop: str = "uvloop"
    """``uvloop`` (faster) or ``asyncio``. Default ``uvloop``."""


@dataclass(frozen=True)
class QueuesConfig:
    """The two lanes events wait in between acceptance and commit."""

    realtime_capacity: int = 16384
    """Events the realtime lane (HIGH, CRITICAL) holds. Default 16384."""
    batch_capacity: int = 65536
    """Events the batch lane (BATCH, LOW, MEDIUM) holds. Default 65536."""
    drain_batch_events: int = 4096
    """Most events taken from the lanes for one round (one EVENTS entry of the
    log). Default 4096."""
    max_rounds_in_flight: int = 16
    """Most rounds proposed to the log and not yet applied. A single node
    applies a round once it is durable, so one or two are in flight; with
    replication the rounds of a replication round trip. Default 16."""
    batch_lane_share: float = 0.25
    """Share of each drain round kept for the batch lane while the realtime
    lane is busy: at least this share (whole submissions) while batch events
    wait, so batch keeps its share of throughput; also, rounded up to whole
    submissions, the most a round carrying realtime events takes from the
    batch lane. Default 0.25."""
    batch_ingest_mark: int = 8192
    """Events: a TCP connection whose last read brought only batch events
    reads again once at most this many batch events wait for the drain
    (about two rounds of the default ``drain_batch_events``), so batch
    producers are read as fast as rounds take their events, not ahead of
    them. 0: only a full lane pauses reading. Default 8192."""
    batch_yield_ms: float = 20.0
    """Milliseconds: while realtime publishers are active (a realtime event
    in the last second) and the event loop is saturated, the drain holds a
    round of only batch events back for at most this long, so realtime
    publishes reach their lane first. 0: never. Default 20."""


@dataclass(frozen=True)
class PeerTlsConfig:
    """Mutual TLS between the members on the cluster port (``cluster.tls``).

    Every member serves its certificate and presents the same one when it
    calls a peer, so it must be valid for both server and client use. A peer
    is any holder of a certificate that ``ca_file`` signs: that CA must sign
    this cluster's certificates only.
    """

    cert_file: str = ""
    """PEM certificate chain of this member (leaf first). Re-read when it changes."""
    key_file: str = ""
    """PEM private key of the certificate."""
    ca_file: str = ""
    """PEM bundle of the CAs that sign the members' certificates. Re-read when it changes."""
    server_name: str = ""
    """The name checked in a peer's certificate when calling it; empty: the
    host of the peer's address (then the certificates must name every
    address peers are dialled by, IP addresses included). Default empty."""
    reload_interval_seconds: float = 10.0
    """How often the files are checked for changes. Default 10 s."""


@dataclass(frozen=True)
class ClusterConfig:
    """Cluster membership, Raft timing and the peer links.

    With ``enabled`` and ``static`` discovery the node is a member of a
    replicated cluster (``cluster.replicated``); otherwise it runs as a
    cluster of one and says so in its status.
    """

    enabled: bool = False
    """Join a replicated cluster. Default false."""
    discovery: str = "static"
    """How the members are found: ``static`` (``peers``), ``dns`` (the
    StatefulSet's pod names under the headless service) or ``kubernetes``
    (the headless service's EndpointSlices, watched through the API server).
    Default ``static``."""
    namespace: str = "default"
    """Kubernetes namespace of the headless service. Default ``default``."""
    service: str = "eventstream-headless"
    """Headless service name used by ``dns``/``kubernetes`` discovery."""
    replicas: int = 1
    """Pods of the StatefulSet expected at start (``dns``, ``kubernetes``):
    the initial voters are ordinals 0 to ``min(voters, replicas) - 1``, and
    discovery waits at start until this node and a majority of them are
    found. Default 1."""
    voters: int = 3
    """Voters of the cluster (``dns``, ``kubernetes``), 1 to 9: the initial
    voters are ordinals 0 to ``min(voters, replicas) - 1``; a pod of a higher
    ordinal joins as a learner by itself (a read replica: it never votes, so
    scaling never changes the quorum). Default 3."""
    cluster_domain: str = "cluster.local"
    """Cluster DNS domain appended to the peers' names by ``dns`` discovery
    (``<pod>.<service>.<namespace>.svc.<cluster_domain>``); empty leaves the
    names ending in ``.svc`` for the resolver's search list to complete.
    Default ``cluster.local``."""
    dns_server: str = ""
    """``host:port`` of the DNS server ``dns`` discovery and the peer links
    ask, instead of the system resolver (tests, unusual setups). Default
    empty: the system resolver."""
    kubeconfig: str = ""
    """Kubeconfig file ``kubernetes`` discovery authenticates with; empty uses
    the pod's service account (token and CA mounted by Kubernetes). Default
    empty."""
    discovery_timeout_seconds: float = 300.0
    """At start: seconds ``dns`` and ``kubernetes`` discovery keep retrying
    (with back-off) until this node and a majority of the initial voters are found;
    after that the server refuses to start. Default 300 s."""
    port: int = 9100
    """Cluster (peer) port. Default 9100."""
    node_id: str = ""
    """This node's id; empty means NODE_ID, then POD_NAME, then the host name."""
    name: str = ""
    """The cluster's name. When set, the cluster id fixed at bootstrap is
    derived from it and the node ids, not from the peer addresses, so nodes
    that reach each other by different addresses (proxies, NAT) form one
    cluster. Default empty: the id comes from the whole peer map."""
    peers: tuple[str, ...] = ()
    """The members for ``static`` discovery: ``host:port``, where the host's
    first label is the node id (``eventstream-1.eventstream-headless:9100``),
    or ``node_id=host:port``."""
    join: bool = False
    """This node joins a running cluster: a new node (not among the initial
    members, ``cluster.peers``), or a member that lost its data dir and was
    removed. On an empty data dir it never forms a cluster of its own; it asks
    the leader to add it (granted to an initial voter, or to any node with
    ``cluster.tls``; otherwise ``ClusterService.AddMember``), then receives
    the log as a learner. ``static`` discovery only (a pod beyond
    ``voters`` joins without it). Default false."""
    tick_ms: int = 50
    """Milliseconds of one Raft tick, the clock of elections and heartbeats.
    Default 50."""
    election_ticks: int = 10
    """Ticks without a leader before a follower campaigns; each timeout is
    drawn in ``[election_ticks, 2 * election_ticks)``, so 0.5 to 1 s by
    default. Default 10."""
    heartbeat_ticks: int = 1
    """Ticks between a leader's heartbeats; below ``election_ticks``. Default 1."""
    max_append_bytes: int = 4 * 1024 * 1024
    """Most entry bytes in one append to a follower (at least one entry is
    always sent). Default 4 MiB."""
    max_inflight_appends: int = 256
    """Appends sent to a follower and not yet acknowledged, at most. Default 256."""
    max_rounds_in_flight: int = 2
    """A replicated member's ``queues.max_rounds_in_flight``: rounds proposed
    and not yet applied, at most. A round is applied once a follower has
    acknowledged it, so a small bound lets publishes that arrive meanwhile
    join the next round: fewer, larger rounds cost every member less (an
    append, an acknowledgement, a write and a fsync per round). Default 2."""
    further_round_share: float = 0.5
    """While a round is in flight, the leader proposes a further one only once
    this share of ``queues.drain_batch_events`` waits (or a realtime event
    does); until then what arrives joins the round after the one in flight.
    On a busy or shared core rounds grow instead of multiplying; an idle
    leader still proposes at once, and a loaded one with a core of its own
    still pipelines. 0: a further round goes out at once. Default 0.5."""
    send_queue_messages: int = 4096
    """Raft messages queued for one peer at most; one more is dropped (and
    the peer probed again). Default 4096."""
    max_batch_bytes: int = 8 * 1024 * 1024
    """Most bytes of messages sent to a peer in one request of its stream
    (at least one message). Default 8 MiB."""
    max_message_bytes: int = 256 * 1024 * 1024
    """Largest request a peer may send on the cluster port: an entry must fit.
    Default 256 MiB."""
    max_snapshot_bytes: int = 1024 * 1024 * 1024
    """Largest snapshot transfer sent or accepted (a follower far behind gets
    the leader's retained entries with the snapshot: they must fit). Default 1 GiB."""
    tls: PeerTlsConfig | None = None
    """Mutual TLS on the cluster port (file only); None: plaintext. Default None."""


@dataclass(frozen=True)
class MetricsConfig:
    """The HTTP listener: health, metrics and status."""

    enabled: bool = True
    """Serve Prometheus metrics. Health and status are always served."""
    port: int = 8080
    """HTTP port for /health, /metrics and /status. Default 8080."""
    path: str = "/metrics"
    """Path of the Prometheus endpoint; never ``/health*`` or ``/status*``,
    which it would hide. Default ``/metrics``."""
    max_connections: int = 128
    """HTTP connections open at once; one more is answered 503 and closed.
    Default 128."""
    header_timeout_seconds: float = 5.0
    """Seconds a connection has to send a whole request head (from connecting,
    or from the first byte of its next request); it is answered 408 and
    closed after that. Also how long an idle kept-alive connection stays
    open. Default 5 s."""


@dataclass(frozen=True)
class StorageConfig:
    """The committed log."""

    data_dir: str = "./data"
    """Directory of the node's data. Default ``./data`` (the image uses
    ``/var/lib/eventstream``)."""
    partitions: int = 8
    """Partitions of the log; events go by key hash, or topic hash when the
    key is empty. Default 8."""
    memory_max_bytes: int = 256 * 1024 * 1024
    """The in-memory log keeps at most this many bytes of events; the oldest
    are evicted first. Default 256 MiB."""
    engine: str = "disk"
    """``disk`` (segment files under ``data_dir``) or ``memory`` (lost at exit,
    for tests and benchmarks). Default ``disk``."""
    fsync: str = "always"
    """When committed events are forced to disk: ``always`` (before every
    acknowledgement, with group commit), ``interval`` (every
    ``fsync_interval_ms``) or ``never`` (left to the operating system).
    Default ``always``."""
    fsync_interval_ms: int = 1000
    """Period of the fsync under ``fsync: interval``. Default 1000 ms."""
    segment_bytes: int = 64 * 1024 * 1024
    """The log (every partition's records in one stream of segments) starts a
    new segment file once the active one holds this many bytes. Default 64 MiB."""
    segment_ms: int = 24 * 3600 * 1000
    """... or once the active segment's first event is this old. Default 1 day."""
    retention_ms: int = 7 * 24 * 3600 * 1000
    """Whole segments whose newest event is older than this are deleted; 0 keeps
    them forever. Default 7 days."""
    retention_bytes: int = 0
    """Oldest segments are deleted while a partition holds more than this many
    bytes (segments hold every partition: the largest decides); 0 means no
    limit. The active segment is never deleted. Default 0."""
    tail_cache_bytes: int = 64 * 1024 * 1024
    """Bytes of the newest events kept in memory (over all partitions) so live
    subscribers read no files. Default 64 MiB."""


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on what clients may send."""

    max_message_bytes: int = 1024 * 1024
    """Largest event payload. Default 1 MiB."""
    max_event_bytes: int = 0
    """Largest event published over gRPC, as encoded, every field counted
    (payload, headers, id, key, topic, publish_time); 0 means
    ``max_message_bytes`` + 64 KiB. Default 0."""
    max_request_bytes: int = 16 * 1024 * 1024
    """Largest gRPC request. Default 16 MiB."""
    max_batch_events: int = 10000
    """Most events in one batch or stream request. Default 10000."""
    max_topic_bytes: int = 255
    """Longest topic, in UTF-8 bytes. Default 255."""
    max_id_bytes: int = 255
    """Longest event id, in UTF-8 bytes. Default 255."""
    max_key_bytes: int = 1024
    """Longest ordering key, in UTF-8 bytes. Default 1024."""
    max_headers: int = 64
    """Most headers on one event. Default 64."""
    max_patterns: int = 64
    """Most topic patterns on one subscription. Default 64."""

    def event_bytes(self) -> int:
        """The effective ``max_event_bytes``."""
        return self.max_event_bytes or self.max_message_bytes + EVENT_HEADROOM


EVENT_HEADROOM = 64 * 1024
"""Bytes an event may hold beside a full payload when ``max_event_bytes`` is 0."""


@dataclass(frozen=True)
class IngestConfig:
    """Raw TCP and UDP frame ingest on ``server.tcp_port`` / ``server.udp_port``."""

    max_frame_bytes: int = 1024 * 1024 + 1024
    """Largest declared frame length (priority, topic length, topic and
    payload); a longer frame is refused with ``FRAME_TOO_LONG``. At most
    2**30, so it can never equal the acknowledged-mode handshake. Default
    1 MiB + 1 KiB."""
    max_connections: int = 1024
    """Most TCP ingest connections open at once; one more gets a
    ``CONNECTION_LIMIT`` error message and is closed. Default 1024."""
    idle_timeout_seconds: float = 300.0
    """A TCP connection that sends nothing for this long gets an
    ``IDLE_TIMEOUT`` error message and is closed; 0 never. Default 300 s."""
    frame_timeout_seconds: float = 30.0
    """Most seconds from the first byte of a TCP frame, of the acknowledged
    handshake or of an acknowledged batch to its last byte (time the server
    spends waiting for a lane or for ``max_buffered_bytes`` not counted);
    after it the connection gets a ``FRAME_TIMEOUT`` error message and is
    closed. Also the most an answer waits for the client to read it, after
    which the connection is dropped (``SEND_TIMEOUT``). Default 30 s."""
    receive_buffer_bytes: int = 64 * 1024
    """Bytes of each TCP connection's receive buffer: the socket is read into
    it and its frames validated there, a read at a time; memory is this much
    per open connection. A busy connection's read and the drain's round grow
    with it, so the per-read and per-round work is spread over more events:
    with 256 KiB a bulk TCP event costs the server about 1/3 less CPU, but
    while TCP producers flood the node, realtime publishers over gRPC wait
    several times longer for the event loop. Default 64 KiB."""
    max_buffered_bytes: int = 64 * 1024 * 1024
    """Bytes all TCP connections together hold beyond their receive buffers
    (``receive_buffer_bytes``): validated events on their way to a lane,
    frames larger than the receive buffer, acknowledged batches until they are whole. When
    they are used up, connections stop reading until there is room.
    Default 64 MiB."""
    udp_receive_buffer_bytes: int = 8 * 1024 * 1024
    """SO_RCVBUF asked for the UDP socket (forced past the kernel's rmem_max
    when the process may). Default 8 MiB."""
    udp_queue_bytes: int = 64 * 1024 * 1024
    """Bytes of datagrams the receive queue holds between the thread that
    reads the UDP socket and the event loop (4 bytes of header each); a
    datagram that finds it full is dropped as ``RECEIVE_QUEUE_FULL``.
    Default 64 MiB."""
    max_connections_per_source: int = 0
    """Most TCP ingest connections open at once from one source address; one
    more gets a ``CONNECTION_LIMIT`` error message and is closed. 0: no
    limit but ``max_connections``. Default 0."""
    udp_enabled: bool = True
    """Listen on ``server.udp_port``. UDP carries no credentials: with
    ``auth.enabled`` it needs ``udp_allowed_networks``, or this off.
    Default true."""
    udp_allowed_networks: tuple[str, ...] = ()
    """Source networks (CIDR, e.g. ``10.0.0.0/8``, ``fd00::/8``; a bare address
    is one host) whose datagrams are accepted; datagrams from anywhere else
    are dropped as ``SOURCE_NOT_ALLOWED``. Empty: any source. Default empty."""


@dataclass(frozen=True)
class DedupConfig:
    """De-duplication of client-chosen event ids."""

    window_seconds: float = 120.0
    """How long an id is remembered. Default 120 s."""
    max_ids: int = 1_000_000
    """Most ids remembered; the oldest are forgotten first. Default 1e6."""


@dataclass(frozen=True)
class SubscribeConfig:
    """Delivery to subscribers."""

    max_batch_events: int = 1000
    """Most events per delivery when the subscriber asks for no limit."""
    max_batch_bytes: int = 1024 * 1024
    """Most bytes of events per delivery; a single larger event still goes
    out, alone. Keep it under the clients' receive limit (4 MiB by default
    in gRPC). Default 1 MiB."""


@dataclass(frozen=True)
class GroupsConfig:
    """Consumer groups (SubscribeService.Consume); a member may ask for less."""

    max_in_flight: int = 1000
    """Most unacknowledged events one member holds. Default 1000."""
    ack_deadline_seconds: float = 30.0
    """Seconds before an unacknowledged event is delivered again. Default 30."""
    max_deliveries: int = 5
    """Deliveries before an event goes to ``dead-letter/<group>``. Default 5."""
    max_batch_events: int = 500
    """Most events per ConsumeResponse. Default 500."""
    max_batch_bytes: int = 1024 * 1024
    """Most bytes of events per ConsumeResponse; a single larger event still
    goes out, alone. Default 1 MiB."""
    max_groups: int = 1000
    """Most consumer groups at once, with members or not (groups whose
    offsets are stored count too); a member of one more new group is refused
    with RESOURCE_EXHAUSTED (``GROUPS_LIMIT``). Default 1000."""
    idle_expiry_seconds: float = 7 * 86400.0
    """A group without members for this long is forgotten, with its committed
    offsets (like Kafka's ``offsets.retention.minutes``): a member that comes
    back later starts it again from its ``start_from``. Default 7 days."""


@dataclass(frozen=True)
class NumaConfig:
    """NUMA placement of the queues (used by the native core)."""

    enabled: bool = False
    """Place queue memory and pin drain threads per NUMA node."""


@dataclass(frozen=True)
class LogConfig:
    """Structured logs on stderr."""

    level: str = "info"
    """``debug``, ``info``, ``warning`` or ``error``. Default ``info``."""
    format: str = "text"
    """``text`` or ``json``. Default ``text``."""


@dataclass(frozen=True)
class TlsConfig:
    """TLS on the gRPC port and the TCP ingest port (the HTTP port stays plain)."""

    enabled: bool = False
    """Serve TLS on ``server.grpc_port`` (and ``server.tcp_port`` with ``tcp``).
    Default false."""
    cert_file: str = ""
    """PEM file of the server's certificate chain (leaf first); required when
    enabled. Re-read when it changes."""
    key_file: str = ""
    """PEM file of the certificate's private key; required when enabled."""
    client_ca_file: str = ""
    """PEM bundle of the CAs that sign client certificates; needed by
    ``client_auth: require``. Re-read when it changes."""
    client_auth: str = "none"
    """``none`` (no client certificate asked for) or ``require`` (mutual TLS:
    a client without a certificate signed by ``client_ca_file`` cannot
    connect). Default ``none``."""
    tcp: bool = True
    """With ``enabled``: the TCP ingest port speaks TLS too. Default true."""
    reload_interval_seconds: float = 10.0
    """How often the files are checked for changes; a changed certificate is
    used for new connections, open ones keep theirs. Default 10 s."""


@dataclass(frozen=True)
class PermissionConfig:
    """Topic patterns one identity may use for one kind of access."""

    allow: tuple[str, ...] = ()
    """Patterns (``*`` one level, ``#`` the rest) that grant access."""
    deny: tuple[str, ...] = ()
    """Patterns that take it back, whatever ``allow`` says."""


@dataclass(frozen=True)
class ConsumePermissionConfig(PermissionConfig):
    """What an identity may consume as a member of consumer groups."""

    groups: tuple[str, ...] = ()
    """Group names it may join: exact names, ``*`` for any, or a prefix
    ending in ``*`` (``billing-*``)."""


@dataclass(frozen=True)
class QuotasConfig:
    """Limits of one identity; 0 means no limit."""

    publish_events_per_second: float = 0.0
    """Events published per second (a token bucket). Default 0."""
    publish_bytes_per_second: float = 0.0
    """Bytes of publish requests (gRPC) or frames (TCP) per second. Default 0."""
    burst_seconds: float = 1.0
    """How many seconds of the rates may be spent at once after a quiet
    spell (the buckets' size). Default 1."""
    max_publish_streams: int = 0
    """PublishStream calls open at once. Default 0."""
    max_subscriptions: int = 0
    """Subscribe and Consume calls open at once. Default 0."""


@dataclass(frozen=True)
class IdentityConfig:
    """One client identity: how it is recognised, what it may do, its quotas."""

    name: str = ""
    """The identity's name, used in tokens files and metric labels."""
    certificate_names: tuple[str, ...] = ()
    """Client certificate subject CNs or SANs (DNS, URI, e-mail, IP) that are
    this identity; empty: the name itself."""
    publish: PermissionConfig = field(default_factory=PermissionConfig)
    """Topics it may publish to. Dead-letter topics need an allow pattern that
    starts with ``dead-letter``."""
    subscribe: PermissionConfig = field(default_factory=PermissionConfig)
    """Topic patterns it may subscribe to."""
    consume: ConsumePermissionConfig = field(default_factory=ConsumePermissionConfig)
    """Consumer groups it may join, and their topic patterns."""
    admin: bool = False
    """May call the administrative ClusterService methods."""
    quotas: QuotasConfig | None = None
    """Its own quotas; None: ``auth.default_quotas``."""


@dataclass(frozen=True)
class AuthConfig:
    """Authentication, per-topic authorization and quotas of client identities.

    Re-read from the config file (this section only) and the tokens file
    when they change.
    """

    enabled: bool = False
    """Every client must authenticate (a client certificate or a bearer
    token) and is held to its identity's rules. Default false."""
    tokens_file: str = ""
    """File of bearer tokens, hashed: one ``<identity> sha256:<hex>`` per line."""
    reload_interval_seconds: float = 10.0
    """How often the config file and the tokens file are checked for changes.
    Default 10 s."""
    identities: tuple[IdentityConfig, ...] = ()
    """The identities and their permissions."""
    default_quotas: QuotasConfig = field(default_factory=QuotasConfig)
    """Quotas of identities without their own."""


@dataclass(frozen=True)
class Config:
    """The whole configuration; every section has working local defaults."""

    server: ServerConfig = field(default_factory=ServerConfig)
    queues: QueuesConfig = field(default_factory=QueuesConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    subscribe: SubscribeConfig = field(default_factory=SubscribeConfig)
    groups: GroupsConfig = field(default_factory=GroupsConfig)
    numa: NumaConfig = field(default_factory=NumaConfig)
    log: LogConfig = field(default_factory=LogConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)


def sections() -> dict[str, type]:
    """Map each top-level key to its section's dataclass."""
    return {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]
