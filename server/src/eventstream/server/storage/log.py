"""The committed log's interface, shared by the in-memory and durable logs.

Pure: only types. The log is split into partitions; each is an append-only
sequence of records numbered by offset from 0. One writer (the write path)
appends and commits; any number of readers read up to the high watermark.

A record is an encoded ``eventstream.v1.Event`` already framed as field 1 of
a delivery message (tag byte, length varint, bytes), so a delivery batch is
the concatenation of records. Beside each record the log keeps its topic,
priority byte and ingest time for filtering and seeking without decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Records of one partition from ``first_offset`` on (parallel sequences)."""

    first_offset: int
    records: list[bytes]
    topics: list[str]
    priorities: bytes


class EventLog(Protocol):
    """What the write path and subscribers need from a log.

    Ordering: ``append`` calls are staged in order and become visible to
    readers only when ``commit`` returns. Ownership: the log keeps references
    to the bytes and strings it is given; callers must not mutate them.
    """

    partitions: int
    """Number of partitions, fixed for the life of the log."""
    durability: int
    """The ``eventstream.v1.Durability`` value a commit provides."""

    def next_offset(self, partition: int) -> int:
        """Offset the next record appended to ``partition`` gets."""
        ...

    def append(self, partition: int, records: list[bytes], topics: list[str],
               priorities: bytes, time_ns: int) -> None:
        """Stage records at the end of ``partition``; not visible until committed."""
        ...

    async def commit(self) -> None:
        """Make every staged record durable by the log's policy, then visible.

        Raises:
            OSError: the records could not be made durable; they stay invisible.
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
