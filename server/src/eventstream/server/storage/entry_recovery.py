"""Start-up checks of the entry log's segments: torn tails, damage, lost durable entries.

Runs once, before the node serves, on the event loop thread (nothing else
runs yet). Policy:

- The newest segment is always scanned entry by entry (one native CRC pass,
  then its entry and group heads). Older segments are trusted when their
  index file checks out (its head CRC, the segment's size, header and last
  entry, each partition's offsets following on); otherwise they are scanned
  and their index rebuilt.
- A bad entry is truncated away only when it is the torn tail of the newest
  segment: no whole valid entry follows it, and it lies past every entry
  known to have been durable. Anything else is refused with the file and the
  byte position, never skipped.
- Known durable: the commit index of the hard state, and where the log ended
  at the last clean shutdown. A log that ends before either (for instance a
  newest segment zero-filled after a clean stop, or cut short by a disk that
  lost fsynced data) is damage, not a torn tail, and is refused. After a
  crash without either record, zeros at the end of the newest segment cannot
  be told from an unfinished write and are truncated with a warning saying
  exactly what was dropped.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from .entries import (
    B_COUNT,
    B_ENTRY,
    B_FIRST_OFFSET,
    B_PARTITION,
    B_TIME,
    BLOCK_FIELDS,
    ENTRY_HEAD,
    MIN_ENTRY_LENGTH,
    EntryBatch,
    walk,
)
from .entry_data_dir import CLEAN_FILE
from .entry_index import (
    NO_TIME,
    S_BASE,
    S_BLOCKS,
    S_LAST_TIME,
    S_NEXT,
    SUMMARY_FIELDS,
    IndexCache,
    IndexHead,
    TermRuns,
    decode_index_head,
    index_file_size,
    index_head_size,
)
from .entry_segment import EntrySegment, decode_header, header_size
from .failure import DataDirRefused
from .fileops import FileOps
from .segment import Checksums, CorruptSegment

log = logging.getLogger(__name__)

SLOW_RECOVERY_ENV = "EVENTSTREAM_TEST_SLOW_RECOVERY_MS"
"""Test-only: milliseconds to sleep per segment checked, so a small data dir
recovers as slowly as a big one (the probe tests watch a long recovery)."""

TERMS_SEARCHED = 16
"""How many terms past the last good entry's the search for a valid entry
behind a bad one tries (each a fast byte search of the rest of the file)."""


@dataclass(frozen=True, slots=True)
class Floor:
    """An index known to have been durable, and where that is recorded."""

    index: int
    source: str


@dataclass(slots=True)
class Recovered:
    """The log as found on disk."""

    segments: list[EntrySegment]
    """Oldest first; the last is the active one (never sealed)."""
    terms: TermRuns
    next_offsets: list[int]
    last_times: list[int]
    """Time of each partition's newest block (``NO_TIME`` when none)."""


def read_clean_marker(root: Path) -> Floor | None:
    """Where the log ended at the last clean shutdown, if recorded."""
    path = root / CLEAN_FILE
    try:
        document = json.loads(path.read_text())
        return Floor(int(document["last_index"]), f"the clean shutdown recorded in {path}")
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        log.warning("%s is not readable; ignored", path)
        return None


def _slow_recovery_pause() -> float:
    """Seconds to sleep per segment (0 unless the test-only switch is set)."""
    millis = os.environ.get(SLOW_RECOVERY_ENV)
    if not millis:
        return 0.0
    log.warning("%s=%s: recovery slowed down on purpose (test-only)", SLOW_RECOVERY_ENV, millis)
    return int(millis) / 1000


