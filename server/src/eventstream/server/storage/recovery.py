"""Start-up checks of the data directory: metadata, segment scans, torn tails.

Runs once, before the node serves. The data directory holds ``meta.json``
(format version and partition count, fixed at creation), a ``lock`` file held
while a server uses the directory, and one ``partition-NNNN`` directory per
partition with its segments. Every change it makes goes through the
:class:`~.fileops.FileOps` it is given.

Policy: the newest segment of each partition is always scanned record by
record (its tail may be torn by a crash); older segments are trusted when
their index files check out, and scanned (and their indexes rebuilt) when
not. An empty newest segment (a roll whose first write never reached the
file) is removed. At the end of the newest segment a *torn tail* is cut
away: the beginning of the one record that belongs there (its length runs
past the end of the file, the fields present agree), what a write cut short
by a crash or a full disk leaves. Any other bad bytes there (zeros, garbage,
a whole record that fails its CRC) are damage under ``fsync: always``, where
every acknowledged record was fsynced: the start is refused with the file and
byte position. Under ``interval`` and ``never``, which may lose the writes
the OS had not flushed at a power loss, they are cut away too, saying exactly
which bytes went. A bad record anywhere else is refused, never skipped. The
newest segment is fsynced once checked: what recovery kept is durable before
anything is appended after it (a crash under ``interval``, or a failed round,
may have left it only in the page cache).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import struct
from pathlib import Path

from .failure import describe
from .fileops import FileOps
from .segment import (
    FIXED,
    FORMAT_VERSION,
    HEADER_SIZE,
    MIN_LENGTH,
    Checksums,
    CorruptSegment,
    Segment,
    decode,
)

log = logging.getLogger(__name__)

META_FILE = "meta.json"
LOCK_FILE = "lock"
_U32 = struct.Struct("<I")


class DataDirRefused(Exception):
    """The data directory cannot be used as it is; the message says why and what to do."""


def start_refused(error: OSError, root: Path) -> DataDirRefused:
    """A file operation of the start failed.

    One line naming the file, the error and, for a full disk, the free space.
    """
    return DataDirRefused(f"storage.data_dir {root}: cannot start: {describe(error, root)}")


def partition_dir(root: Path, partition: int) -> Path:
    """Directory of one partition."""
    return root / f"partition-{partition:04d}"


def open_data_dir(root: Path, partitions: int, file_ops: FileOps) -> int:
    """Create or check the data directory; return the fd holding its lock.

    Raises:
        DataDirRefused: another process uses it, or its format version or
            partition count differ from this server's.
        OSError: it cannot be created or written.
    """
    file_ops.mkdir(root)
    lock_fd = file_ops.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(lock_fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise DataDirRefused(f"storage.data_dir {root} is in use by another server process"
                                 ) from None
        raise
    try:
        _check_meta(root, partitions, file_ops)
    except BaseException:
        os.close(lock_fd)
        raise
    return lock_fd


def _check_meta(root: Path, partitions: int, file_ops: FileOps) -> None:
    meta_path = root / META_FILE
    if not meta_path.exists():
        if any(root.glob("partition-*")):
            raise DataDirRefused(f"{meta_path} is missing but the data dir holds partitions; "
                                 "restore it or use an empty storage.data_dir")
        file_ops.write_file(meta_path, json.dumps({"format_version": FORMAT_VERSION,
                                                   "partitions": partitions}).encode() + b"\n",
                            sync=True)
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


def recover_partition(directory: Path, checksums: Checksums, index_interval: int, *,
                      file_ops: FileOps, forgive_unflushed: bool) -> list[Segment]:
    """The segments of one partition, checked; the last one is the active segment.

    Args:
        directory: the partition's directory.
        checksums: the CRC32C functions.
        index_interval: bytes between sparse index entries.
        file_ops: makes every change (truncation, removal, rebuilt indexes).
        forgive_unflushed: cut away any bad tail of the newest segment, not
            only a torn record (``fsync`` is ``interval`` or ``never``).

    Raises:
        CorruptSegment: a bad record before the tail, or a gap between segments.
        DataDirRefused: a file name that is not a segment's.
        OSError: a change could not be made.
    """
    file_ops.mkdir(directory)
    paths = sorted(directory.glob("*.log"))
    for path in paths:
        if not path.stem.isdigit():
            raise DataDirRefused(f"{path} is not a segment file name (20 digits); move it away")
    if len(paths) > 1 and paths[-1].stat().st_size == 0:
        # A roll whose first write never reached the file: it holds nothing, and its
        # name (the offset it would have started at) is not to be trusted.
        empty = paths.pop()
        for path in (empty, empty.with_suffix(".index"), empty.with_suffix(".timeindex")):
            file_ops.unlink(path)
        file_ops.fsync_dir(directory)
        log.info("removed %s: an empty newest segment (a roll that never got its first record)",
                 empty)
    segments: list[Segment] = []
    for number, path in enumerate(paths):
        segment = Segment(directory, int(path.stem))
        newest = number == len(paths) - 1
        size = path.stat().st_size
        if newest or not segment.load_index(size, checksums):
            _scan(segment, checksums, index_interval, newest=newest, file_ops=file_ops,
                  forgive_unflushed=forgive_unflushed)
            if not newest:
                write_index(segment, file_ops)
                log.info("rebuilt the indexes of %s", path)
        if segments and segment.base != segments[-1].next_offset:
            raise CorruptSegment(path, 0, f"starts at offset {segment.base} but the previous "
                                          f"segment ends before {segments[-1].next_offset}")
        segment.sealed = not newest
        segments.append(segment)
    if not segments:
        segments.append(Segment(directory, 0))
    return segments


def write_index(segment: Segment, file_ops: FileOps) -> None:
    """Write the index files of a segment (used when rebuilding them)."""
    index, times = segment.index_bytes()
    file_ops.write_file(segment.index_path, index, sync=True)
    file_ops.write_file(segment.time_index_path, times, sync=True)


def _scan(segment: Segment, checksums: Checksums, interval: int, *, newest: bool,
          file_ops: FileOps, forgive_unflushed: bool) -> None:
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
        _check_tail(segment, data, end, problem, next_offset=segment.base + len(decoded.offsets),
                    forgive_unflushed=forgive_unflushed)
    if newest:
        fd = file_ops.open(segment.path, os.O_WRONLY)
        try:
            if end < len(data):
                file_ops.truncate(fd, end, segment.path)
            file_ops.fsync(fd, segment.path)
        finally:
            file_ops.close(fd)
    for offset, position, time_ns in zip(decoded.offsets, decoded.positions, decoded.times):
        segment.note(offset, position, time_ns, interval)
    segment.pending_size = end
    segment.pending_next = segment.base + len(decoded.offsets)
    segment.publish()


def _check_tail(segment: Segment, data: bytes, end: int, problem: str, *, next_offset: int,
                forgive_unflushed: bool) -> None:
    """Say why the bad tail of the newest segment, from ``end`` on, may be cut away.

    Raises:
        CorruptSegment: the tail is damage, not an unfinished write (see the module policy).
    """
    dropped = len(data) - end
    if torn_record(data, end, next_offset):
        log.warning("truncating the torn tail of %s at byte %d (%d bytes of an unfinished "
                    "write of offset %d, never acknowledged, dropped)", segment.path, end,
                    dropped, next_offset)
    elif forgive_unflushed:
        log.warning("truncating the bad tail of %s at byte %d (%s): %d bytes dropped, from "
                    "where offset %d would start; under fsync interval or never they may be "
                    "writes the OS had not flushed before a power loss", segment.path, end,
                    _what(data, end, problem), dropped, next_offset)
    else:
        raise CorruptSegment(segment.path, end, (
            f"{_what(data, end, problem)} where offset {next_offset} belongs, {dropped} bytes "
            "before the end of the file: with fsync always every acknowledged record was "
            "fsynced, so this is damage, not an unfinished write"))


def torn_record(data: bytes, start: int, next_offset: int) -> bool:
    """True when the bytes from ``start`` on are record ``next_offset`` cut short.

    That is what a crash or a full disk leaves of a write.

    Its length field (when present) is valid and runs past the end of the
    file, and its offset and topic length (when present) agree: zeros and
    garbage fail these checks.
    """
    rest = len(data) - start
    if rest < _U32.size:
        return True  # not even a length: too short to have been a record
    length = _U32.unpack_from(data, start)[0]
    if length < MIN_LENGTH or _U32.size + length <= rest:
        return False
    fields = memoryview(data)[start + 2 * _U32.size:]  # after the length and the CRC
    if len(fields) >= FIXED.size:
        offset, _, _, topic_len = FIXED.unpack_from(fields)
        return bool(offset == next_offset and MIN_LENGTH + topic_len <= length)
    if len(fields) >= 8:
        return int.from_bytes(fields[:8], "little") == next_offset
    return True


def _what(data: bytes, start: int, problem: str) -> str:
    """The bad bytes from ``start`` on, for a message."""
    if not any(data[start:]):
        return f"zeros from here to the end of the file ({problem})"
    return problem


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


__all__ = ["DataDirRefused", "open_data_dir", "partition_dir", "recover_partition",
           "start_refused", "torn_record", "valid_record_after", "write_index"]
