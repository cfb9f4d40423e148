"""The entry format of the log: encoding entries and walking encoded ones.

Pure: no I/O, clock or randomness (CRC32C comes from the checksums passed in,
libshardq's wire backend). The durable log is a sequence of entries, each
numbered by an index (from 1, consecutive) and stamped with the Raft term it
was proposed in. The bytes of an entry are identical on every node.

Entry format, little-endian. Append-only: a change needs a new data format
version::

    u32 length    bytes after this field
    u32 crc32c    of every byte after this field
    u64 index
    u64 term
    u8  kind      an EntryKind value
    payload       length - 21 bytes

The payload of an ``EVENTS`` entry is the commit round's records grouped by
partition, partitions in increasing order, each at most once::

    u32 partition
    u32 count     records of the group (at least 1)
    u32 bytes     bytes of the records that follow
    records       ``count`` records in the segment record format of
                  :mod:`.segment` (u32 length, u32 crc32c, u64 offset, i64
                  time_ns, u8 priority, u16 topic_len, topic, framed event),
                  with consecutive offsets

so the records of one partition in one entry (a *block*) are exactly a run of
today's records, and a delivery batch is still the concatenation of stored
framed events. Payloads of the other kinds are opaque bytes to the log.

Entries travel as an :class:`EntryBatch`: consecutive entries in one buffer
with their boundaries, terms, kinds and EVENTS blocks in flat arrays (no
object per entry or record on the write path).
"""

from __future__ import annotations

import enum
import struct
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from .segment import MIN_LENGTH as RECORD_MIN_LENGTH
from .segment import Checksums

ENTRY_HEAD = struct.Struct("<IIQQB")
"""length, crc32c, index, term, kind."""
ENTRY_HEADER_SIZE = ENTRY_HEAD.size
MIN_ENTRY_LENGTH = ENTRY_HEADER_SIZE - 4
"""Smallest valid length field: an entry with an empty payload."""
GROUP_HEAD = struct.Struct("<III")
"""partition, count, bytes: the head of one partition's block in an EVENTS payload."""
_RECORD_OFFSET_TIME = struct.Struct("<Qq")   # a record's offset and time, 8 bytes into it
MAX_ENTRY_BYTES = (1 << 32) - 1


class EntryKind(enum.IntEnum):
    """What an entry holds. Append-only: never renumber or reuse a value.

    The Raft core (``eventstream.server.raft``) uses the same values; the two
    definitions must stay equal until they are one.
    """

    NOOP = 0
    """Nothing (a new leader's first entry)."""
    EVENTS = 1
    """A commit round's records, grouped by partition."""
    GROUPS = 2
    """Consumer group offsets and membership."""
    RETENTION = 3
    """Drop the log before an index."""
    MEMBERSHIP = 4
    """A cluster configuration change."""


BLOCK_FIELDS = 7
"""int64 values per block row of :attr:`EntryBatch.blocks`."""
(B_ENTRY, B_PARTITION, B_FIRST_OFFSET, B_COUNT, B_POSITION, B_SIZE, B_TIME) = range(BLOCK_FIELDS)
"""Block row columns: the entry's number within the batch, the partition, the
first record's offset, the record count, the position of the first record in
the batch's buffer, the bytes of the records, the first record's time."""