def recover(directory: Path, partitions: int, checksums: Checksums, ops: FileOps,
            cache: IndexCache, floors: list[Floor]) -> Recovered:
    """Check the segments of ``directory``; cut a torn tail; rebuild bad index files.

    Raises:
        CorruptSegment: damage (the file and byte position named), a gap
            between segments, or fewer entries than were durable.
        DataDirRefused: a file name that is not a segment's.
    """
    for stray in directory.glob("*.tmp"):
        ops.unlink(stray)
    paths = sorted(directory.glob("*.log"))
    for path in paths:
        if not (path.stem.isdigit() and len(path.stem) == 20):
            raise DataDirRefused(f"{path} is not a segment file name (20 digits); move it away")
    for index_path in directory.glob("*.index"):
        if not index_path.with_suffix(".log").exists():
            ops.unlink(index_path)  # left by a deletion cut short
    next_offsets = [0] * partitions
    last_times = [NO_TIME] * partitions
    segments: list[EntrySegment] = []
    terms: TermRuns | None = None
    pause = _slow_recovery_pause()
    for number, path in enumerate(paths):
        if pause:
            time.sleep(pause)
        newest = number == len(paths) - 1
        first_index = int(path.stem)
        if segments and first_index != segments[-1].last_index + 1:
            raise CorruptSegment(path, 0, f"starts at index {first_index} but the previous "
                                          f"segment ends at {segments[-1].last_index}")
        with open(path, "rb") as file:
            header = decode_header(file.read(header_size(partitions)), partitions, checksums)
        if isinstance(header, str):
            _torn_header(path, header, newest, first_index, bool(segments), checksums, ops,
                         floors)
            continue  # an empty newest segment whose first write was torn: removed
        prev_term = terms.last_term if terms is not None else None
        if header[0] != first_index or (prev_term is not None and (
                header[1] != prev_term or header[2] != next_offsets)):
            raise CorruptSegment(path, 0, f"its header (first index {header[0]}, previous term "
                                          f"{header[1]}, partition offsets {header[2]}) does "
                                          "not follow on from the previous segment")
        next_offsets = list(header[2])
        segment = EntrySegment(directory, first_index, header[1], next_offsets)
        head = None if newest else _usable_index(segment, path, checksums)
        scanned = None
        if head is not None:
            segment.adopt(head)
            _follow_summary(head, next_offsets, last_times)
        else:
            scanned = _scan(segment, path, newest, next_offsets, last_times, partitions,
                            checksums, ops, floors)
        if terms is None:
            terms = TermRuns(first_index - 1, segment.prev_term)
        if scanned is not None:
            for index, term in enumerate(scanned.terms, first_index):
                terms.note(index, term)
        else:
            assert segment.head is not None
            terms.extend(segment.head.term_starts, segment.head.terms)
        if not newest and not segment.sealed:
            _rebuild_index(segment, terms, checksums, ops, cache)
        segments.append(segment)
    if not segments:
        segments.append(EntrySegment(directory, 1, 0, next_offsets))
        terms = TermRuns(0, 0)
    assert terms is not None
    last = segments[-1]
    if last.sealed:  # its successor had a torn header and was removed
        last.unseal(cache, checksums)
    ops.unlink(last.index_path)  # the active segment has none; a stale one would lie
    for floor in floors:
        if last.last_index < floor.index:
            raise CorruptSegment(last.path, last.size, f"the log ends at index {last.last_index} "
                                 f"but index {floor.index} was durable ({floor.source})")
    return Recovered(segments, terms, next_offsets, last_times)


def _torn_header(path: Path, problem: str, newest: bool, first_index: int, previous: bool,
                 checksums: Checksums, ops: FileOps, floors: list[Floor]) -> None:
    """Forgive a segment header that does not check out, or refuse it.

    Forgiven (its file removed) only as the torn first write of the newest
    segment, that of a new log included.
    """
    data = path.read_bytes()
    if not newest or _valid_entry_after(data, 0, first_index - 1, 1, checksums):
        raise CorruptSegment(path, 0, problem)
    if not previous and first_index != 1:
        raise CorruptSegment(path, 0, f"{problem}; the log's start (its first term and "
                                      "partition offsets) is lost with it")
    _check_floors(floors, first_index - 1, path, 0, problem)
    log.warning("removing %s: its header is torn (%s) and it holds no entry", path, problem)
    ops.unlink(path)


def _usable_index(segment: EntrySegment, path: Path, checksums: Checksums) -> IndexHead | None:
    """The head of a sealed segment's index file, when it checks out against the segment."""
    try:
        with open(segment.index_path, "rb") as index:
            fixed = index.read(4096)
            need = index_head_size(fixed)
            data = fixed if len(fixed) >= need else fixed + index.read(need - len(fixed))
            index_size = os.fstat(index.fileno()).st_size
        size = path.stat().st_size
        head = decode_index_head(data, checksums)
        if head is None or index_size != index_file_size(head):
            return None
        with open(path, "rb") as file:
            last = os.pread(file.fileno(), size - head.last_position, head.last_position)
    except OSError:
        return None
    if (head.first_index != segment.first_index or head.prev_term != segment.prev_term
            or head.size != size or head.partitions != len(segment.start_offsets)):
        return None
    walked = walk(last, checksums, first_index=head.last_index, keep_data=False)
    if walked.problem is not None or walked.end != len(last) or walked.batch.count != 1:
        return None
    summary = head.summary
    for partition, offset in enumerate(segment.start_offsets):
        if summary[partition * SUMMARY_FIELDS + S_BASE] != offset:
            return None
    return head


def _follow_summary(head: IndexHead, next_offsets: list[int], last_times: list[int]) -> None:
    summary = head.summary
    for partition in range(len(next_offsets)):
        row = partition * SUMMARY_FIELDS
        next_offsets[partition] = summary[row + S_NEXT]
        if summary[row + S_BLOCKS]:
            last_times[partition] = summary[row + S_LAST_TIME]


