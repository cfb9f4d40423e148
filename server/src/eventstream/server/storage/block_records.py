"""Reading the records of partition blocks: what subscribers get.

Pure: no I/O. A block is a run of records in the segment record format
(:mod:`.segment`) with consecutive offsets; these functions take the framed
events, priorities and topics of a range of them, the topics only when a
reader asks for them (a subscriber taking every topic never needs them).
:class:`Collected` gathers them as Python objects; :class:`Selection`, for a
subscriber, has libshardq write only the framed events of the records it
takes, back to back, with no Python object per record.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable

from ..native.select import RecordSelector
from .log import ReadResult
from .segment import HEAD, HEADER_SIZE, MIN_LENGTH, Checksums

_HEAD = HEAD.unpack_from
GROW_BYTES = 64 * 1024
"""Least growth of a :class:`Selection`'s buffer."""
_LENGTH = struct.Struct("<I").unpack_from


class BlockDamaged(Exception):
    """A block's records fail their checks; ``position`` is relative to the buffer given."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position
        self.reason = reason


def _check_crcs(buf: bytes | memoryview, start: int, end: int, checksums: Checksums) -> None:
    """Check the CRC32C of every record of ``buf[start:end]``.

    Raises:
        BlockDamaged: a record fails its CRC or its length runs past the block.
    """
    with memoryview(buf) as view:
        ok, good = checksums.crc32c_records(view[start:end], min_len=MIN_LENGTH)
    if not ok or good != end - start:
        raise BlockDamaged(start + good, "CRC32C mismatch" if not ok else "truncated")


class Collected:
    """Records gathered from one or more blocks, in offset order."""

    __slots__ = ("_spans", "first_offset", "priorities", "records")
    full = False
    """Never stops a read early (see :attr:`Selection.full`)."""

    def __init__(self, first_offset: int) -> None:
        self.first_offset = first_offset
        self.records: list[bytes] = []
        self.priorities = bytearray()
        self._spans: list[tuple[bytes | memoryview, array[int]]] = []

    def __len__(self) -> int:
        return len(self.records)

    def take(self, buf: bytes, start: int, end: int, offset: int, *, min_offset: int,
             limit: int, checksums: Checksums | None = None) -> None:
        """Take up to ``limit`` records from ``min_offset`` on, of one block.

        Args:
            buf: holds the block at ``buf[start:end]``.
            start: where the block starts in ``buf``.
            end: where it ends.
            offset: the offset of its first record.
            min_offset: the first offset to take.
            limit: most records to take.
            checksums: check each record's CRC32C first (reads from files); None
                trusts the bytes (blocks held in memory, checked when appended).

        Raises:
            BlockDamaged: a record fails its CRC or its length runs past the block.
        """
        if checksums is not None:
            _check_crcs(buf, start, end, checksums)
        position = start
        while offset < min_offset and position < end:  # skip by length only
            position += 4 + _LENGTH(buf, position)[0]
            offset += 1
        records, priorities = self.records, self.priorities
        spans = array("I")
        stop = len(records) + limit
        while position < end and len(records) < stop:
            length, _, _, _, priority, topic_len = _HEAD(buf, position)
            topic_at = position + HEADER_SIZE
            position += 4 + length
            if topic_at + topic_len > position:
                raise BlockDamaged(topic_at, f"topic length {topic_len} runs past the record")
            records.append(buf[topic_at + topic_len:position])
            priorities.append(priority)
            spans.append(topic_at)
            spans.append(topic_len)
        if position > end:
            raise BlockDamaged(end, "a record runs past its block")
        if spans:
            self._spans.append((buf, spans))

    def topics_function(self) -> Callable[[], list[str]]:
        """A function making the topic of every record taken (called at most once)."""
        spans = self._spans

        def topics() -> list[str]:
            out: list[str] = []
            for buf, pairs in spans:
                out += [bytes(buf[at:at + n]).decode() for at, n in
                        zip(pairs[::2], pairs[1::2])]
            return out
        return topics

    def result(self) -> ReadResult:
        """What was taken, as a :class:`~.log.ReadResult`."""
        return ReadResult(self.first_offset, self.records, self.topics_function(),
                          bytes(self.priorities))


class Selection:
    """A subscriber's records gathered from one or more blocks, from ``first_offset`` on.

    It holds the framed events of those its selector takes, back to back. Its
    length is the records examined, matching or not: the subscriber's cursor
    moves on by that many.

    Args:
        first_offset: the offset the read starts at.
        selector: which records to take.
        budget: most bytes of events a delivery holds; a match past it is left
            for the next delivery (and ends the read: :attr:`full`).
        held: bytes the delivery holds already (0: the first match goes whatever its size).
    """

    __slots__ = ("_data", "budget", "examined", "first_offset", "full", "held", "matched",
                 "selector", "written")

    def __init__(self, first_offset: int, selector: RecordSelector, budget: int, held: int) -> None:
        self.first_offset = first_offset
        self.selector = selector
        self.budget = budget
        self.held = held
        self.examined = self.matched = self.written = 0
        self.full = False
        """A match did not fit the budget: the read stops before it."""
        self._data = bytearray()

    def __len__(self) -> int:
        return self.examined

    def take(self, buf: bytes | memoryview, start: int, end: int, offset: int, *, min_offset: int,
             limit: int, checksums: Checksums | None = None) -> None:
        """Examine up to ``limit`` records from ``min_offset`` on, of one block (see :meth:`Collected.take`).

        Raises:
            BlockDamaged: a record fails its CRC or its lengths run past the block.
        """
        if checksums is not None:
            _check_crcs(buf, start, end, checksums)
        skip = max(min_offset - offset, 0)
        while True:
            got = self.selector.select(buf, start, end, skip, limit, budget=self.budget,
                                       held=self.held + self.written, out=self._data,
                                       at=self.written)
            if got.damaged_at >= 0:
                raise BlockDamaged(got.damaged_at, "a record's lengths run past its block")
            self.examined += got.examined
            self.matched += got.matched
            self.written += got.written
            self.full = got.full
            if not got.short:
                return
            # Grown only when a match needs it: a subscriber that skips every
            # record of a flood allocates nothing.
            self._data += bytearray(max(len(self._data), GROW_BYTES))
            skip += got.examined
            limit -= got.examined

    @property
    def events(self) -> memoryview:
        """The framed events taken, back to back."""
        return memoryview(self._data)[:self.written]


Gatherer = Collected | Selection
"""What a read fills, block by block."""


def first_at_or_after(buf: bytes, start: int, end: int, offset: int, time_ns: int) -> int | None:
    """Offset of the first record at or after ``time_ns`` in a block; None when none is.

    The block is ``buf[start:end]``, its first record at ``offset``.
    """
    position = start
    while position < end:
        length, _, _, record_time, _, _ = _HEAD(buf, position)
        if record_time >= time_ns:
            return offset
        position += 4 + length
        offset += 1
    return None


__all__ = ["BlockDamaged", "Collected", "Gatherer", "Selection", "first_at_or_after"]
