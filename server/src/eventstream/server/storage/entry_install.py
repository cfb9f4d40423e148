"""Replacing the whole log by a leader's snapshot, atomically: the old log or the new one, never a mix.

A follower that lacks entries its leader no longer keeps starts over from
the leader's snapshot: the entry log then holds only the entries the leader
sent with it (its retained entries up to the snapshot's index, see
``cluster/snapshot_transfer.py``) and the application snapshot file is the
leader's. The new state is built beside the old one and switched to by one
rename (the commit point); :func:`finish_install` completes a switch a crash
interrupted, and drops a staging directory that was never committed. Runs on
the log's I/O thread or at start-up, before recovery; every file operation
goes through :class:`~.fileops.FileOps`, so faults can be injected.

Layout while installing (under the data dir)::

    install/          staging: log/<first index>.log and snapshot (removed at start)
    installed/        the same, committed: at start the switch is completed
    log.old/          the replaced log, deleted once the switch is done
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from .entry_data_dir import CLEAN_FILE, LOG_DIR, SNAPSHOT_FILE
from .entry_segment import encode_header, segment_name
from .fileops import FileOps
from .segment import Checksums

log = logging.getLogger(__name__)

STAGING_DIR = "install"
COMMITTED_DIR = "installed"
OLD_LOG_DIR = "log.old"


def install_log(root: Path, ops: FileOps, checksums: Checksums, *, first_index: int,
                prev_term: int, start_offsets: list[int], entries: bytes | memoryview,
                snapshot: bytes, bugs: frozenset[str] = frozenset()) -> None:
    """Replace the log under ``root`` by one segment of ``entries`` and the snapshot file.

    ``entries`` are encoded entries from ``first_index`` on (the entry
    format), ``start_offsets`` each partition's next offset before them and
    ``prev_term`` the term of the entry before them. Durable when it returns.

    ``bugs``: test-only (``install_old_log_first``, see ``entry_writer.TEST_BUGS``).

    Raises:
        OSError: a file operation failed; the data dir then holds the old
            state or, once committed, the new one (completed at start).
    """
    staging = root / STAGING_DIR
    _remove_tree(staging)
    ops.mkdir(staging / LOG_DIR)
    path = staging / LOG_DIR / f"{segment_name(first_index)}.log"
    fd = ops.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        ops.write(fd, encode_header(first_index, prev_term, start_offsets, checksums) + entries, path)
        ops.fsync(fd, path)
    finally:
        ops.close(fd)
    ops.fsync_dir(staging / LOG_DIR)
    ops.write_file(staging / SNAPSHOT_FILE, snapshot, sync=True)
    ops.fsync_dir(staging)
    if "install_old_log_first" in bugs:
        ops.rename(root / LOG_DIR, root / OLD_LOG_DIR)
    ops.rename(staging, root / COMMITTED_DIR)  # the commit point
    ops.fsync_dir(root)
    finish_install(root, ops)


def finish_install(root: Path, ops: FileOps) -> bool:
    """Complete a committed install, drop an uncommitted one; True when a new log was switched to.

    Idempotent: a crash at any step is completed by calling it again.

    Raises:
        OSError: a file operation failed.
    """
    _remove_tree(root / STAGING_DIR)
    committed = root / COMMITTED_DIR
    if not committed.exists():
        _remove_tree(root / OLD_LOG_DIR)
        return False
    if (committed / LOG_DIR).exists():
        if (root / LOG_DIR).exists():
            _remove_tree(root / OLD_LOG_DIR)
            ops.rename(root / LOG_DIR, root / OLD_LOG_DIR)
        ops.rename(committed / LOG_DIR, root / LOG_DIR)
    if (committed / SNAPSHOT_FILE).exists():
        ops.rename(committed / SNAPSHOT_FILE, root / SNAPSHOT_FILE)
    # It recorded where the old log ended: it must not vouch for the new one.
    ops.unlink(root / CLEAN_FILE)
    ops.fsync_dir(root)
    _remove_tree(root / OLD_LOG_DIR)
    _remove_tree(committed)
    ops.fsync_dir(root)
    log.info("the log under %s was replaced by a snapshot from the leader", root)
    return True


def _remove_tree(path: Path) -> None:
    """Delete a directory left by an install (garbage either way: no fault seam needed)."""
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["COMMITTED_DIR", "OLD_LOG_DIR", "STAGING_DIR", "finish_install", "install_log"]
