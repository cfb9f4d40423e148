"""The data directory of the entry log (format version 2): lock, metadata, layout.

Runs once at start-up, before the node serves. Layout::

    meta.json       {"format_version": 2, "partitions": N, "cluster_id": ""}
    lock            held (flock) while a server uses the directory
    hard-state      the Raft hard state (:mod:`.hard_state`)
    clean-shutdown  where the log ended at the last clean stop (removed at start)
    snapshot        the application's state at an applied index (the Raft
                    shell's format; replaced whole), when one was taken
    log/            the segments (:mod:`.entry_segment`) and their ``.index`` files

``partitions`` is fixed when the directory is created. ``cluster_id`` is
empty until a cluster is bootstrapped on it (it is then fixed, so a node
never joins another cluster's log).

A data directory of format version 1 (a segment log per partition, before
the log of entries) is refused with what to do: its records carry no index
or term and its per-partition files have no entry order, so reading it as
version 2 would invent them; a migration would also have to decide the
cluster it belongs to, which only a bootstrap may.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .failure import DataDirRefused, start_refused
from .fileops import FileOps

FORMAT_VERSION = 2
"""Version of the data directory layout, segment and entry formats."""
META_FILE = "meta.json"
LOCK_FILE = "lock"
LOG_DIR = "log"
CLEAN_FILE = "clean-shutdown"
SNAPSHOT_FILE = "snapshot"


@dataclass(frozen=True, slots=True)
class Meta:
    """What ``meta.json`` records."""

    format_version: int
    partitions: int
    cluster_id: str
    """Fixed at cluster bootstrap; empty until then."""


def open_entry_data_dir(root: Path, partitions: int, ops: FileOps) -> tuple[int, Meta]:
    """Create or check the data directory; return the fd holding its lock and its metadata.

    Raises:
        DataDirRefused: another process uses it, it is of another format
            version, or its partition count differs from ``partitions``.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise start_refused(exc, root) from None
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(lock_fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise DataDirRefused(f"storage.data_dir {root} is in use by another server process"
                                 ) from None
        raise
    try:
        meta = _check_meta(root, partitions, ops)
        ops.mkdir(root / LOG_DIR)
    except BaseException:
        os.close(lock_fd)
        raise
    return lock_fd, meta


def read_snapshot(root: Path) -> bytes | None:
    """The snapshot file's bytes, None when there is none (its format is its writer's)."""
    try:
        return (root / SNAPSHOT_FILE).read_bytes()
    except FileNotFoundError:
        return None


def version_1_refusal(where: Path) -> DataDirRefused:
    """The refusal of a data directory of format version 1."""
    return DataDirRefused(
        f"{where}: the data dir holds format version 1 (a segment log per partition); this "
        f"server keeps format version {FORMAT_VERSION} (one log of entries) and cannot read "
        "version 1. Either keep serving it with the previous server version until its events "
        "are no longer needed, or move it away (keep a copy if its events matter) and start "
        "with an empty storage.data_dir")


def _check_meta(root: Path, partitions: int, ops: FileOps) -> Meta:
    meta_path = root / META_FILE
    if not meta_path.exists():
        if any(root.glob("partition-*")):
            raise version_1_refusal(root)
        if (root / LOG_DIR).exists() and any((root / LOG_DIR).iterdir()):
            raise DataDirRefused(f"{meta_path} is missing but the data dir holds a log; "
                                 "restore it or use an empty storage.data_dir")
        meta = Meta(FORMAT_VERSION, partitions, "")
        ops.write_file(meta_path, json.dumps({
            "format_version": meta.format_version, "partitions": meta.partitions,
            "cluster_id": meta.cluster_id}).encode() + b"\n", sync=True)
        return meta
    try:
        document = json.loads(meta_path.read_text())
        version = int(document["format_version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataDirRefused(f"{meta_path} is not readable metadata ({exc})") from None
    if version == 1:
        raise version_1_refusal(meta_path)
    if version != FORMAT_VERSION:
        raise DataDirRefused(f"{meta_path}: data format version {version}, but this server "
                             f"reads version {FORMAT_VERSION}; use a matching server version")
    try:
        recorded, cluster_id = int(document["partitions"]), str(document["cluster_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataDirRefused(f"{meta_path} is not readable metadata ({exc})") from None
    if recorded != partitions:
        raise DataDirRefused(f"{meta_path}: the data dir has {recorded} partitions but "
                             f"storage.partitions is {partitions}; the count is fixed when the "
                             f"data dir is created: set storage.partitions to {recorded}")
    return Meta(version, recorded, cluster_id)


__all__ = ["CLEAN_FILE", "FORMAT_VERSION", "LOG_DIR", "META_FILE", "SNAPSHOT_FILE", "Meta",
           "open_entry_data_dir", "read_snapshot", "version_1_refusal"]
