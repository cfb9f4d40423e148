"""A real, small file system for full-disk tests: a tmpfs mounted for one test.

Mounting needs root (or CAP_SYS_ADMIN); where it is not allowed the test is
skipped with the reason. The file system is real: writes fail with ENOSPC
when its pages run out, a short write leaves the bytes that fit, and space
comes back when a file is removed or truncated. tmpfs counts space in pages
of :data:`PAGE` bytes, so "leave ``n`` bytes free" is exact to a page.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

PAGE = os.sysconf("SC_PAGE_SIZE")
FILLER = "filler"
"""Name of the file that takes up space (beside the data dir, never inside it)."""


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


@contextlib.contextmanager
def small_filesystem(mount_point: Path, size_bytes: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size_bytes`` at ``mount_point`` for the ``with`` block.

    Skips the test when this machine does not let the test mount one.
    """
    mount_point.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("full-disk test: no mount command on this machine")
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs",
                   str(mount_point))
    if mounted.returncode != 0:
        pytest.skip(f"full-disk test: cannot mount a tmpfs here ({mounted.stderr.strip()}); "
                    "it needs root or CAP_SYS_ADMIN")
    try:
        yield mount_point
    finally:
        # Lazy: a server that failed to stop must not leave the mount behind.
        _run("umount", "-l", str(mount_point))


def free_bytes(mount_point: Path) -> int:
    """Bytes an unprivileged writer can still use on the file system."""
    stats = os.statvfs(mount_point)
    return stats.f_bavail * stats.f_frsize


def fill(mount_point: Path, leave: int) -> Path:
    """Take up every free byte but ``leave`` (rounded down to a page) with a filler file.

    Writes until the file system is full, then gives back ``leave`` bytes by
    truncating the filler, so what is left is exact to a page. Returns the filler.
    """
    filler = mount_point / FILLER
    chunk = b"\xa5" * (256 * 1024)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                # A short write then ENOSPC at the next, smaller one: write a page at a time.
                if len(chunk) == PAGE:
                    break
                chunk = chunk[:PAGE]
        size = os.fstat(fd).st_size
        os.ftruncate(fd, max(size - leave // PAGE * PAGE, 0))
    finally:
        os.close(fd)
    return filler


def make_room(mount_point: Path) -> None:
    """Remove the filler: the space comes back."""
    (mount_point / FILLER).unlink(missing_ok=True)


__all__ = ["FILLER", "PAGE", "fill", "free_bytes", "make_room", "small_filesystem"]
