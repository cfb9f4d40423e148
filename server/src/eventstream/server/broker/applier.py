"""The applier: applies committed entries, in index order, on every node.

No I/O of its own: it makes records visible through the entry log
(:meth:`~..storage.entry_api.EntryLog.apply`) and changes the application's
state, which is a function of the entries applied (and of the snapshot they
followed) only, never of the node's clock or of who sequenced them:

- ``EVENTS``: checks that each partition's records follow on from the last
  applied offset, remembers the producer ids in the de-duplication window
  (one native call lists them, with their partition and offset, and one
  puts them into the window, :meth:`..native.DedupTable.remember`; the node
  that sequenced the entry promotes the ids it holds in flight for it
  instead, :meth:`..native.DedupTable.promote`, see
  :meth:`EntryApplier.expect`, which gives the same window) and expires
  it by the entry's ingest time, then makes the entry visible, wakes readers
  (the commit signal) and reports the entry, so the node that sequenced it
  answers its publishers;
- ``GROUPS``: the consumer groups' table (:mod:`.group_state`);
- ``RETENTION``: the log may drop the entries before an index once a
  snapshot covers them (the snapshot is asked for at once);
- ``NOOP``, ``MEMBERSHIP``: nothing (the Raft core keeps the membership).

It is the Raft driver's ``Applier`` port (``cluster.ports.Applier``):
``apply``, ``snapshot`` and ``restore``. A snapshot holds, at its index, each
partition's next offset, the newest ingest time, the de-duplication window
and the groups' table. It is asked for after every ``snapshot_bytes`` of
applied entries (so a restart replays about a segment) and at retention.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..native import DedupTable, EntryScan
from ..raft import Entry, EntryKind, Snapshot
from ..storage.entry_api import EntryLog
from .group_state import GroupTable

log = logging.getLogger(__name__)

RETENTION = struct.Struct("<Q")
"""A RETENTION entry's payload: the log may drop the entries before this index."""
_SNAPSHOT_MAGIC = b"ESAP"
_SNAPSHOT_VERSION = 1
_SNAPSHOT_HEAD = struct.Struct("<4sIQIq")  # magic, version, applied index, partitions, last time
_U32 = struct.Struct("<I")


class CommitSignal:
    """Wakes every waiting subscriber after each applied batch of entries (a broadcast)."""

    def __init__(self) -> None:
        self.generation = 0
        self._event = asyncio.Event()
        self._waiting = 0
        """Callers of :meth:`wait` waiting on ``_event``."""

    def fire(self) -> None:
        """Announce newly visible records."""
        self.generation += 1
        if self._waiting:  # (with no subscriber waiting, no new Event per round)
            event, self._event = self._event, asyncio.Event()
            event.set()

    async def wait(self, seen_generation: int) -> None:
        """Return once a commit newer than ``seen_generation`` happened."""
        if self.generation == seen_generation:
            self._waiting += 1
            try:
                await self._event.wait()
            finally:
                self._waiting -= 1


@dataclass(frozen=True, slots=True)
class EntryRows:
    """What applying an EVENTS entry needs of it, as :meth:`EntryScanner.entry_scan` lists it."""

    runs: list[tuple[int, int, int, int]]
    """(partition, first offset, count, time) of each block, in entry order."""
    ids: EntryScan | None
    """The scan listing the producer ids the entry stores (not of the
    server's form); None for an entry this node sequenced: its ids are the
    ones held in flight for its index."""


class EntryScanner(Protocol):
    """Lists an EVENTS payload's blocks and producer ids (libshardq's wire backend)."""

    def entry_scan(self, payload: bytes | bytearray | memoryview, partitions: int = 0
                   ) -> EntryScan:
        """See ``native.NativeWire.entry_scan``."""
        ...


class AppliedOutOfOrder(Exception):
    """A committed entry whose records do not follow on from what was applied (a bug, or damage)."""