def _scan(segment: EntrySegment, path: Path, newest: bool, next_offsets: list[int],
          last_times: list[int], partitions: int, checksums: Checksums, ops: FileOps,
          floors: list[Floor]) -> EntryBatch:
    """Check every entry of a segment (its header checked) and index it.

    A torn tail of the newest segment is cut.

    Returns:
        The entries found (metadata only).
    """
    data = path.read_bytes()
    at = segment.header_size
    with memoryview(data) as view:
        walked = walk(view[at:], checksums, first_index=segment.first_index,
                      min_term=segment.prev_term, partitions=partitions, keep_data=False)
    batch = walked.batch
    _check_blocks(batch, path, at, next_offsets, last_times)
    end = at + walked.end
    last_index = batch.last_index if batch.count else segment.first_index - 1
    if walked.problem is not None:
        last_term = batch.terms[-1] if batch.count else segment.prev_term
        if not newest or _valid_entry_after(data, end, last_index, last_term, checksums):
            raise CorruptSegment(path, end, walked.problem)
        _check_floors(floors, last_index, path, end, walked.problem)
        log.warning("truncating the torn tail of %s at byte %d: %d bytes of an unfinished write "
                    "(%s) after index %d dropped", path, end, len(data) - end, walked.problem,
                    last_index)
        fd = ops.open(path, os.O_WRONLY)
        try:
            ops.truncate(fd, end, path)
            ops.fsync(fd, path)
        finally:
            ops.close(fd)
    if batch.count:
        segment.note(batch, at)
    segment.size = end
    segment.last_index = last_index
    return batch


def _check_blocks(batch: EntryBatch, path: Path, at: int, next_offsets: list[int],
                  last_times: list[int]) -> None:
    """Each partition's offsets follow on and its times never go back (else refuse)."""
    rows = batch.blocks
    for row in range(0, len(rows), BLOCK_FIELDS):
        partition, offset = rows[row + B_PARTITION], rows[row + B_FIRST_OFFSET]
        count = rows[row + B_COUNT]
        position = at + batch.start(rows[row + B_ENTRY])
        if offset != next_offsets[partition]:
            raise CorruptSegment(path, position, f"holds offset {offset} of partition "
                                 f"{partition} where {next_offsets[partition]} belongs")
        if rows[row + B_TIME] < last_times[partition]:
            raise CorruptSegment(path, position, f"time of partition {partition} goes back")
        next_offsets[partition] = offset + count
        last_times[partition] = rows[row + B_TIME]


def _check_floors(floors: list[Floor], last_index: int, path: Path, position: int,
                  problem: str) -> None:
    for floor in floors:
        if floor.index > last_index:
            raise CorruptSegment(path, position, f"{problem}, and the valid entries end at index "
                                 f"{last_index} but index {floor.index} was durable "
                                 f"({floor.source}): damage, not an unfinished write")


def _valid_entry_after(data: bytes, start: int, last_index: int, last_term: int,
                       checksums: Checksums) -> bool:
    """True when a whole valid entry (later index, term not lower) starts after ``start``.

    A torn write leaves at most garbage after the last good entry; a good
    entry behind a bad one means the bad one was damaged in place. Candidates
    are found by a byte search for the term fields a later entry may have.
    """
    size = len(data)
    for term in range(max(last_term, 1), last_term + TERMS_SEARCHED + 1):  # terms start at 1
        pattern = struct.pack("<Q", term)
        at = data.find(pattern, start + 1 + 16)
        while at >= 0:
            position = at - 16
            length, crc, index, _, _ = ENTRY_HEAD.unpack_from(data, position) \
                if position + ENTRY_HEAD.size <= size else (0, 0, 0, 0, 0)
            end = position + 4 + length
            if length >= MIN_ENTRY_LENGTH and end <= size and index > last_index and \
                    checksums.crc32c(data[position + 8:end]) == crc:
                return True
            at = data.find(pattern, at + 1)
    return False


def rescan(segment: EntrySegment, partitions: int, checksums: Checksums) -> EntrySegment:
    """A sealed segment indexed again from its file (its index file failed a check).

    Returns:
        A new, unsealed :class:`EntrySegment` with the same entries.

    Raises:
        CorruptSegment: the segment itself is damaged or does not match its
            index head (file and byte position named).
    """
    path = segment.path
    data = path.read_bytes()
    header = decode_header(data, partitions, checksums)
    if header != (segment.first_index, segment.prev_term, segment.start_offsets):
        raise CorruptSegment(path, 0, header if isinstance(header, str) else
                             "its header does not match its index")
    at = segment.header_size
    with memoryview(data) as view:
        walked = walk(view[at:], checksums, first_index=segment.first_index,
                      min_term=segment.prev_term, partitions=partitions, keep_data=False)
    if walked.problem is not None:
        raise CorruptSegment(path, at + walked.end, walked.problem)
    fresh = EntrySegment(path.parent, segment.first_index, segment.prev_term,
                         segment.start_offsets)
    if walked.batch.count:
        fresh.note(walked.batch, at)
    fresh.size = at + walked.end
    if fresh.last_index != segment.last_index or fresh.size != segment.size or any(
            fresh.next(p) != segment.next(p) for p in range(partitions)):
        raise CorruptSegment(path, fresh.size, "its entries do not match its index head")
    return fresh


def _rebuild_index(segment: EntrySegment, terms: TermRuns, checksums: Checksums, ops: FileOps,
                   cache: IndexCache) -> None:
    data = segment.seal(*terms.runs_between(segment.first_index, segment.last_index), checksums)
    ops.write_file(segment.index_path, data, sync=True)
    segment.seal_done(cache)
    log.info("rebuilt the index of %s", segment.path)


__all__ = ["Floor", "Recovered", "read_clean_marker", "recover", "rescan"]
