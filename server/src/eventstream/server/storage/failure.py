"""A failed file operation of the durable log, said in one line.

Pure apart from one ``statvfs`` of the data directory (for the free space,
when the failure is about space). The rule this module serves: after any
storage error during a commit round, or a failed fsync at any time, the
node stops accepting writes until it restarts; the start-up recovery then
decides what is durable. Nothing is rolled back and no fsync is retried (a
failed fsync may already have dropped the data it was to make durable).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

_SPACE = (errno.ENOSPC, errno.EDQUOT)


class StorageFailed(Exception):
    """A write, fsync, rename or other file operation of the durable log failed.

    Args:
        error: the failed operation's error.
        data_dir: the log's data directory (for the free space).
    """

    def __init__(self, error: OSError, data_dir: Path) -> None:
        self.error = errno.errorcode.get(error.errno or 0, "EIO")
        """The errno name, e.g. ``ENOSPC`` (``EIO`` when there is none)."""
        self.reason = describe(error, data_dir)
        """One line: what failed, on which file, and the free space if it is about space."""
        super().__init__(self.reason)


def describe(error: OSError, data_dir: Path) -> str:
    """``error`` in one line, with the file it was about and, for a full disk, the free space."""
    name = errno.errorcode.get(error.errno or 0, "EIO")
    text = f"{error.strerror or error} ({name})"
    if error.filename:
        text += f" on {error.filename}"
    if error.errno in _SPACE:
        text += f"; {free_bytes(data_dir)} bytes free on {data_dir}"
    return text


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer can still use on the file system of ``directory``.

    That of its nearest existing parent when it does not exist yet.
    """
    path = Path(directory).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


__all__ = ["StorageFailed", "describe", "free_bytes"]
