"""Damage a stopped server's data dir the way disks and file systems do.

Knows only where the log keeps its data: "the newest data file" is the
segment file (``log/*.log``) written last, the one the newest events went
to; the lock, the metadata, the hard state, the snapshot and the
clean-shutdown record are not data files.
"""

from __future__ import annotations

from pathlib import Path


def newest_data_file(data_dir: Path) -> Path:
    """The non-empty file of the log written last."""
    files = [path for path in (data_dir / "log").glob("*.log") if path.stat().st_size]
    assert files, f"no data file under {data_dir}"
    return max(files, key=lambda path: (path.stat().st_mtime_ns, path.stat().st_size))


def zero_fill(path: Path, start: int = 0) -> int:
    """Replace the bytes of ``path`` from ``start`` to its end with zeros (same size).

    Return how many were replaced.
    """
    data = path.read_bytes()
    path.write_bytes(data[:start] + bytes(len(data) - start))
    return len(data) - start


__all__ = ["newest_data_file", "zero_fill"]
