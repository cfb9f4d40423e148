"""The ``cluster`` config section turned into what the driver and the transport take.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from eventstream.server.config.model import ClusterConfig
from eventstream.server.raft import Config


def raft_config(cluster: ClusterConfig, group_id: int = 0) -> Config:
    """The Raft core's settings for this node from the ``cluster`` section.

    Raises:
        ValueError: settings the core refuses (e.g. heartbeat not below election).
    """
    return Config(cluster.node_id, group_id=group_id, election_ticks=cluster.election_ticks,
                  heartbeat_ticks=cluster.heartbeat_ticks, max_msg_bytes=cluster.max_append_bytes,
                  max_inflight_msgs=cluster.max_inflight_appends)


def tick_seconds(cluster: ClusterConfig) -> float:
    """The real time of one Raft tick."""
    return cluster.tick_ms / 1000.0


def transport_options(cluster: ClusterConfig) -> dict[str, int]:
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
