"""A replicated node's identity in its data dir: the cluster id and the initial voters.

The initial voters (``cluster.peers``) form the cluster once, when their data
dirs are empty: each of them derives the same cluster id
(:func:`derive_cluster_id`: from ``cluster.name`` and the node ids when a
name is set, else from the whole peer map) and writes ``cluster.json`` into
its data dir (``{"cluster_id", "node_id", "voters", "caught_up", "joiner"}``)
before its first entry (``caught_up``: see ``vote_gate``). From then
on the file is what counts, not the configuration: the id is checked on
every peer call (another cluster's node is refused) and the voters are the
membership the Raft log starts from. A data dir that holds a log but no
``cluster.json`` (a single node's, or a damaged one) is refused, and so is a
file written for another node id.

A joining node (not among the initial voters: ``cluster.join``, or a pod
beyond ``cluster.voters``) writes the
same file, with the same derived cluster id and initial voters, and
``"joiner": true``: its log starts from the initial membership like every
member's, it is not a voter in it, so it never campaigns; it waits until the
leader adds it through the log (it asks, ``cluster.joining``, or an operator
calls ``ClusterService.AddMember``). From then the log, not this file, says
what it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..storage.entry_api import EntryLog
from ..storage.failure import DataDirRefused
from ..storage.fileops import FileOps

log = logging.getLogger(__name__)

IDENTITY_FILE = "cluster.json"


@dataclass(frozen=True, slots=True)
class ClusterIdentity:
    """What ``cluster.json`` records."""

    cluster_id: str
    node_id: str
    voters: frozenset[str]
    """The initial voters: the membership the log starts from."""
    bootstrapped: bool = False
    """True when this start wrote the file (the data dir was empty)."""
    caught_up: bool = True
    """False from the bootstrap until the member's log held the cluster's commit index
    (see ``vote_gate``)."""
    joiner: bool = False
    """True for a node that was not an initial voter (``discovery.joins``)."""


def derive_cluster_id(peers: Mapping[str, str], name: str = "") -> str:
    """The id every initial voter derives at bootstrap.

    Without ``name``, from the peer map (ids and addresses), which every
    voter must then list alike. With ``name``, from it and the sorted node
    ids only: voters that reach each other by different addresses (through
    proxies or NAT) still agree.
    """
    if name:
        text = "name=" + name + "\n" + "\n".join(sorted(peers))
    else:
        text = "\n".join(f"{node}={address}" for node, address in sorted(peers.items()))
    return "es-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def load_or_bootstrap(root: Path, node_id: str, peers: Mapping[str, str], event_log: EntryLog,
                      ops: FileOps, name: str = "", joiner: bool = False) -> ClusterIdentity:
    """Read ``cluster.json``, or write it when the data dir is empty (see the module docstring).

    ``peers`` are the initial voters; ``joiner``: this node is not one of them.

    Raises:
        DataDirRefused: the file is unreadable or names another node, or the
            data dir holds a log without it.
    """
    path = root / IDENTITY_FILE
    if path.exists():
        try:
            document = json.loads(path.read_text())
            identity = ClusterIdentity(str(document["cluster_id"]), str(document["node_id"]),
                                       frozenset(str(v) for v in document["voters"]),
                                       caught_up=bool(document.get("caught_up", True)),
                                       joiner=bool(document.get("joiner", False)))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataDirRefused(f"{path} is not a readable cluster identity ({exc})") from None
        if identity.node_id != node_id:
            raise DataDirRefused(f"{path}: the data dir belongs to node {identity.node_id!r}, "
                                 f"but cluster.node_id is {node_id!r}")
        if not identity.cluster_id or (node_id not in identity.voters and not identity.joiner):
            raise DataDirRefused(f"{path}: no cluster id, or {node_id!r} is not among its voters")
        return identity
    if event_log.last_index() > 0 or event_log.hard_state().term > 0 or \
            event_log.snapshot() is not None:
        raise DataDirRefused(f"{root} holds a log but no {IDENTITY_FILE}: it was not written by "
                             "a member of a cluster (a single node's data dir, or the file was "
                             "lost); start the node with an empty storage.data_dir")
    identity = ClusterIdentity(derive_cluster_id(peers, name), node_id, frozenset(peers),
                               bootstrapped=True, caught_up=False, joiner=joiner)
    write_identity(root, identity, ops)
    if joiner:
        log.info("joining cluster %s (initial voters %s): waiting to be added as a learner",
                 identity.cluster_id, ", ".join(sorted(identity.voters)))
    else:
        log.info("bootstrapped cluster %s with voters %s", identity.cluster_id,
                 ", ".join(sorted(identity.voters)))
    return identity


def write_identity(root: Path, identity: ClusterIdentity, ops: FileOps) -> None:
    """Write ``cluster.json`` whole (durable when this returns)."""
    ops.write_file(root / IDENTITY_FILE, json.dumps({
        "cluster_id": identity.cluster_id, "node_id": identity.node_id,
        "voters": sorted(identity.voters), "caught_up": identity.caught_up,
        "joiner": identity.joiner}).encode() + b"\n",
        sync=True)


__all__ = ["IDENTITY_FILE", "ClusterIdentity", "derive_cluster_id", "load_or_bootstrap",
           "write_identity"]
