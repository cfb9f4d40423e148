"""A failed file operation of the durable log, said in one line.

Pure apart from one ``statvfs`` of the data directory (for the free space,
when the failure is about space). The rule this module serves: after any
storage error of the log, or a failed fsync at any time, the node stops
accepting writes until it restarts; the start-up recovery then decides what
is durable. Nothing is rolled back and no fsync is retried (a failed fsync
may already have dropped the data it was to make durable). A data directory
that cannot be used at start refuses the start with one line.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DataDirRefused(Exception):
    """The data directory cannot be used as it is; the message says why and what to do."""


def start_refused(error: OSError, root: Path) -> DataDirRefused:
    """A file operation of the start failed.

    One line naming the file, the error and, for a full disk, the free space.
    """
    return DataDirRefused(f"storage.data_dir {root}: cannot start: {describe(error, root)}")


def halt_reason(error: BaseException, data_dir: Path) -> tuple[str, str]:
    """What halted writes, in one line, and the errno name (``EIO`` when there is none).

    Follows the exception's causes to the file operation that failed.
    """
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OSError):
        return describe(cause, data_dir), errno.errorcode.get(cause.errno or 0, "EIO")
    return f"{type(error).__name__}: {error}", type(error).__name__


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


__all__ = ["DataDirRefused", "describe", "free_bytes", "halt_reason", "start_refused"]
