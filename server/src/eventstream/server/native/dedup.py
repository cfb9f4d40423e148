"""The de-duplication table: recent producer ids, in libshardq (one table per node).

Each id has up to two parts (see ``shardq.h``, "De-duplication table"):

- the *window* part (partition, offset, time): ids of applied entries, in
  the order they were remembered, forgotten oldest first beyond ``max_ids``
  and once older than ``window_ns`` (measured by the entries' ingest time,
  so every node that applied the same entries holds the same window);
- the *in-flight* part (partition, offset, time, entry index): ids of rounds
  the leader sequenced and did not apply yet.

Every batch operation is one native call over the bytes that already hold
the ids (a submission's accepted events, an entry scan's payload): no
Python object per id. The row layouts stay in this package.
"""

from __future__ import annotations

import ctypes
import os
from array import array
from ctypes import byref, c_int64, c_size_t, c_uint64

from . import _lib
from .errors import raise_for
from .events import ROW_BYTES, AcceptedEvents, PlacedRecords
from .wire import EntryScan

DUP_BYTES = 24
"""Bytes of one verdict (``struct shardq_dup``)."""
NO_INDEX = 0xFFFF_FFFF_FFFF_FFFF


class DedupCheck:
    """Which events of one submission repeat an id (:meth:`DedupTable.check`).

    Attributes:
        count: events that repeat an id (usually 0).
        ids: events that carry a producer id (0: nothing to hold).
    """

    __slots__ = ("_verdicts", "count", "ids")

    def __init__(self, verdicts: ctypes.Array[ctypes.c_char] | None, count: int, ids: int) -> None:
        self._verdicts = verdicts
        self.count = count
        self.ids = ids

    def encoded(self) -> ctypes.Array[ctypes.c_char] | None:
        """The verdicts as :meth:`.events.EventEncoder.place` takes them (None: no duplicate).

        Valid until the table's next :meth:`DedupTable.check`.
        """
        return self._verdicts if self.count else None


