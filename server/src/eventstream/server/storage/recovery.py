"""Start-up checks of the data directory: metadata, segment scans, torn tails.

Runs once, before the node serves. The data directory holds ``meta.json``
(format version and partition count, fixed at creation), a ``lock`` file held
while a server uses the directory, and one ``partition-NNNN`` directory per
partition with its segments.

Policy: the newest segment of each partition is always scanned record by
record (its tail may be torn by a crash); older segments are trusted when
their index files check out, and scanned (and their indexes rebuilt) when
not. A bad record is truncated away only when it is the torn tail of the
newest segment: no whole valid record follows it. Anything else is refused
with the file and byte position, never skipped.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import struct
from pathlib import Path

from .segment import FORMAT_VERSION, HEADER_SIZE, Checksums, CorruptSegment, Segment, decode

log = logging.getLogger(__name__)

META_FILE = "meta.json"
LOCK_FILE = "lock"
_U32 = struct.Struct("<I")


class DataDirRefused(Exception):
    """The data directory cannot be used as it is; the message says why and what to do."""


def partition_dir(root: Path, partition: int) -> Path:
    """Directory of one partition."""
    return root / f"partition-{partition:04d}"


def open_data_dir(root: Path, partitions: int) -> int:
    """Create or check the data directory; return the fd holding its lock.

    Raises:
        DataDirRefused: another process uses it, or its format version or
            partition count differ from this server's.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataDirRefused(f"storage.data_dir {root}: cannot use it: {exc.strerror}") from None
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(lock_fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise DataDirRefused(f"storage.data_dir {root} is in use by another server process"
                                 ) from None
        raise
    try:
        _check_meta(root, partitions)
    except BaseException:
        os.close(lock_fd)
        raise
    return lock_fd


def _check_meta(root: Path, partitions: int) -> None:
    meta_path = root / META_FILE
    if not meta_path.exists():
        if any(root.glob("partition-*")):
            raise DataDirRefused(f"{meta_path} is missing but the data dir holds partitions; "
                                 "restore it or use an empty storage.data_dir")
        _write_durably(meta_path, json.dumps({"format_version": FORMAT_VERSION,
                                              "partitions": partitions}).encode() + b"\n")
        return
    try:
        meta = json.loads(meta_path.read_text())
        version, recorded = int(meta["format_version"]), int(meta["partitions"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataDirRefused(f"{meta_path} is not readable metadata ({exc})") from None
    if version != FORMAT_VERSION:
        raise DataDirRefused(f"{meta_path}: data format version {version}, but this server "
                             f"reads version {FORMAT_VERSION}; use a matching server version")
    if recorded != partitions:
        raise DataDirRefused(f"{meta_path}: the data dir has {recorded} partitions but "
                             f"storage.partitions is {partitions}; the count is fixed when the "
                             f"data dir is created: set storage.partitions to {recorded}")


def _write_durably(path: Path, data: bytes) -> None:
    """Write a small file atomically (temp file, fsync, rename, fsync the directory)."""
    temp = path.with_suffix(".tmp")
    with open(temp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)
    sync_dir(path.parent)


def sync_dir(directory: Path) -> None:
    """fsync a directory so the names of new or removed files are durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_partition(directory: Path, checksums: Checksums, index_interval: int) -> list[Segment]:
    """The segments of one partition, checked; the last one is the active segment.

    Raises:
        CorruptSegment: a bad record before the tail, or a gap between segments.
        DataDirRefused: a file name that is not a segment's.
    """
    directory.mkdir(exist_ok=True)
    paths = sorted(directory.glob("*.log"))
    segments: list[Segment] = []
    for number, path in enumerate(paths):
        if not path.stem.isdigit():
            raise DataDirRefused(f"{path} is not a segment file name (20 digits); move it away")
        segment = Segment(directory, int(path.stem))
        newest = number == len(paths) - 1
        size = path.stat().st_size
        if newest or not segment.load_index(size, checksums):
            _scan(segment, checksums, index_interval, newest)
            if not newest:
                write_index(segment)
                log.info("rebuilt the indexes of %s", path)
        if segments and segment.base != segments[-1].next_offset:
            raise CorruptSegment(path, 0, f"starts at offset {segment.base} but the previous "
                                          f"segment ends before {segments[-1].next_offset}")
        segment.sealed = not newest
        segments.append(segment)
    if not segments:
        segments.append(Segment(directory, 0))
    return segments


def write_index(segment: Segment) -> None:
    """Write the index files of a segment (used when rebuilding them)."""
    index, times = segment.index_bytes()
    _write_durably(segment.index_path, index)
    _write_durably(segment.time_index_path, times)


def _scan(segment: Segment, checksums: Checksums, interval: int, newest: bool) -> None:
    """Check every record of a segment and rebuild its in-memory index."""
    data = segment.path.read_bytes()
    decoded, problem = decode(data, 0, checksums, keep=False)
    expected = range(segment.base, segment.base + len(decoded.offsets))
    if decoded.offsets != list(expected):
        bad = next(i for i, offset in enumerate(decoded.offsets) if offset != expected[i])
        raise CorruptSegment(segment.path, decoded.positions[bad],
                             f"holds offset {decoded.offsets[bad]} where {expected[bad]} belongs")
    end = decoded.end
    if problem is not None:
        if not newest or valid_record_after(data, end, checksums):
            raise CorruptSegment(segment.path, end, problem)
        log.warning("truncating the torn tail of %s at byte %d (%d bytes of an unfinished "
                    "write, never acknowledged, dropped)", segment.path, end, len(data) - end)
        with open(segment.path, "r+b") as out:
            out.truncate(end)
            out.flush()
            os.fsync(out.fileno())
    for offset, position, time_ns in zip(decoded.offsets, decoded.positions, decoded.times):
        segment.note(offset, position, time_ns, interval)
    segment.staged_size = end
    segment.staged_next = segment.base + len(decoded.offsets)
    segment.publish()


def valid_record_after(data: bytes, start: int, checksums: Checksums) -> bool:
    """True when a whole record with a good CRC starts anywhere after ``start``.

    A torn write leaves at most garbage after the last good record; a good
    record behind a bad one means the bad one was damaged in place.
    """
    view = memoryview(data)
    size = len(data)
    for position in range(start + 1, size - HEADER_SIZE + 1):
        length = _U32.unpack_from(data, position)[0]
        end = position + 4 + length
        if length < HEADER_SIZE - 4 or end > size:
            continue
        if checksums.crc32c(view[position + 8:end]) == _U32.unpack_from(data, position + 4)[0]:
            return True
    return False


__all__ = ["DataDirRefused", "open_data_dir", "partition_dir", "recover_partition", "sync_dir",
           "valid_record_after", "write_index"]