class CorruptEntry(Exception):
    """Encoded entries that fail their checks; ``position`` is where the bad one starts."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"entry at byte {position}: {reason}")
        self.position = position
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry, as an object (slow paths: the Raft shell, tests)."""

    index: int
    term: int
    kind: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class EntryBatch:
    """Consecutive encoded entries in one buffer, with what the log indexes.

    Entry ``i`` (index ``first_index + i``) is ``data[ends[i - 1]:ends[i]]``
    (entry 0 starts at 0), of term ``terms[i]`` and kind ``kinds[i]``.
    ``blocks`` holds :data:`BLOCK_FIELDS` values per partition block of the
    EVENTS entries (``B_*`` columns), in entry order. Ownership: the log keeps
    references to ``data``; callers must not mutate it afterwards.
    """

    data: bytes | bytearray
    first_index: int
    ends: array[int]
    terms: array[int]
    kinds: bytes
    blocks: array[int]

    @property
    def count(self) -> int:
        """Entries in the batch."""
        return len(self.ends)

    @property
    def last_index(self) -> int:
        """Index of the last entry (``first_index - 1`` when empty)."""
        return self.first_index + len(self.ends) - 1

    def start(self, i: int) -> int:
        """Position of entry ``i`` in :attr:`data`."""
        return self.ends[i - 1] if i else 0

    def entry(self, i: int) -> Entry:
        """Entry ``i`` as an object (its payload copied)."""
        start = self.start(i)
        return Entry(self.first_index + i, self.terms[i], self.kinds[i],
                     bytes(self.data[start + ENTRY_HEADER_SIZE:self.ends[i]]))

    def __iter__(self) -> Iterator[Entry]:
        """Every entry, as objects (slow path)."""
        return (self.entry(i) for i in range(self.count))

    def take(self, index: int, hi: int, budget: int) -> EntryBatch:
        """Entries from ``index`` on, before ``hi``, within ``budget`` bytes (at least one)."""
        first = index - self.first_index
        stop = first + 1
        while stop < min(self.count, hi - self.first_index) and \
                self.ends[stop] - self.start(first) <= budget:
            stop += 1
        return self.slice(first, stop)

    def slice(self, lo: int, hi: int) -> EntryBatch:
        """Entries ``lo`` to ``hi - 1`` (numbers within the batch), sharing no buffer."""
        start, end = self.start(lo), self.ends[hi - 1] if hi > lo else self.start(lo)
        ends = array("Q", (e - start for e in self.ends[lo:hi]))
        rows = self.blocks
        first_row = _first_block_row(rows, lo)
        stop_row = _first_block_row(rows, hi)
        blocks = array("q", rows[first_row * BLOCK_FIELDS:stop_row * BLOCK_FIELDS])
        blocks[B_ENTRY::BLOCK_FIELDS] = array("q", (e - lo for e in blocks[B_ENTRY::BLOCK_FIELDS]))
        blocks[B_POSITION::BLOCK_FIELDS] = array(
            "q", (p - start for p in blocks[B_POSITION::BLOCK_FIELDS]))
        return EntryBatch(bytes(self.data[start:end]), self.first_index + lo, ends,
                          array("Q", self.terms[lo:hi]), bytes(self.kinds[lo:hi]), blocks)

    @classmethod
    def empty(cls, first_index: int) -> EntryBatch:
        """A batch of no entries."""
        return cls(b"", first_index, array("Q"), array("Q"), b"", array("q"))

    @classmethod
    def decode(cls, data: bytes | bytearray, checksums: Checksums, *,
               first_index: int | None = None) -> EntryBatch:
        """Check and describe encoded entries (e.g. received from a leader).

        Args:
            data: whole entries back to back.
            checksums: the CRC32C functions.
            first_index: the index the first entry must have (any when None).

        Raises:
            CorruptEntry: a bad, truncated or out-of-sequence entry.
        """
        walked = walk(data, checksums, first_index=first_index)
        if walked.problem is not None:
            raise CorruptEntry(walked.end, walked.problem)
        return walked.batch


def with_blocks(batch: EntryBatch, checksums: Checksums) -> EntryBatch:
    """``batch`` with its EVENTS blocks listed, each block's records checked.

    For entries encoded by this node around payloads from elsewhere (a
    follower's): their lengths and CRCs are right by construction, so only
    the payloads are checked, as :meth:`EntryBatch.decode` checks them (group
    heads, records tiling each block, record CRCs); the data is kept as it is.

    Raises:
        CorruptEntry: an EVENTS payload that does not check out.
    """
    blocks: array[int] = array("q")
    data, ends = batch.data, batch.ends
    for number, kind in enumerate(batch.kinds):
        if kind == EntryKind.EVENTS:
            start = batch.start(number)
            problem = _walk_blocks(data, start + ENTRY_HEADER_SIZE, ends[number], number,
                                   checksums, None, blocks)
            if problem is not None:
                raise CorruptEntry(start, problem)
    return EntryBatch(data, batch.first_index, ends, batch.terms, batch.kinds, blocks)