class DedupTable:
    """The node's de-duplication window and in-flight ids (see the module docstring).

    Args:
        window_ns: how long an applied id is remembered, in nanoseconds.
        max_ids: most applied ids remembered (0, or a window of 0: none).
        library: explicit libshardq path (default: see :func:`._lib.library_path`).
    """

    def __init__(self, window_ns: int, max_ids: int,
                 library: str | os.PathLike[str] | None = None) -> None:
        self.window_ns = window_ns
        self.max_ids = max_ids
        self._lib = _lib.load(library)
        handle = ctypes.c_void_p()
        rc = self._lib.shardq_dedup_create(window_ns, max_ids, byref(handle))
        if rc:
            raise_for(rc, "dedup_create")
        self._handle = handle
        self._destroy = self._lib.shardq_dedup_destroy
        # The calls of every round or entry skip ctypes' argument conversion.
        self._check = _lib.unchecked(self._lib, "shardq_dedup_check")
        self._hold = _lib.unchecked(self._lib, "shardq_dedup_hold")
        self._promote = _lib.unchecked(self._lib, "shardq_dedup_promote")
        self._remember = _lib.unchecked(self._lib, "shardq_dedup_remember")
        self._expire = _lib.unchecked(self._lib, "shardq_dedup_expire")
        self._verdicts = ctypes.create_string_buffer(DUP_BYTES * 256)
        self._check_counts = (c_size_t * 2)()
        self._counts = (c_uint64 * 3)()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            self._destroy(handle)
            handle.value = None

    def _count(self, which: int) -> int:
        self._lib.shardq_dedup_counts(self._handle, self._counts)
        return int(self._counts[which])

    def __len__(self) -> int:
        """Ids in the window."""
        return self._count(0)

    @property
    def in_flight(self) -> int:
        """Ids held for rounds sequenced and not applied yet."""
        return self._count(1)

    @property
    def enabled(self) -> bool:
        """Whether applied ids are remembered at all."""
        return self.max_ids > 0 and self.window_ns > 0

    # -- the sequencer's side ---------------------------------------------------

    def check(self, events: AcceptedEvents, now_ns: int) -> DedupCheck:
        """Which of a submission's events repeat an id in flight, in the window or before them.

        One native call; nothing in the table changes (:meth:`hold` does).
        """
        n = len(events)
        if ctypes.sizeof(self._verdicts) < DUP_BYTES * n:
            self._verdicts = ctypes.create_string_buffer(DUP_BYTES * n)
        rc = self._check(self._handle, events.bodies, c_size_t(len(events.bodies)), events.rows,
                         c_size_t(n), c_int64(now_ns), self._verdicts, self._check_counts)
        if rc:
            raise_for(rc, "dedup_check")
        counts = self._check_counts
        return DedupCheck(self._verdicts, counts[0], counts[1])

    def hold(self, events: AcceptedEvents, check: DedupCheck, placed: PlacedRecords,
             time_ns: int, index: int) -> None:
        """Hold the new ids of a placed submission in flight for the entry at ``index``.

        Args:
            events: the submission's events, as :meth:`check` saw them.
            check: its result (valid until the next :meth:`check`).
            placed: where :meth:`.events.EventEncoder.place` put them.
            time_ns: the round's time.
            index: the round's entry index (not below any held before).
        """
        if not check.ids:
            return  # no producer id: nothing to hold (no call)
        positions = _lib.Borrowed(placed.positions)
        try:
            rc = self._hold(self._handle, events.bodies, c_size_t(len(events.bodies)), events.rows,
                            c_size_t(len(events.rows) // ROW_BYTES), check.encoded(),
                            positions.ptr, c_int64(time_ns), c_uint64(index))
        finally:
            positions.release()
        if rc:
            raise_for(rc, "dedup_hold")

    def hold_ids(self, ids: bytes, rows: array[int], time_ns: int, index: int) -> None:
        """Hold ids of one entry in flight: ``rows`` of (partition, offset, position, length).

        Args:
            ids: the bytes the rows point into.
            rows: ``array('q')``, four values per id.
            time_ns: the entry's time.
            index: the entry's index.
        """
        rc = self._lib.shardq_dedup_hold_ids(self._handle, ids, len(ids), rows.buffer_info()[0],
                                             len(rows) // _lib.ENTRY_ID_FIELDS, time_ns, index)
        if rc:
            raise_for(rc, "dedup_hold_ids")

    def release(self, through: int = 0, since: int = NO_INDEX) -> None:
        """Take out of flight the ids held for entries up to ``through`` and from ``since`` on."""
        self._lib.shardq_dedup_release(self._handle, through, since)

    def clear_in_flight(self) -> None:
        """Take every id out of flight."""
        self.release(NO_INDEX)

    # -- the applier's side -----------------------------------------------------

    def promote(self, index: int, time_ns: int) -> None:
        """The entry at ``index``, sequenced here, was applied: its held ids join the window.

        In the entry's order, without ids of the server's form: the window a
        scan of the entry gives (:meth:`remember`).
        """
        rc = self._promote(self._handle, c_uint64(index), c_int64(time_ns))
        if rc:
            raise_for(rc, "dedup_promote")

    def remember(self, scan: EntryScan, time_ns: int) -> None:
        """Put an applied entry's producer ids into the window (one call over the scan)."""
        payload, rows = scan.id_rows()
        held = _lib.Borrowed(payload)
        try:
            rc = self._remember(self._handle, held.ptr, c_size_t(held.length),
                                ctypes.c_void_p(rows.buffer_info()[0]),
                                c_size_t(len(rows) // _lib.ENTRY_ID_FIELDS), c_int64(time_ns))
        finally:
            held.release()
        if rc:
            raise_for(rc, "dedup_remember")

    def expire(self, now_ns: int) -> None:
        """Forget the oldest ids beyond ``max_ids``, then those older than the window."""
        self._expire(self._handle, c_int64(now_ns))

    def lookup(self, event_id: bytes, now_ns: int) -> tuple[int, int, int] | None:
        """Where the first event with this id went, if still inside the window (slow path).

        Returns:
            (partition, offset, time remembered), or None.
        """
        hit = (c_int64 * 3)()
        rc = self._lib.shardq_dedup_lookup(self._handle, event_id, len(event_id), now_ns, hit)
        if rc < 0:
            raise_for(rc, "dedup_lookup")
        return (hit[0], hit[1], hit[2]) if rc else None

    # -- snapshots ----------------------------------------------------------------

    def encode(self) -> bytes:
        """The window as bytes, oldest first (the same bytes for the same window)."""
        size = self._count(2)
        out = ctypes.create_string_buffer(size)
        used = c_size_t()
        rc = self._lib.shardq_dedup_encode(self._handle, out, size, byref(used))
        if rc:
            raise_for(rc, "dedup_encode")
        return out.raw[:used.value]

    def restore(self, data: bytes | memoryview) -> None:
        """Replace the window by one :meth:`encode` made (the ids in flight stay).

        Raises:
            MalformedInput: ``data`` is not such bytes (a ``ValueError``; the
                window is unchanged).
        """
        held = _lib.Borrowed(data)
        try:
            rc = self._lib.shardq_dedup_restore(self._handle, held.ptr, held.length)
        finally:
            held.release()
        if rc:
            raise_for(rc, "de-duplication window")


__all__ = ["DedupCheck", "DedupTable"]
