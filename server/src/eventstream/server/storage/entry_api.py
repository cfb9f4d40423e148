"""The entry log's interface, shared by the in-memory and the disk entry log.

Pure: only types. The entry log is the replicated log (Raft's) and the store
subscribers read from, in one: a sequence of entries (index, term, kind,
payload; see :mod:`.entries`) whose EVENTS entries hold each commit round's
records grouped by partition.

Three marks move along it, in this order, never crossing:

- *appended* (:meth:`EntryLog.last_index`): given to :meth:`EntryLog.append`;
  may still be in flight to the file;
- *durable* (:meth:`EntryLog.durable_index`): written, and fdatasynced under
  ``fsync: always``;
- *applied* (:meth:`EntryLog.applied_index`): made visible to readers by the
  applier. Readers of a partition never see a record of an entry past it.

Committed (known to a quorum) is the Raft shell's business; a single node
commits what is durable. The log never un-appends on its own: a storage
error halts it (:class:`LogHalted`), and only :meth:`EntryLog.truncate_after`
(a follower dropping a conflicting suffix) removes entries, never applied ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .entries import EntryBatch
from .hard_state import HardState
from .log import ReadResult

if TYPE_CHECKING:
    from .block_records import Gatherer

DURABILITY_MEMORY = 1   # eventstream.v1.Durability.DURABILITY_MEMORY
DURABILITY_WRITTEN = 2  # eventstream.v1.Durability.DURABILITY_WRITTEN
DURABILITY_FSYNCED = 3  # eventstream.v1.Durability.DURABILITY_FSYNCED


class LogHalted(Exception):
    """The log stopped accepting writes after a storage error; restart the node.

    Raised by every write after the first failed write, fsync, rename or
    truncation: an fsync is never retried (the kernel may have dropped the
    pages it failed to write) and no index is ever written twice.
    """


class Compacted(LookupError):
    """The index asked for was dropped by retention (below ``first_index() - 1``)."""


class Unavailable(LookupError):
    """The index asked for is past the last appended entry."""


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One retention unit of the log (a segment file on disk)."""

    first_index: int
    last_index: int
    """``first_index - 1`` when it holds no entry yet."""
    bytes: int
    first_time: int | None
    """Ingest time of its first EVENTS entry, if any."""
    last_time: int | None
    """Ingest time of its newest EVENTS entry, if any."""
    partition_bytes: tuple[int, ...] = ()
    """Bytes of each partition's records in it."""


