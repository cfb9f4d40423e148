"""Who is calling on the cluster port: the metadata every peer call carries, and its check.

Pure: no I/O. A call names its cluster, its sender and the node it means to
reach (``eventstream-cluster-id``, ``eventstream-node-id``,
``eventstream-recipient``). :func:`check_call` says whether to serve it or
why not, as a :class:`Refusal` with the gRPC status to answer and the
reason it is counted under (``eventstream_cluster_peer_refused_total{reason}``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import grpc

CLUSTER_ID = "eventstream-cluster-id"
NODE_ID = "eventstream-node-id"
RECIPIENT = "eventstream-recipient"
CLIENT_ADDRESS = "eventstream-client-address"
"""Optional: ``host:port`` of the caller's public gRPC port (the leader hint clients get)."""
MAX_ID_BYTES = 255
"""Longest cluster or node id accepted in metadata."""

SERVICE = "eventstream.peer.v1.PeerService"
JOIN = f"/{SERVICE}/Join"
METHODS = frozenset(f"/{SERVICE}/{name}" for name in ("Exchange", "InstallSnapshot", "Forward",
                                                        "Join"))

Admit = Callable[[str], str]
"""Whether a node that is not a peer may call ``Join``: "" if so, else why not."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call on the cluster port is refused."""

    reason: str
    """The metric label: ``not_peer_method``, ``no_identity``, ``other_cluster``,
    ``unknown_node``, ``wrong_recipient``, ``invalid``, ``unknown_group``,
    ``implausible_joiner``."""
    code: grpc.StatusCode
    details: str


def identity_metadata(cluster_id: str, node_id: str, recipient: str, client_address: str = ""
                      ) -> tuple[tuple[str, str], ...]:
    """The metadata a node sends on each call to ``recipient`` (its public address if given)."""
    identity = ((CLUSTER_ID, cluster_id), (NODE_ID, node_id), (RECIPIENT, recipient))
    return (*identity, (CLIENT_ADDRESS, client_address)) if client_address else identity


def client_address(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The caller's public address from a checked call's metadata ("" when absent or too long)."""
    for key, value in metadata or ():
        if key == CLIENT_ADDRESS and isinstance(value, str) and len(value) <= MAX_ID_BYTES:
            return value
    return ""


def check_call(method: str, metadata: Sequence[tuple[str, str | bytes]] | None, *, cluster_id: str,
               node_id: str, peers: Collection[str], admit: Admit | None = None
               ) -> tuple[str, Refusal | None]:
    """Whether to serve a call of ``method`` with ``metadata``: (sender, None) or ("", refusal).

    ``peers`` are the node ids allowed to call (this node excluded); a
    ``Join`` from another node id is served when ``admit`` finds it plausible.
    """
    if method not in METHODS:
        return "", Refusal("not_peer_method", grpc.StatusCode.PERMISSION_DENIED,
                           f"{method or 'this call'} is not served on the cluster port")
    values: dict[str, str] = {}
    for key, value in metadata or ():
        if key in (CLUSTER_ID, NODE_ID, RECIPIENT) and isinstance(value, str) \
                and 0 < len(value) <= MAX_ID_BYTES:
            values[key] = value
    missing = [key for key in (CLUSTER_ID, NODE_ID, RECIPIENT) if key not in values]
    if missing:
        return "", Refusal("no_identity", grpc.StatusCode.UNAUTHENTICATED,
                           f"peer calls need the metadata {', '.join(missing)} "
                           f"(1 to {MAX_ID_BYTES} characters)")
    if values[CLUSTER_ID] != cluster_id:
        return "", Refusal("other_cluster", grpc.StatusCode.PERMISSION_DENIED,
                           f"{CLUSTER_ID}: {values[CLUSTER_ID]!r} is another cluster")
    sender = values[NODE_ID]
    if sender not in peers:
        if method != JOIN or admit is None:
            return "", Refusal("unknown_node", grpc.StatusCode.PERMISSION_DENIED,
                               f"{NODE_ID}: {sender!r} is not a peer of {node_id!r}")
        why = admit(sender)
        if why:
            return "", Refusal("implausible_joiner", grpc.StatusCode.PERMISSION_DENIED,
                               f"{NODE_ID}: {sender!r} may not join: {why}")
    if values[RECIPIENT] != node_id:
        return "", Refusal("wrong_recipient", grpc.StatusCode.PERMISSION_DENIED,
                           f"{RECIPIENT}: this is node {node_id!r}, not {values[RECIPIENT]!r}")
    return sender, None
