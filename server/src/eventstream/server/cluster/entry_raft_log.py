"""The Raft driver's log port over the entry log: the entry log IS the Raft log.

:class:`EntryRaftLog` is the ``RaftLog`` port (``ports.py``) over an
:class:`~..storage.entry_api.EntryLog`, on disk or in memory;
:class:`EntryStorage` is the core's read-only ``LogStorage`` over the same
log. There is no second copy of the entries: the core's entries are read
back from the entry log, and what a persist writes is

- for an EVENTS entry the leader sequenced: the bytes the sequencer encoded
  (:meth:`EntryRaftLog.stage` hands them over before the proposal), written
  as they are;
- for every other entry (a NOOP, GROUPS, RETENTION, MEMBERSHIP, and entries
  a follower receives): encoded here, header and CRC, around the payload.

Persist (one call per Ready): a conflicting stored suffix is cut
(``truncate_after``), the entries are appended as one write group (one
fsync under ``fsync: always``), and the hard state is written when its term
or vote changed (the commit index alone is not worth a write: it is
re-learned from the log after a restart). The call returns once the entries
are durable by the fsync policy. A storage error raises ``LogHalted``: the
driver halts and the node takes no more writes until restarted.

Snapshots: the application's snapshot (``Applier.snapshot``) is kept in the
data dir with the index, term and membership it was taken at
(:func:`encode_snapshot`); saving one lets retention drop the segments it
covers. A follower far behind gets a snapshot from its leader with the
leader's retained entries up to the snapshot's index (:mod:`.snapshot_transfer`:
:meth:`EntryRaftLog.transfer_data` builds it on the leader); persisting it
replaces the follower's whole log by those entries and the snapshot, atomically
(``storage/entry_install.py``), so both logs start at the same index and hold
the same entries. A transfer that is damaged or does not fit raises
``TransferRefused``: the driver halts (the transport checks the stream's
checksum first, so this means a bug or a mismatched cluster).
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from eventstream.server.raft import (
    CompactedError,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Ready,
    Snapshot,
    UnavailableError,
)
from eventstream.server.raft.records import limit_size

from ..native.errors import MalformedInput
from ..native.wire import EntryScan
from ..storage import hard_state as stored_state
from ..storage.entries import (
    ENTRY_HEADER_SIZE,
    CorruptEntry,
    EntryBatch,
    EntryCodec,
    EntryEncoder,
    add_native_blocks,
    with_blocks,
)
from ..storage.entry_api import Compacted, EntryLog, LogHalted, Unavailable
from ..storage.segment import Checksums
from .errors import SnapshotUnavailable
from .snapshot_transfer import decode_transfer, encode_transfer

log = logging.getLogger(__name__)

_SNAPSHOT_MAGIC = b"ESSN"
_SNAPSHOT_VERSION = 1
_SNAPSHOT_HEAD = struct.Struct("<4sIQQII")  # magic, version, index, term, membership, data bytes
_CRC = struct.Struct("<I")


RECENT_BYTES = 8 << 20
"""Bytes of the newest appended entries the Raft log adapter keeps to serve reads back."""


class PayloadScanner(Protocol):
    """Checks and lists an EVENTS payload in one call (libshardq's wire backend)."""

    def entry_scan(self, payload: memoryview, partitions: int = 0, *, check: bool = False
                   ) -> EntryScan:
        """See ``native.NativeWire.entry_scan``."""
        ...


class SnapshotRefused(Exception):
    """The stored snapshot is damaged or does not fit the log; the message names what."""


def encode_snapshot(snapshot: Snapshot, checksums: Checksums) -> bytes:
    """The snapshot file's bytes: index, term, membership, the application's data, a CRC32C."""
    membership = json.dumps({"voters": sorted(snapshot.membership.voters),
                             "learners": sorted(snapshot.membership.learners),
                             "addresses": snapshot.membership.address_map()}).encode()
    body = b"".join((_SNAPSHOT_HEAD.pack(_SNAPSHOT_MAGIC, _SNAPSHOT_VERSION, snapshot.index,
                                         snapshot.term, len(membership), len(snapshot.data)),
                     membership, snapshot.data))
    return body + _CRC.pack(checksums.crc32c(body))


def decode_snapshot(data: bytes, checksums: Checksums) -> Snapshot:
    """Parse :func:`encode_snapshot`'s bytes.

    Raises:
        SnapshotRefused: damaged or of another format.
    """
    if len(data) < _SNAPSHOT_HEAD.size + _CRC.size:
        raise SnapshotRefused(f"{len(data)} bytes, not a snapshot")
    magic, version, index, term, members, size = _SNAPSHOT_HEAD.unpack_from(data)
    end = _SNAPSHOT_HEAD.size + members + size
    if magic != _SNAPSHOT_MAGIC or version != _SNAPSHOT_VERSION or len(data) != end + _CRC.size:
        raise SnapshotRefused(f"not a snapshot of version {_SNAPSHOT_VERSION}")
    if _CRC.unpack_from(data, end)[0] != checksums.crc32c(data[:end]):
        raise SnapshotRefused("CRC32C mismatch: the file is damaged")
    document = json.loads(data[_SNAPSHOT_HEAD.size:_SNAPSHOT_HEAD.size + members])
    # "addresses" (added members' cluster addresses) is absent from older snapshots.
    membership = Membership(frozenset(document["voters"]), frozenset(document["learners"]),
                            tuple(sorted(document.get("addresses", {}).items())))
    return Snapshot(index, term, membership, data[_SNAPSHOT_HEAD.size + members:end])


def _payload(batch: EntryBatch, i: int) -> memoryview:
    """Entry ``i``'s payload, a view into the batch's buffer (no copy)."""
    return memoryview(batch.data)[batch.start(i) + ENTRY_HEADER_SIZE:batch.ends[i]]


def entries_of(batch: EntryBatch) -> list[Entry]:
    """The batch's entries as the core's ``Entry`` objects, payloads shared with the batch."""
    first, terms, kinds = batch.first_index, batch.terms, batch.kinds
    return [Entry(first + i, terms[i], EntryKind(kinds[i]), _payload(batch, i))
            for i in range(batch.count)]


class EntryStorage:
    """The core's ``raft.LogStorage`` over an entry log (see the module docstring).

    Args:
        event_log: the entry log.
        hard: the hard state found at start.
        snapshot: the latest snapshot (at index 0 with the initial membership for a new log).
    """

    def __init__(self, event_log: EntryLog, hard: HardState, snapshot: Snapshot) -> None:
        self._log = event_log
        self._hard = hard
        self.latest = snapshot
        """The latest snapshot saved (or found at start)."""
        self._recent: deque[Entry] = deque()
        self._recent_bytes = 0

    def remember(self, entries: Sequence[Entry]) -> None:
        """Keep the newest appended entries (consecutive with those kept, or after a cut).

        The core reads entries back right after they were appended (to apply
        them once committed, and to send them to followers): served from
        here, the log does not read back and check what it just wrote.
        """
        recent = self._recent
        first = entries[0].index
        while recent and recent[-1].index >= first:  # a conflicting suffix was cut
            self._recent_bytes -= len(recent.pop().data)
        if recent and recent[-1].index != first - 1:
            recent.clear()
            self._recent_bytes = 0
        recent.extend(entries)
        self._recent_bytes += sum(len(entry.data) for entry in entries)
        while len(recent) > 1 and self._recent_bytes > RECENT_BYTES:
            self._recent_bytes -= len(recent.popleft().data)

    def forget(self) -> None:
        """Drop the entries kept: the log started over (a snapshot was installed)."""
        self._recent.clear()
        self._recent_bytes = 0

    def initial_state(self) -> HardState:
        """See ``raft.LogStorage.initial_state``."""
        return self._hard

    def entries(self, lo: int, hi: int, max_bytes: int = 0) -> list[Entry]:
        """See ``raft.LogStorage.entries``."""
        recent = self._recent
        if recent and recent[0].index <= lo and hi - 1 <= recent[-1].index and \
                lo <= self._log.last_index():
            first = lo - recent[0].index
            return limit_size([recent[i] for i in range(first, first + hi - lo)], max_bytes)
        try:
            batch = self._log.entries(lo, hi, max_bytes if max_bytes > 0 else 1 << 62)
        except Compacted:
            raise CompactedError(f"entry {lo} is compacted (first index "
                                 f"{self._log.first_index()})") from None
        except Unavailable:
            raise UnavailableError(f"entries up to {hi - 1} asked, last index is "
                                   f"{self._log.last_index()}") from None
        return entries_of(batch)

    def term(self, index: int) -> int:
        """See ``raft.LogStorage.term``."""
        if index == self.latest.index:
            return self.latest.term
        try:
            return self._log.term(index)
        except Compacted:
            raise CompactedError(f"entry {index} is compacted") from None
        except Unavailable:
            raise UnavailableError(f"entry {index} is beyond the last index "
                                   f"{self._log.last_index()}") from None

    def first_index(self) -> int:
        """See ``raft.LogStorage.first_index``."""
        return self._log.first_index()

    def last_index(self) -> int:
        """See ``raft.LogStorage.last_index``."""
        return self._log.last_index()

    def snapshot(self) -> Snapshot:
        """See ``raft.LogStorage.snapshot``.

        Raises:
            UnavailableError: the log dropped entries the latest snapshot does
                not cover (the in-memory log evicts on its own): the core asks
                for a new one.
        """
        if self.latest.index < self._log.first_index() - 1:
            raise UnavailableError("the latest snapshot does not cover the log's start")
        return self.latest


class EntryRaftLog:
    """The ``RaftLog`` port over an entry log (see the module docstring).

    Args:
        event_log: the entry log, opened (recovered) already.
        codec: the CRC32C functions and the native entry encoder.
        membership: the initial voters, for a log that holds no snapshot yet.

    Raises:
        SnapshotRefused: the stored snapshot is damaged or does not cover the
            log's first entries.
    """

    def __init__(self, event_log: EntryLog, codec: EntryCodec, membership: Membership) -> None:
        self._log = event_log
        self._codec = codec
        stored = event_log.snapshot()
        try:
            snapshot = (decode_snapshot(stored, codec) if stored is not None
                        else Snapshot(membership=membership))
        except SnapshotRefused as error:
            raise SnapshotRefused(f"the application snapshot (file `snapshot` of the data dir) "
                                  f"is refused: {error}") from None
        if snapshot.index < event_log.first_index() - 1:
            raise SnapshotRefused(f"the log starts at entry {event_log.first_index()} but the "
                                  f"stored snapshot covers only up to {snapshot.index}")
        saved = event_log.hard_state()
        self._saved = saved
        self._storage = EntryStorage(
            event_log, HardState(saved.term, saved.vote or None, saved.commit), snapshot)
        self._staged: dict[int, EntryBatch] = {}
        self.appended_index = event_log.last_index()
        """Index of the last entry handed to the entry log."""
        self._appended = asyncio.Event()
        self.on_appended: Callable[[int], None] | None = None
        """Called with the new :attr:`appended_index` after each persist that appended."""
        self.halted: BaseException | None = None
        self.installed = 0
        """Snapshots from a leader installed since start."""
        self.max_transfer_bytes = 1 << 30
        """Most bytes of a snapshot transfer (``cluster.max_snapshot_bytes``)."""
        self._too_large = -1
        self.scanner: PayloadScanner | None = None
        """Checks a follower's EVENTS payloads and lists their rows in one native pass
        (none: :func:`~..storage.entries.with_blocks` checks them, the applier scans)."""
        self.on_scanned: Callable[[int, int, EntryScan], None] | None = None
        """Called with (index, term, scan) of each EVENTS entry :attr:`scanner` checked
        (the applier's hand-over: it applies the entry from its scan)."""

    @property
    def storage(self) -> EntryStorage:
        """The core's read-only view (``raft.LogStorage``)."""
        return self._storage

    @property
    def codec(self) -> EntryCodec:
        """The CRC32C functions and the native entry encoder."""
        return self._codec

    @property
    def event_log(self) -> EntryLog:
        """The entry log underneath."""
        return self._log

    def stage(self, batch: EntryBatch) -> None:
        """Hand over the encoded bytes of an entry about to be proposed (written as they are).

        ``batch`` holds one entry, at the index and term the proposal gets.
        """
        self._staged[batch.first_index] = batch

    def unstage(self, index: int) -> None:
        """Drop a staged entry whose proposal was refused."""
        self._staged.pop(index, None)

    async def wait_appended(self, index: int) -> None:
        """Return once :attr:`appended_index` reached ``index``.

        Raises:
            LogHalted: the log halted first.
        """
        while self.appended_index < index:
            if self.halted is not None:
                raise LogHalted(str(self.halted))
            self._appended.clear()
            await self._appended.wait()

    def fail_waiters(self, error: BaseException) -> None:
        """The driver halted or stopped: let every :meth:`wait_appended` go with an error."""
        self.halted = error
        self._appended.set()

    async def persist(self, ready: Ready) -> None:
        """See ``ports.RaftLog.persist``."""
        event_log = self._log
        if ready.snapshot is not None:
            await self._install(ready.snapshot)
        waits: list[asyncio.Future[int] | asyncio.Future[None]] = []
        entries = ready.entries
        if entries:
            first = entries[0].index
            if first <= event_log.last_index():
                waits.append(event_log.truncate_after(first - 1))
            waits.append(event_log.append_many(self._batches(entries)))
        hard = ready.hard_state
        if hard is not None and (hard.term != self._saved.term
                                 or (hard.vote or "") != self._saved.vote):
            self._saved = stored_state.HardState(hard.term, hard.vote or "", hard.commit)
            waits.append(event_log.set_hard_state(self._saved))
        if entries:
            self._storage.remember(entries)
            self.appended_index = entries[-1].index
            self._appended.set()
            if self.on_appended is not None:
                self.on_appended(self.appended_index)
        if len(waits) == 1:  # the usual round: one append
            await waits[0]
            return
        failed: BaseException | None = None
        for wait in waits:  # every one awaited: a failure is reported once, by the first
            try:
                await wait
            except BaseException as error:  # re-raised below
                failed = failed or error
        if failed is not None:
            raise failed

    def _batches(self, entries: Sequence[Entry]) -> list[EntryBatch]:
        """The entries as encoded batches: the staged ones as they are, the others encoded here."""
        staged = self._staged
        out: list[EntryBatch] = []
        encoder: EntryEncoder | None = None
        for entry in entries:
            batch = staged.pop(entry.index, None)
            if batch is not None and batch.terms[0] == entry.term:
                if encoder is not None:
                    out.append(self._finish(encoder))
                    encoder = None
                out.append(batch)
                continue
            if encoder is None:
                encoder = EntryEncoder(self._codec, entry.index)
            encoder.add(entry.term, entry.kind, entry.data)
        if encoder is not None:
            out.append(self._finish(encoder))
        if staged:
            for index in [i for i in staged if i <= entries[-1].index]:
                del staged[index]  # proposals that lost their index
        return out

    def _finish(self, encoder: EntryEncoder) -> EntryBatch:
        batch = encoder.finish()
        if EntryKind.EVENTS not in batch.kinds:
            return batch
        # A follower's entries: check and index their records.
        if self.scanner is None:
            return with_blocks(batch, self._codec)
        return self._scanned(batch, self.scanner)

    def _scanned(self, batch: EntryBatch, scanner: PayloadScanner) -> EntryBatch:
        """``batch`` with its EVENTS blocks listed by one checking scan per payload.

        The scan checks what :func:`~..storage.entries.with_blocks` checks
        (groups, records tiling them, record CRCs) and the framing the
        applier needs; its rows go to :attr:`on_scanned`, so applying the
        entry scans nothing again.

        Raises:
            CorruptEntry: an EVENTS payload that does not check out.
        """
        blocks: array[int] = array("q")
        data = memoryview(batch.data)
        partitions = self._log.partitions
        for number, kind in enumerate(batch.kinds):
            if kind != EntryKind.EVENTS:
                continue
            start = batch.start(number)
            try:
                scan = scanner.entry_scan(data[start + ENTRY_HEADER_SIZE:batch.ends[number]],
                                          partitions, check=True)
            except MalformedInput as error:
                raise CorruptEntry(start, f"the EVENTS payload does not check out: {error}"
                                   ) from None
            add_native_blocks(blocks, scan.blocks, number, start + ENTRY_HEADER_SIZE)
            if self.on_scanned is not None:
                self.on_scanned(batch.first_index + number, batch.terms[number], scan)
        return EntryBatch(batch.data, batch.first_index, batch.ends, batch.terms, batch.kinds,
                          blocks)

    async def _install(self, snapshot: Snapshot) -> None:
        """Start the log over with a leader's transfer (see the module docstring)."""
        transfer = decode_transfer(snapshot.data, self._log.partitions, snapshot.index, self._codec)
        application = Snapshot(snapshot.index, snapshot.term, snapshot.membership,
                               transfer.application)
        await self._log.install(first_index=transfer.first_index, prev_term=transfer.prev_term,
                                start_offsets=transfer.start_offsets, entries=transfer.entries,
                                snapshot=encode_snapshot(application, self._codec))
        self._storage.latest = application
        self._storage.forget()
        self._staged.clear()
        self.appended_index = snapshot.index
        self.installed += 1
        log.info("installed the leader's snapshot at entry %d: the log starts over at %d",
                 snapshot.index, transfer.first_index)

    def transfer_data(self, snapshot: Snapshot) -> bytes:
        """What the leader sends a follower for ``snapshot``: its retained entries up to it, and it.

        Raises:
            SnapshotUnavailable: the log dropped entries up to past the
                snapshot (a newer one covers them: the core sends that one next
                time), or the retained entries up to it are more than
                :attr:`max_transfer_bytes` (logged once per snapshot).
        """
        event_log = self._log
        first = event_log.first_index()
        if first > snapshot.index + 1:
            raise SnapshotUnavailable(f"the log starts at {first}, after the snapshot at "
                                      f"{snapshot.index}")
        size = sum(segment.bytes for segment in event_log.segments()
                   if segment.first_index <= snapshot.index) + len(snapshot.data)
        if size > self.max_transfer_bytes:
            if self._too_large != snapshot.index:
                self._too_large = snapshot.index
                log.warning("a follower needs the snapshot at entry %d, but with the retained "
                            "entries up to it (about %d bytes) it is over cluster.max_snapshot_bytes "
                            "(%d): raise that on every member, or keep less (storage.retention_*)",
                            snapshot.index, size, self.max_transfer_bytes)
            raise SnapshotUnavailable(f"about {size} bytes, over the limit of {self.max_transfer_bytes}")
        prev_term = snapshot.term if first == snapshot.index + 1 else event_log.term(first - 1)
        entries: bytes | bytearray | memoryview = b""
        if first <= snapshot.index:
            batch = event_log.entries(first, snapshot.index + 1, 1 << 62)
            entries = memoryview(batch.data)[:batch.ends[-1]]
        offsets = [event_log.start_offset(p) for p in range(event_log.partitions)]
        return encode_transfer(first, prev_term, offsets, entries, snapshot.data)

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """See ``ports.RaftLog.save_snapshot``: keep it; retention may then drop what it covers."""
        await self._log.save_snapshot(encode_snapshot(snapshot, self._codec), snapshot.index)
        self._storage.latest = snapshot


__all__ = ["EntryRaftLog", "EntryStorage", "SnapshotRefused", "decode_snapshot",
           "encode_snapshot", "entries_of"]
