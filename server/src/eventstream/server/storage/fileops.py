"""The file operations of the durable log, in one place, so faults can be injected.

Every write, fsync, rename, truncation and deletion the log makes goes through
a :class:`FileOps`. Production uses :class:`FileOps` itself (plain ``os``
calls). Tests start the real server with the environment variable
``EVENTSTREAM_TEST_FAULTS`` set, and :func:`file_ops` then returns a
:class:`FaultyFileOps` that fails chosen calls with a chosen ``errno``: the
storage fault-injection tests drive a real server this way, through its
public interfaces, and check that no acknowledged event is lost and no offset
is reused after any fault. The variable is test-only: nothing in production
sets it, and the server logs a warning when it is set.

Fault plan syntax: faults separated by ``;``, each a comma-separated list of
``key=value``:

- ``op`` (required): ``open``, ``write``, ``fsync``, ``fsync_dir``,
  ``truncate``, ``rename``, ``unlink``, ``mkdir``, ``write_file`` (a whole
  small file: index, metadata, hard state; its final rename and directory
  sync count as ``rename`` and ``fsync_dir`` calls too) or ``any``.
- ``nth``: the 1-based call of that op (counted over calls whose path matches
  ``path``) that fails first; default 1.
- ``errno``: a name from :mod:`errno`, default ``EIO``.
- ``path``: only calls whose path contains this substring count.
- ``times``: how many calls fail from ``nth`` on (``0``: every later call,
  as a full disk does); default 1.
- ``partial``: for ``write``/``write_file``, write this many bytes of the
  data before failing (a short write that reached the file).
- ``lose``: ``1`` makes the call report success without doing anything (a
  disk that loses writes). No server can notice; the tests use it to prove
  that their checks catch lost acknowledged events.

Example: ``op=fsync,nth=3,errno=EIO;op=write,nth=10,errno=ENOSPC,times=0``.
"""

from __future__ import annotations

import errno as errno_names
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FAULTS_ENV = "EVENTSTREAM_TEST_FAULTS"
"""Environment variable holding a test-only fault plan (see the module docstring)."""

OPS = ("open", "write", "fsync", "fsync_dir", "truncate", "rename", "unlink", "mkdir",
       "write_file")


