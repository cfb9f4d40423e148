"""The committed log's interface, shared by the in-memory and durable logs.

Pure: only types. The log is split into partitions; each is an append-only
sequence of records numbered by offset from 0. One writer (the write path)
appends and commits; any number of readers read up to the high watermark.

A record is an encoded ``eventstream.v1.Event`` already framed as field 1 of
a delivery message (tag byte, length varint, bytes), so a delivery batch is
the concatenation of records. Beside each record the log keeps its topic,
priority byte and ingest time for filtering and seeking without decoding.

Records are appended a batch at a time as one buffer with their boundaries
(:class:`RecordBatch`, what the event encoder places), never as an object per
record: the hot path builds none.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Records of one partition back to back in one buffer, with their boundaries.

    Record ``i`` is ``data[ends[i - 1]:ends[i]]`` (record 0 starts at
    ``start``); its topic is the UTF-8 ``topic_data[at:at + length]`` where
    ``(at, length) = topics[2 * i:2 * i + 2]``, usually a span inside the
    record itself (then ``topic_data is data``); ``priorities[i]`` is its
    frame priority byte. ``ends`` and ``topics`` hold u32 values.
    """

    data: bytes
    start: int
    ends: memoryview | array[int]
    topics: memoryview | array[int]
    priorities: bytes
    topic_data: bytes

    @property
    def count(self) -> int:
        """Records in the batch."""
        return len(self.ends)

    @classmethod
    def of(cls, records: list[bytes], topics: list[str], priorities: bytes) -> RecordBatch:
        """A batch of separate records (tests and slow paths)."""
        ends, spans, names = array("I"), array("I"), bytearray()
        position = 0
        for record, topic in zip(records, topics, strict=True):
            position += len(record)
            ends.append(position)
            encoded = topic.encode()
            spans.extend((len(names), len(encoded)))
            names += encoded
        return cls(b"".join(records), 0, ends, spans, bytes(priorities), bytes(names))


class ReadResult:
    """Records of one partition from ``first_offset`` on (parallel sequences).

    ``topics`` may be given as a function that makes the list: it is called
    once, on first use (a subscriber taking every topic never needs them).
    """

    __slots__ = ("_topics", "first_offset", "priorities", "records")

    def __init__(self, first_offset: int, records: list[bytes],
                 topics: list[str] | Callable[[], list[str]], priorities: bytes) -> None:
        self.first_offset = first_offset
        self.records = records
        self.priorities = priorities
        self._topics = topics

    @property
    def topics(self) -> list[str]:
        """The topic of each record."""
        if callable(self._topics):
            self._topics = self._topics()
        return self._topics


class EventLog(Protocol):
    """What the write path and subscribers need from a log.

    Ordering: ``append`` calls are kept in order and become visible to
    readers only when ``commit`` returns. Ownership: the log keeps references
    to the batch's buffers (or copies of the part it needs); callers must not
    mutate them.
    """

    partitions: int
    """Number of partitions, fixed for the life of the log."""
    durability: int
    """The ``eventstream.v1.Durability`` value a commit provides."""
    evicted: int
    """Records dropped to stay within the log's bounds, ever (0 when it never drops)."""

    def next_offset(self, partition: int) -> int:
        """Offset the next record appended to ``partition`` gets."""
        ...

    def append(self, partition: int, batch: RecordBatch, time_ns: int) -> None:
        """Append a non-empty batch at the end of ``partition``; not visible until committed."""
        ...

    async def commit(self) -> None:
        """Make every appended record durable by the log's policy, then visible.

        Raises:
            StorageFailed: the records could not be made durable; they stay
                invisible, whatever of them reached the disk stays there for
                the next start's recovery to judge, and the log takes no more
                commits (see :mod:`.failure`).
        """
        ...

    def start_offset(self, partition: int) -> int:
        """Oldest offset still retained in ``partition``."""
        ...

    def high_watermark(self, partition: int) -> int:
        """One past the newest committed offset of ``partition``."""
        ...

    def read(self, partition: int, offset: int, max_records: int) -> ReadResult:
        """Committed records from ``offset`` (clamped to what is retained) on.

        Raises:
            LookupError: ``offset`` is older than :meth:`start_offset`.
        """
        ...

    def offset_for_time(self, partition: int, time_ns: int) -> int:
        """First offset whose ingest time is at or after ``time_ns``."""
        ...

    def retained_bytes(self, partition: int) -> int:
        """Bytes of records retained in ``partition``."""
        ...

    def close(self) -> None:
        """Release the log's resources."""
        ...
