"""The ``cluster`` config section turned into what the driver and the transport take.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from eventstream.server.config import model
from eventstream.server.raft import Config


def raft_config(cluster: model.ClusterConfig, group_id: int = 0) -> Config:
    """The Raft core's settings for this node from the ``cluster`` section.

    Raises:
        ValueError: settings the core refuses (e.g. heartbeat not below election).
    """
    return Config(cluster.node_id, group_id=group_id, election_ticks=cluster.election_ticks,
                  heartbeat_ticks=cluster.heartbeat_ticks, max_msg_bytes=cluster.max_append_bytes,
                  max_inflight_msgs=cluster.max_inflight_appends)


def tick_seconds(cluster: model.ClusterConfig) -> float:
    """The real time of one Raft tick."""
    return cluster.tick_ms / 1000.0


def election_seconds(cluster: model.ClusterConfig) -> float:
    """The longest election timeout (a timeout is drawn below twice ``election_ticks``)."""
    return 2 * cluster.election_ticks * tick_seconds(cluster)


def transport_options(cluster: model.ClusterConfig) -> dict[str, int]:
    """Keyword arguments of ``GrpcTransport`` from the ``cluster`` section."""
    return {"send_queue_messages": cluster.send_queue_messages, "max_batch_bytes": cluster.max_batch_bytes,
            "max_message_bytes": cluster.max_message_bytes}


def parse_peers(entries: Iterable[str]) -> dict[str, str]:
    """Node id -> ``host:port`` from ``cluster.peers``.

    An entry is ``node_id=host:port``, or ``host:port`` whose host's first
    DNS label is the node id (a StatefulSet pod's name:
    ``eventstream-1.eventstream-headless.default.svc.cluster.local:9100``).

    Raises:
        ValueError: an entry without a port, with an empty id, or an id
            given twice (every problem, one per line).
    """
    peers: dict[str, str] = {}
    problems = []
    for entry in entries:
        text = entry.strip()
        node_id, separator, address = text.partition("=")
        if not separator:
            address = text
            node_id = text.split(":", 1)[0].split(".", 1)[0]
        host, colon, port = address.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            problems.append(f"cluster.peers: {entry!r} is not host:port (or node_id=host:port)")
            continue
        if not node_id or node_id in peers:
            problems.append(f"cluster.peers: {entry!r}: node id {node_id!r} is empty or given twice")
            continue
        peers[node_id] = address
    if problems:
        raise ValueError("\n".join(problems))
    return peers


def replicates(cluster: model.ClusterConfig) -> bool:
    """Whether the node joins a replicated cluster: ``cluster.enabled``, whatever the discovery."""
    return cluster.enabled


def cluster_problems(config: model.Config) -> list[str]:
    """What keeps a replicated node (:func:`replicates`) from starting, one line each."""
    cluster = config.cluster
    if not replicates(cluster):
        return []
    problems = []
    if config.storage.engine != "disk":
        problems.append("storage.engine: a cluster member needs 'disk' (a member that forgot "
                        "its log must not vote under its old identity), got "
                        f"{config.storage.engine!r}")
    if cluster.discovery != "static":
        if cluster.join:
            problems.append(f"cluster.join: needs cluster.discovery static, got "
                            f"{cluster.discovery!r}")
        return problems  # the members are checked by discovery (cluster.discovery.initial_members)
    try:
        peers = parse_peers(cluster.peers)
    except ValueError as error:
        return [*problems, *str(error).splitlines()]
    if not peers:
        problems.append("cluster.peers: empty; list every initial member (this node included) "
                        "as node_id=host:port")
    elif cluster.join:
        pass  # a new node, or an initial member that lost its data dir rejoining
    elif cluster.node_id not in peers:
        problems.append(f"cluster.node_id: {cluster.node_id!r} is not among cluster.peers "
                        f"({', '.join(sorted(peers))}); a node added to a running cluster "
                        "sets cluster.join: true")
    elif not peers[cluster.node_id].endswith(f":{cluster.port}"):
        problems.append(f"cluster.peers: this node's entry {peers[cluster.node_id]!r} does not "
                        f"end with cluster.port {cluster.port}")
    return problems