class FileOps:
    """Plain file operations. Each raises :class:`OSError` as ``os`` does.

    Descriptors are plain ints; paths are :class:`~pathlib.Path` or str. An
    error of a call given a descriptor names the ``path`` passed with it, so
    every failure says which file it was about.
    """

    def open(self, path: Path | str, flags: int, mode: int = 0o644) -> int:
        """``os.open``."""
        return os.open(path, flags, mode)

    def write(self, fd: int, data: bytes | bytearray | memoryview, path: Path | str = "") -> None:
        """Write all of ``data`` at the file's position (retries short writes).

        ``path`` only names the file for fault matching and messages.
        """
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as error:
            raise _named(error, path) from None

    def fsync(self, fd: int, path: Path | str = "") -> None:
        """``os.fdatasync``: the data and the size, not every metadata field."""
        try:
            os.fdatasync(fd)
        except OSError as error:
            raise _named(error, path) from None

    def fsync_dir(self, directory: Path | str) -> None:
        """Sync a directory, so the names of files created or removed in it are durable."""
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def truncate(self, fd: int, size: int, path: Path | str = "") -> None:
        """``os.ftruncate``."""
        try:
            os.ftruncate(fd, size)
        except OSError as error:
            raise _named(error, path) from None

    def rename(self, source: Path | str, target: Path | str) -> None:
        """``os.replace``: atomic within a file system."""
        os.replace(source, target)

    def unlink(self, path: Path | str) -> None:
        """``os.unlink``; a missing file is not an error."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def mkdir(self, path: Path | str) -> None:
        """Create a directory and its parents; an existing one is not an error."""
        Path(path).mkdir(parents=True, exist_ok=True)

    def close(self, fd: int) -> None:
        """``os.close`` (never faulted: a failed close leaves nothing to undo)."""
        os.close(fd)

    def write_file(self, path: Path | str, data: bytes, *, sync: bool) -> None:
        """Replace a small file whole: write a temporary beside it, sync, rename, sync the dir.

        A crash leaves either the old file or the new one, never a mix.
        """
        target = Path(path)
        temporary = target.with_name(target.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            FileOps.write(self, fd, data, temporary)
            if sync:
                FileOps.fsync(self, fd, temporary)
        finally:
            os.close(fd)
        # The last two steps through the overridable calls: a fault plan can fail them too.
        self.rename(temporary, target)
        if sync:
            self.fsync_dir(target.parent)


def _named(error: OSError, path: Path | str) -> OSError:
    """``error`` naming ``path`` (calls on a descriptor raise it without a file name)."""
    if error.filename is not None or not path:
        return error
    return OSError(error.errno, error.strerror, str(path))


@dataclass
class Fault:
    """One planned fault (see the module docstring for the fields)."""

    op: str
    nth: int = 1
    error: int = errno_names.EIO
    path: str = ""
    times: int = 1
    partial: int = -1
    lose: int = 0
    seen: int = 0
    """Matching calls counted so far."""

    def hits(self, op: str, path: Path | str) -> bool:
        """Count a call; True when it must fail."""
        if self.op not in (op, "any") or self.path not in str(path):
            return False
        self.seen += 1
        return self.seen >= self.nth and (self.times == 0 or self.seen < self.nth + self.times)


def parse_plan(plan: str) -> list[Fault]:
    """Parse a fault plan.

    Raises:
        ValueError: naming the part of the plan that is wrong.
    """
    faults = []
    for part in filter(None, (p.strip() for p in plan.split(";"))):
        fields = dict(item.split("=", 1) for item in part.split(",") if "=" in item)
        op = fields.pop("op", "")
        if op not in (*OPS, "any"):
            raise ValueError(f"{FAULTS_ENV}: unknown op {op!r} in {part!r}")
        name = fields.pop("errno", "EIO")
        if not hasattr(errno_names, name):
            raise ValueError(f"{FAULTS_ENV}: unknown errno {name!r} in {part!r}")
        fault = Fault(op, error=getattr(errno_names, name), path=fields.pop("path", ""))
        for key in ("nth", "times", "partial", "lose"):
            if key in fields:
                setattr(fault, key, int(fields.pop(key)))
        if fields:
            raise ValueError(f"{FAULTS_ENV}: unknown keys {sorted(fields)} in {part!r}")
        faults.append(fault)
    return faults


class FaultyFileOps(FileOps):
    """:class:`FileOps` that fails the calls a fault plan names (tests only)."""

    def __init__(self, faults: list[Fault]) -> None:
        self.faults = faults
        self.injected = 0
        """Faults raised so far."""

    def _check(self, op: str, path: Path | str) -> Fault | None:
        for fault in self.faults:
            if fault.hits(op, path):
                return fault
        return None

    def _fail(self, fault: Fault, op: str, path: Path | str) -> OSError:
        self.injected += 1
        log.warning("injected fault: %s of %s fails with %s", op, path or "?",
                    errno_names.errorcode.get(fault.error, fault.error))
        return OSError(fault.error, os.strerror(fault.error), str(path))

    def _lost(self, fault: Fault | None, op: str, path: Path | str) -> bool:
        """True (and logged) when ``fault`` is one that silently drops the call."""
        if fault is None or not fault.lose:
            return False
        self.injected += 1
        log.warning("injected fault: %s of %s is lost (reported done, not done)", op, path or "?")
        return True

    def open(self, path: Path | str, flags: int, mode: int = 0o644) -> int:
        """See :meth:`FileOps.open`."""
        fault = self._check("open", path)
        if fault:
            raise self._fail(fault, "open", path)
        return super().open(path, flags, mode)

    def write(self, fd: int, data: bytes | bytearray | memoryview, path: Path | str = "") -> None:
        """See :meth:`FileOps.write`."""
        fault = self._check("write", path)
        if self._lost(fault, "write", path):
            return
        if fault:
            if fault.partial > 0:
                super().write(fd, memoryview(data)[:fault.partial], path)
            raise self._fail(fault, "write", path)
        super().write(fd, data, path)

    def fsync(self, fd: int, path: Path | str = "") -> None:
        """See :meth:`FileOps.fsync`."""
        fault = self._check("fsync", path)
        if self._lost(fault, "fsync", path):
            return
        if fault:
            raise self._fail(fault, "fsync", path)
        super().fsync(fd, path)

    def fsync_dir(self, directory: Path | str) -> None:
        """See :meth:`FileOps.fsync_dir`."""
        fault = self._check("fsync_dir", directory)
        if fault:
            raise self._fail(fault, "fsync_dir", directory)
        super().fsync_dir(directory)

    def truncate(self, fd: int, size: int, path: Path | str = "") -> None:
        """See :meth:`FileOps.truncate`."""
        fault = self._check("truncate", path)
        if fault:
            raise self._fail(fault, "truncate", path)
        super().truncate(fd, size, path)

    def rename(self, source: Path | str, target: Path | str) -> None:
        """See :meth:`FileOps.rename`."""
        fault = self._check("rename", target)
        if fault:
            raise self._fail(fault, "rename", target)
        super().rename(source, target)

    def unlink(self, path: Path | str) -> None:
        """See :meth:`FileOps.unlink`."""
        fault = self._check("unlink", path)
        if fault:
            raise self._fail(fault, "unlink", path)
        super().unlink(path)

    def mkdir(self, path: Path | str) -> None:
        """See :meth:`FileOps.mkdir`."""
        fault = self._check("mkdir", path)
        if fault:
            raise self._fail(fault, "mkdir", path)
        super().mkdir(path)

    def write_file(self, path: Path | str, data: bytes, *, sync: bool) -> None:
        """See :meth:`FileOps.write_file`."""
        fault = self._check("write_file", path)
        if self._lost(fault, "write_file", path):
            return
        if fault:
            if fault.partial > 0:
                with open(Path(path).with_name(Path(path).name + ".tmp"), "wb") as out:
                    out.write(data[:fault.partial])
            raise self._fail(fault, "write_file", path)
        super().write_file(path, data, sync=sync)


def file_ops() -> FileOps:
    """The file operations to use: plain, or faulty when the test-only variable is set.

    Raises:
        ValueError: the fault plan cannot be parsed.
    """
    plan = os.environ.get(FAULTS_ENV, "")
    if not plan:
        return FileOps()
    log.warning("%s is set: file operations fail as planned (a test-only setting)", FAULTS_ENV)
    return FaultyFileOps(parse_plan(plan))


__all__ = ["FAULTS_ENV", "OPS", "Fault", "FaultyFileOps", "FileOps", "file_ops", "parse_plan"]