class EntryLog(Protocol):
    """What the write path, the Raft shell and subscribers need from the log.

    Threads: every method is called on the event loop thread. Futures resolve
    on it, in the order of the calls that returned them.
    """

    partitions: int
    """Number of partitions, fixed for the life of the data."""
    durability: int
    """The ``eventstream.v1.Durability`` value a durable entry has."""
    evicted: int
    """Records evicted to bound memory (the in-memory log; 0 for the durable one)."""

    # -- the replicated log ---------------------------------------------------

    def first_index(self) -> int:
        """Index of the oldest retained entry (``last_index() + 1`` when there is none)."""
        ...

    def last_index(self) -> int:
        """Index of the newest appended entry (0 for a new log)."""
        ...

    def term(self, index: int) -> int:
        """Term of the entry at ``index``; ``first_index() - 1`` is known too (0 if never used).

        Raises:
            Compacted: ``index`` is below ``first_index() - 1``.
            Unavailable: ``index`` is past ``last_index()``.
        """
        ...

    def entries(self, lo: int, hi: int, max_bytes: int) -> EntryBatch:
        """Entries ``lo`` to ``hi - 1`` exactly as appended.

        At most ``max_bytes`` of them, but always at least one (when ``lo < hi``).

        Raises:
            Compacted: ``lo`` is below ``first_index()``.
            Unavailable: ``hi - 1`` is past ``last_index()``.
            CorruptEntry: the bytes read fail their checks.
        """
        ...

    def append(self, batch: EntryBatch) -> asyncio.Future[int]:
        """Append entries that follow :meth:`last_index`.

        The first one is ``last_index() + 1``; terms never go down; each
        partition's offsets follow on. Returns at once; the future gives the
        batch's last index once it is durable by the fsync policy. Several
        appends may be in flight; they complete in order.

        Raises:
            LogHalted: after a storage error.
            ValueError: entries that do not follow on.
        """
        ...

    def append_many(self, batches: Sequence[EntryBatch]) -> asyncio.Future[int]:
        """Append consecutive batches as one write group (one fsync under ``fsync: always``).

        The batches' buffers are written as they are (no copy). The future
        gives the last index once all are durable.

        Raises:
            LogHalted: after a storage error.
            ValueError: entries that do not follow on.
        """
        ...

    def truncate_after(self, index: int) -> asyncio.Future[int]:
        """Drop every entry after ``index`` (a conflicting suffix).

        The future gives ``index`` once the cut is durable. ``durable_index()``
        drops to ``index`` at once if it was past it.

        Raises:
            LogHalted: after a storage error.
            ValueError: ``index`` is below the applied index.
        """
        ...

    def durable_index(self) -> int:
        """Highest index durable by the fsync policy (never past ``last_index()``)."""
        ...

    async def wait_durable(self, index: int) -> None:
        """Return once ``durable_index() >= index``.

        Raises:
            LogHalted: the log halted first.
        """
        ...

    def hard_state(self) -> HardState:
        """The hard state last set (or loaded)."""
        ...

    def set_hard_state(self, state: HardState) -> asyncio.Future[None]:
        """Persist ``state`` after every write already asked for.

        The future resolves once it is durable.

        Raises:
            LogHalted: after a storage error.
        """
        ...

    # -- applying -------------------------------------------------------------

    def applied_index(self) -> int:
        """Highest index made visible to readers."""
        ...

    def apply(self, index: int) -> None:
        """Make the records of entries up to ``index`` visible to readers.

        Raises:
            ValueError: ``index`` is past :meth:`durable_index`.
        """
        ...

    # -- one partition, for subscribers ---------------------------------------

    def next_offset(self, partition: int) -> int:
        """Offset the next record appended to ``partition`` gets."""
        ...

    def start_offset(self, partition: int) -> int:
        """Oldest offset still retained in ``partition``."""
        ...

    def last_time(self, partition: int) -> int:
        """Ingest time of the newest appended block of ``partition`` (-1 when it has none)."""
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
        """First visible offset whose ingest time is at or after ``time_ns``.

        The high watermark when there is none.
        """
        ...

    def retained_bytes(self, partition: int) -> int:
        """Bytes of records retained in ``partition``."""
        ...

    # -- retention ------------------------------------------------------------

    def segments(self) -> list[SegmentInfo]:
        """The retention units, oldest first."""
        ...

    def segment_count(self) -> int:
        """How many retention units (segments) the log holds."""
        ...

    def drop_before(self, index: int) -> int:
        """Drop the whole units (segments) that end before ``index`` and were applied.

        Never the newest. Returns the new :meth:`first_index`.

        Raises:
            LogHalted: after a storage error.
        """
        ...

    # -- the application's snapshot ---------------------------------------------

    def snapshot(self) -> bytes | None:
        """The snapshot last saved (or found at start), None when there is none."""
        ...

    def retain_from(self, index: int) -> None:
        """Let the next :meth:`save_snapshot` drop the units before ``index`` (a retention decision)."""
        ...

    def save_snapshot(self, data: bytes, index: int) -> asyncio.Future[None]:
        """Keep ``data`` (the application's state at applied entry ``index``), durably.

        Then drop the units before ``min(retain_from, index + 1)``: nothing is
        dropped that the saved snapshot does not cover. The future resolves
        once the snapshot is durable.

        Raises:
            LogHalted: after a storage error.
        """
        ...

    def install(self, *, first_index: int, prev_term: int, start_offsets: list[int],
                entries: bytes | memoryview, snapshot: bytes) -> asyncio.Future[None]:
        """Drop the whole log and start over with a leader's entries and snapshot, atomically.

        ``entries`` are encoded entries from ``first_index`` on,
        ``start_offsets`` each partition's next offset before them,
        ``prev_term`` the term of the entry before them and ``snapshot`` the
        new :meth:`snapshot`. Nothing may be in flight. The future resolves
        once the new log is durable (none of it applied yet).

        Raises:
            LogHalted: after a storage error (a failed install halts the log).
        """
        ...

    def close(self) -> None:
        """Finish pending writes, sync, release every resource."""
        ...


__all__ = ["DURABILITY_FSYNCED", "DURABILITY_MEMORY", "DURABILITY_WRITTEN", "Compacted",
           "EntryLog", "LogHalted", "SegmentInfo", "Unavailable"]