def add_native_blocks(blocks: array[int], rows: array[int], entry: int, shift: int) -> None:
    """Add the native encoder's or scanner's block ``rows`` of entry number ``entry`` to ``blocks``.

    ``shift`` is added to their positions (where the rows' positions count
    from in the batch's data).
    """
    for row in range(0, len(rows), _NATIVE_BLOCK_FIELDS):
        blocks.append(entry)
        blocks.extend(rows[row:row + B_POSITION - 1])
        blocks.append(rows[row + B_POSITION - 1] + shift)
        blocks.extend(rows[row + B_POSITION:row + _NATIVE_BLOCK_FIELDS])


def _first_block_row(blocks: array[int], entry: int) -> int:
    """Number of the first block row of entry ``entry`` or later."""
    column = blocks[B_ENTRY::BLOCK_FIELDS]
    lo, hi = 0, len(column)
    while lo < hi:
        mid = (lo + hi) // 2
        if column[mid] < entry:
            lo = mid + 1
        else:
            hi = mid
    return lo


class EntrySource(Protocol):
    """One submission's records as the event encoder placed them: a run per partition.

    Record ``i`` is ``records[ends[i - 1]:ends[i]]`` (record 0 starts at 0),
    its topic ``records[topics[2i]:topics[2i] + topics[2i + 1]]`` and its
    frame priority ``priorities[i]``; the first ``part_counts[0]`` records
    are partition 0's, and so on. ``ends`` and ``topics`` hold u32.
    """

    @property
    def records(self) -> bytes | memoryview:
        """See the class docstring."""
        ...

    @property
    def ends(self) -> memoryview | array[int]:
        """See the class docstring."""
        ...

    @property
    def topics(self) -> memoryview | array[int]:
        """See the class docstring."""
        ...

    @property
    def priorities(self) -> bytes:
        """See the class docstring."""
        ...

    @property
    def part_counts(self) -> Sequence[int]:
        """See the class docstring."""
        ...


class EntryCodec(Checksums, Protocol):
    """The CRC32C functions and the native EVENTS entry encoder (libshardq's wire backend)."""

    def entry_encode(self, sources: Sequence[EntrySource], *, partitions: int, index: int,
                     term: int, time_ns: int, next_offsets: array[int]
                     ) -> tuple[bytes, array[int]]:
        """A commit round as one EVENTS entry, and its block rows (positions within the entry)."""
        ...


_NATIVE_BLOCK_FIELDS = BLOCK_FIELDS - 1
"""Block row columns of the native encoder: every ``B_*`` column but ``B_ENTRY``."""


class EntryEncoder:
    """Builds consecutive entries into one buffer: what the log's append takes.

    Args:
        codec: the CRC32C functions and entry encoder (libshardq's wire backend).
        first_index: index of the first entry to add.
    """

    def __init__(self, codec: EntryCodec, first_index: int) -> None:
        self._codec = codec
        self._first = first_index
        self._data: bytes | bytearray = bytearray()
        self._ends = array("Q")
        self._terms = array("Q")
        self._kinds = bytearray()
        self._blocks = array("q")

    @property
    def next_index(self) -> int:
        """Index the next added entry gets."""
        return self._first + len(self._ends)

    def add(self, term: int, kind: int, payload: bytes | bytearray | memoryview) -> int:
        """Add an entry with an opaque payload; return its index."""
        data = self._grown()
        start = len(data)
        data += ENTRY_HEAD.pack(0, 0, self.next_index, term, kind)
        data += payload
        return self._close(start, term, kind)

    def add_events(self, term: int, sources: Sequence[EntrySource], next_offsets: array[int],
                   time_ns: int) -> int:
        """Add an EVENTS entry holding a commit round; return its index.

        One native call encodes the whole round, whatever the number of
        submissions and partitions. An encoder holding only this entry gives
        the native call's ``bytes`` as its batch's data (no further copy).

        Args:
            term: the entry's term.
            sources: the round's submissions as the event encoder placed them, in the
                order their records are to be stored.
            next_offsets: the next offset of each partition (an ``array("Q")``
                of one per partition), advanced past the records added.
            time_ns: ingest time of every record.
        """
        index = self.next_index
        entry, rows = self._codec.entry_encode(sources, partitions=len(next_offsets), index=index,
                                               term=term, time_ns=time_ns,
                                               next_offsets=next_offsets)
        start = len(self._data)
        if start:
            self._grown().extend(entry)
        else:
            self._data = entry
        add_native_blocks(self._blocks, rows, len(self._ends), start)
        self._ends.append(len(self._data))
        self._terms.append(term)
        self._kinds.append(EntryKind.EVENTS)
        return index

    def _grown(self) -> bytearray:
        """The buffer, made growable if it holds a native call's ``bytes``."""
        if not isinstance(self._data, bytearray):
            self._data = bytearray(self._data)
        return self._data

    def _close(self, start: int, term: int, kind: int) -> int:
        """Fill in the length and CRC of the entry that starts at ``start``."""
        data = self._grown()
        length = len(data) - start - 4
        if length > MAX_ENTRY_BYTES:
            del data[start:]
            raise ValueError(f"an entry of {length} bytes is over the 4 GiB limit")
        with memoryview(data) as view:
            crc = self._codec.crc32c(view[start + 8:])
        struct.pack_into("<II", data, start, length, crc)
        self._ends.append(len(data))
        self._terms.append(term)
        self._kinds.append(kind)
        return self._first + len(self._ends) - 1

    def finish(self) -> EntryBatch:
        """The entries added; the encoder starts over after the last one."""
        batch = EntryBatch(self._data, self._first, self._ends, self._terms, bytes(self._kinds),
                           self._blocks)
        self.__init__(self._codec, batch.last_index + 1)  # type: ignore[misc]
        return batch


