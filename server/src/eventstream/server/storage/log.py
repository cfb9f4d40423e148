"""The partitions as readers see them: the read side shared by the entry logs.

Pure: only types. The log is split into partitions; each is an append-only
sequence of records numbered by offset from 0. Readers (subscriptions,
consumer groups, the status page) read up to each partition's high
watermark: the records of applied entries only.

A record is an encoded ``eventstream.v1.Event`` already framed as field 1 of
a delivery message (tag byte, length varint, bytes), so a delivery batch is
the concatenation of records. Beside each record the log keeps its topic,
priority byte and ingest time for filtering and seeking without decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .block_records import Gatherer


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
    """What readers need from the log (the entry logs provide it)."""

    partitions: int
    """Number of partitions, fixed for the life of the log."""
    durability: int
    """The ``eventstream.v1.Durability`` value of a durable entry."""
    evicted: int
    """Records evicted to bound memory (the in-memory log; 0 for the durable one)."""

    def start_offset(self, partition: int) -> int:
        """Oldest offset still retained in ``partition``."""
        ...

    def high_watermark(self, partition: int) -> int:
        """One past the newest visible (applied) offset of ``partition``."""
        ...

    def read(self, partition: int, offset: int, max_records: int) -> ReadResult:
        """Visible records from ``offset`` on (at least one if any are left).

        Raises:
            LookupError: ``offset`` is older than :meth:`start_offset`.
        """
        ...

    def select(self, partition: int, offset: int, max_records: int, out: Gatherer) -> None:
        """Have ``out`` take visible records from ``offset`` on, block by block.

        At most ``max_records`` are examined; a :class:`.block_records.Selection`
        may stop sooner (its budget), and takes only its subscriber's records.

        Raises:
            LookupError: ``offset`` is older than :meth:`start_offset`.
        """
        ...

    def offset_for_time(self, partition: int, time_ns: int) -> int:
        """First visible offset whose ingest time is at or after ``time_ns``."""
        ...

    def retained_bytes(self, partition: int) -> int:
        """Bytes of records retained in ``partition``."""
        ...


__all__ = ["EventLog", "ReadResult"]
