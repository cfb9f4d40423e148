"""Damage a stopped server's data dir the way disks and file systems do.

Knows nothing of the log's format: "the newest data file" is the regular
file written last (after a clean stop, the one the newest events went to),
leaving out the lock, the metadata and consumer group offsets.
"""

from __future__ import annotations

from pathlib import Path

NOT_LOG_DATA = ("lock", "meta.json")


def newest_data_file(data_dir: Path) -> Path:
    """The non-empty file of the log written last."""
    files = [path for path in data_dir.rglob("*")
             if path.is_file() and path.name not in NOT_LOG_DATA and "groups" not in path.parts
             and path.stat().st_size]
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