@dataclass(slots=True)
class Walked:
    """What :func:`walk` found."""

    batch: EntryBatch
    """The whole valid entries, from the start of the buffer."""
    end: int
    """Position just past the last valid entry."""
    problem: str | None
    """Why the walk stopped before the end of the buffer, if it did; "truncated"
    when the next entry runs past the end of the buffer."""


def walk(data: bytes | bytearray | memoryview, checksums: Checksums, *,
         first_index: int | None = None, min_term: int = 0,
         partitions: int | None = None, keep_data: bool = True) -> Walked:
    """Check and describe the whole entries at the start of ``data``.

    One native call checks every entry's CRC; a loop over entries (not
    records) reads their headers and EVENTS group heads, and one native call
    per block checks that its records tile it exactly.

    Args:
        data: entries back to back.
        checksums: the CRC32C functions.
        first_index: the index the first entry must have (any when None).
        min_term: the lowest term the first entry may have (terms never go down).
        partitions: when given, EVENTS blocks must name a partition below it.
        keep_data: copy the valid entries into the result's batch; without
            it the batch's ``data`` is empty (only the metadata is wanted).
    """
    crc_ok, good_end = checksums.crc32c_records(data, min_len=MIN_ENTRY_LENGTH)
    ends, terms, kinds, blocks = array("Q"), array("Q"), bytearray(), array("q")
    unpack_head = ENTRY_HEAD.unpack_from
    expected = first_index
    term_floor = min_term
    position = 0
    problem = None
    while position < good_end:
        length, _, index, term, kind = unpack_head(data, position)
        end = position + 4 + length
        if expected is not None and index != expected:
            problem = f"holds index {index} where {expected} belongs"
            break
        if term < term_floor:
            problem = f"term {term} after term {term_floor}"
            break
        if kind == EntryKind.EVENTS:
            problem = _walk_blocks(data, position + ENTRY_HEADER_SIZE, end, len(ends), checksums,
                                   partitions, blocks)
            if problem is not None:
                break
        if expected is None:
            first_index = expected = index
        ends.append(end)
        terms.append(term)
        kinds.append(kind)
        expected += 1
        term_floor = term
        position = end
    if problem is None and position < len(data):
        if not crc_ok:
            length = struct.unpack_from("<I", data, position)[0]
            problem = (f"entry length {length} is too small" if length < MIN_ENTRY_LENGTH
                       else "CRC32C mismatch")
        else:
            problem = "truncated"
    batch = EntryBatch(bytes(data[:position]) if keep_data else b"",
                       first_index if first_index is not None else 1, ends, terms, bytes(kinds),
                       blocks)
    return Walked(batch, position, problem)