class EntryApplier:
    """Applies committed entries to the log's visibility and the application's state.

    Args:
        event_log: the entry log (its ``apply`` makes records visible).
        scanner: lists the producer ids of EVENTS payloads.
        window: the node's table of producer ids (only this class changes
            its window; the sequencer holds the ids in flight there).
        groups: the consumer groups' table (only this class changes it).
        snapshot_bytes: ask for a snapshot after this many bytes of applied
            entries (0: only at retention).
    """

    def __init__(self, event_log: EntryLog, scanner: EntryScanner, window: DedupTable,
                 groups: GroupTable, *, snapshot_bytes: int = 0) -> None:
        self._log = event_log
        self._scanner = scanner
        self.window = window
        self.groups = groups
        self.partitions = event_log.partitions
        self._snapshot_bytes = snapshot_bytes
        self._since_snapshot = 0
        self.next_offsets = [event_log.start_offset(p) for p in range(self.partitions)]
        """Each partition's next offset after the entries applied."""
        self.last_time = -1
        """The newest ingest time applied."""
        self.applied_index = 0
        self.signal = CommitSignal()
        self.on_entry: Callable[[int, int], None] | None = None
        """Called with (index, term) of each applied entry, in order, once it is visible."""
        self.on_groups: Callable[[list[str]], None] | None = None
        """Called with the names of the groups a GROUPS entry touched."""
        self.on_applied: Callable[[], None] | None = None
        """Called after each applied batch (consumer groups wake their members)."""
        self.request_snapshot: Callable[[], None] | None = None
        """Asks the Raft driver to take a snapshot after this apply step."""
        self.scanned = 0
        """EVENTS entries scanned to apply them (those this node did not sequence)."""
        self._expected: dict[int, tuple[int, EntryRows]] = {}
        """index -> (term, rows) of the entries this node sequenced, not applied yet."""

    def expect(self, index: int, term: int, rows: EntryRows) -> None:
        """The entry at ``(index, term)`` was sequenced here with ``rows``: apply it without a scan.

        Raft's log matching makes the entry that commits at ``index`` with
        ``term`` this very entry; one of another term is scanned.
        """
        self._expected[index] = (term, rows)

    def expect_scanned(self, index: int, term: int, scan: EntryScan) -> None:
        """The entry at ``(index, term)`` was received and checked with ``scan``: apply it from it.

        A follower's hand-over from its persist (the same matching as :meth:`expect`).
        """
        self._expected[index] = (term, EntryRows(scan.runs(), scan))

    # -- the Applier port ------------------------------------------------------

    async def apply(self, entries: Sequence[Entry]) -> None:
        """Apply committed ``entries`` (consecutive, in index order, every kind).

        Raises:
            AppliedOutOfOrder: an EVENTS entry whose offsets do not follow on.
            GroupEntryError: a GROUPS entry of another format.
        """
        snapshot_wanted = False
        expected = self._expected
        for entry in entries:
            kind = entry.kind
            known = expected.pop(entry.index, None) if expected else None
            if known is not None and known[0] != entry.term:
                known = None
            if kind == EntryKind.EVENTS:
                self._apply_events(entry, known[1] if known is not None else self._scan(entry))
            elif kind == EntryKind.GROUPS:
                touched = self.groups.apply(entry.data)
                if self.on_groups is not None:
                    self.on_groups(touched)
            elif kind == EntryKind.RETENTION:
                (before,) = RETENTION.unpack(entry.data)
                self._log.retain_from(before)
                snapshot_wanted = True
            self._since_snapshot += len(entry.data)
            self.applied_index = entry.index
        self._log.apply(self.applied_index)
        on_entry = self.on_entry
        if on_entry is not None:
            for entry in entries:
                on_entry(entry.index, entry.term)
        self.signal.fire()
        if self.on_applied is not None:
            self.on_applied()
        if self._snapshot_bytes and self._since_snapshot >= self._snapshot_bytes:
            snapshot_wanted = True
        if snapshot_wanted and self.request_snapshot is not None:
            self.request_snapshot()

    def _scan(self, entry: Entry) -> EntryRows:
        """The rows of an EVENTS entry this node did not sequence (one native call)."""
        self.scanned += 1
        scan = self._scanner.entry_scan(entry.data, self.partitions)
        return EntryRows(scan.runs(), scan)

    def _apply_events(self, entry: Entry, rows: EntryRows) -> None:
        next_offsets = self.next_offsets
        runs = rows.runs
        # Every block of an entry has the round's one ingest time.
        time_ns = runs[-1][3] if runs else self.last_time
        for partition, first, count, _ in runs:
            if first != next_offsets[partition]:
                raise AppliedOutOfOrder(
                    f"entry {entry.index}: partition {partition} continues at offset {first} "
                    f"where {next_offsets[partition]} belongs")
            next_offsets[partition] = first + count
        self.last_time = max(self.last_time, time_ns)
        window = self.window
        if rows.ids is None:
            window.promote(entry.index, time_ns)
        elif rows.ids.id_count:
            window.remember(rows.ids, time_ns)
        window.expire(self.last_time)

    async def snapshot(self) -> bytes:
        """The application's state as of the last applied entry (see the module docstring)."""
        self._since_snapshot = 0
        window = self.window.encode()
        groups = self.groups.encode()
        offsets = struct.pack(f"<{self.partitions}Q", *self.next_offsets)
        return b"".join((_SNAPSHOT_HEAD.pack(_SNAPSHOT_MAGIC, _SNAPSHOT_VERSION,
                                             self.applied_index, self.partitions, self.last_time),
                         offsets, _U32.pack(len(window)), window, _U32.pack(len(groups)), groups))

    async def restore(self, snapshot: Snapshot) -> None:
        """Take the state of ``snapshot`` (the stored one at start, or one from the leader).

        Raises:
            ValueError: its data is not an application snapshot of this format.
        """
        data = memoryview(snapshot.data)
        magic, version, index, partitions, last_time = _SNAPSHOT_HEAD.unpack_from(data)
        if magic != _SNAPSHOT_MAGIC or version != _SNAPSHOT_VERSION:
            raise ValueError(f"snapshot at {snapshot.index}: not an application snapshot of "
                             f"version {_SNAPSHOT_VERSION}")
        if partitions != self.partitions or index != snapshot.index:
            raise ValueError(f"snapshot at {snapshot.index}: holds {partitions} partitions at "
                             f"index {index}")
        at = _SNAPSHOT_HEAD.size
        offsets = list(struct.unpack_from(f"<{partitions}Q", data, at))
        at += 8 * partitions
        (size,) = _U32.unpack_from(data, at)
        self.window.restore(data[at + 4:at + 4 + size])
        at += 4 + size
        (size,) = _U32.unpack_from(data, at)
        self.groups.restore(data[at + 4:at + 4 + size])
        self.next_offsets = offsets
        self.last_time = last_time
        self.applied_index = index
        self._since_snapshot = 0
        self._expected = {i: known for i, known in self._expected.items() if i > index}
        self._log.apply(index)
        log.info("application state restored from the snapshot at entry %d", index)

    def state(self) -> bytes:
        """Everything applied so far, as the bytes a snapshot holds (for tests and checks)."""
        window = self.window.encode()
        groups = self.groups.encode()
        return b"".join((struct.pack(f"<Q{self.partitions}Qq", self.applied_index,
                                     *self.next_offsets, self.last_time), window, groups))


__all__ = ["RETENTION", "AppliedOutOfOrder", "CommitSignal", "EntryApplier", "EntryRows",
           "EntryScanner"]