def _walk_blocks(data: bytes | bytearray | memoryview, position: int, end: int, entry: int,
                 checksums: Checksums, partitions: int | None, blocks: array[int]) -> str | None:
    """Check the groups of an EVENTS payload and add a row per block; the reason when bad."""
    previous = -1
    added = 0
    with memoryview(data) as view:
        while position < end:
            if end - position < GROUP_HEAD.size:
                problem = "an EVENTS group head runs past the entry"
                break
            partition, count, size = GROUP_HEAD.unpack_from(data, position)
            start = position + GROUP_HEAD.size
            if partition <= previous or (partitions is not None and partition >= partitions):
                problem = f"EVENTS group of partition {partition} out of order or out of range"
                break
            if not count or size < count * (RECORD_MIN_LENGTH + 4) or start + size > end:
                problem = f"EVENTS group of partition {partition} has a bad count or size"
                break
            ok, tiled = checksums.crc32c_records(view[start:start + size],
                                                 min_len=RECORD_MIN_LENGTH)
            if not ok or tiled != size:
                problem = f"the records of partition {partition} do not check out"
                break
            first_offset, time_ns = _RECORD_OFFSET_TIME.unpack_from(data, start + 8)
            blocks.extend((entry, partition, first_offset, count, start, size, time_ns))
            added += 1
            previous = partition
            position = start + size
        else:
            return None
    del blocks[len(blocks) - added * BLOCK_FIELDS:]
    return problem


def check_follows(batch: EntryBatch, last_index: int, last_term: int, next_offsets: list[int],
                  last_times: list[int]) -> None:
    """Refuse entries that do not follow on from a log's tail (a caller's bug, not the disk's).

    Args:
        batch: the entries to append.
        last_index: the log's last index.
        last_term: its term.
        next_offsets: each partition's next offset.
        last_times: the time of each partition's newest block.

    Raises:
        ValueError: an index, term, partition, offset or time out of sequence.
    """
    if batch.first_index != last_index + 1:
        raise ValueError(f"entries from index {batch.first_index} do not follow index "
                         f"{last_index}")
    previous = last_term
    for term in batch.terms:
        if term < max(previous, 1):
            raise ValueError(f"term {term} after term {previous} (terms start at 1 and never "
                             "go down)")
        previous = term
    rows = batch.blocks
    offsets, times = list(next_offsets), list(last_times)
    for row in range(0, len(rows), BLOCK_FIELDS):
        partition = rows[row + B_PARTITION]
        if not 0 <= partition < len(offsets):
            raise ValueError(f"partition {partition} does not exist")
        if rows[row + B_FIRST_OFFSET] != offsets[partition]:
            raise ValueError(f"partition {partition}: offset {rows[row + B_FIRST_OFFSET]} "
                             f"where {offsets[partition]} belongs")
        if rows[row + B_TIME] < times[partition]:
            raise ValueError(f"partition {partition}: time goes back")
        offsets[partition] += rows[row + B_COUNT]
        times[partition] = rows[row + B_TIME]


def concat(batches: Sequence[EntryBatch]) -> EntryBatch:
    """Consecutive batches as one (copies the bytes)."""
    if len(batches) == 1:
        return batches[0]
    data = b"".join(bytes(b.data) for b in batches)
    ends, blocks = array("Q"), array("q")
    shift = entries = 0
    for batch in batches:
        ends.extend(e + shift for e in batch.ends)
        rows = array("q", batch.blocks)
        rows[B_ENTRY::BLOCK_FIELDS] = array("q", (e + entries for e in rows[B_ENTRY::BLOCK_FIELDS]))
        rows[B_POSITION::BLOCK_FIELDS] = array(
            "q", (p + shift for p in rows[B_POSITION::BLOCK_FIELDS]))
        blocks.extend(rows)
        shift += len(batch.data)
        entries += batch.count
    terms = array("Q", (t for b in batches for t in b.terms))
    return EntryBatch(data, batches[0].first_index, ends, terms,
                      b"".join(b.kinds for b in batches), blocks)


__all__ = [
    "BLOCK_FIELDS", "B_COUNT", "B_ENTRY", "B_FIRST_OFFSET", "B_PARTITION", "B_POSITION",
    "B_SIZE", "B_TIME", "ENTRY_HEAD", "ENTRY_HEADER_SIZE", "GROUP_HEAD", "MIN_ENTRY_LENGTH",
    "CorruptEntry", "Entry", "EntryBatch", "EntryCodec", "EntryEncoder", "EntryKind",
    "EntrySource", "Walked", "add_native_blocks", "check_follows", "concat",
    "walk", "with_blocks",
]
