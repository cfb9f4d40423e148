"""The sequencer: turns the submissions of a round into the next EVENTS entry (leader side).

Pure: no I/O; the clock's reading and the entry's index and term are passed
in. Only the leader sequences. Per round it

- de-duplicates each event that carries a producer id against the applied
  window (:class:`.dedup.DedupWindow`, which only the applier changes) and
  against the ids of rounds sequenced but not applied yet (*in flight*);
- gives each new event its partition and offset from the *last appended*
  counters (one per partition) and encodes its record, sealed as the entry
  stores it, and its acknowledgement (one native call per submission,
  :meth:`..native.EventEncoder.place`, into one reused arena per round);
- stamps the round with one ingest time, clamped so it never goes back;
- encodes the whole round as one EVENTS entry (one native call, which adds
  the entry's and the groups' heads and copies each partition's run of
  sealed records whole: each record is written once before that copy);
- keeps what the applier needs of that entry, its blocks and the producer
  ids it stores (:class:`.applier.EntryRows`), so the node that sequenced an
  entry applies it without scanning it again (a follower scans).

The counters and the in-flight ids are re-derived from the log's tail each
time this node starts to lead (:meth:`Sequencer.activate`): the next offset
of every partition and the newest time over what the log holds, and the ids
of the entries appended but not applied (a previous leader's rounds may
still commit). While it does not lead, the sequencer is inactive and takes
nothing.
"""

from __future__ import annotations

import re
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from ..native import Duplicates, EventEncoder, RecordArena
from ..storage.entries import (
    B_COUNT,
    B_FIRST_OFFSET,
    B_PARTITION,
    B_TIME,
    BLOCK_FIELDS,
    EntryBatch,
    EntryCodec,
    EntryEncoder,
)
from .applier import EntryRows
from .dedup import DedupWindow
from .lanes import Submission

_SERVER_MADE_ID = re.compile(rb"[0-9a-f]{16}-[0-9a-f]+")
"""The form of the ids the server makes: an entry scan leaves such ids out of
the window (libshardq's ``server_made_id``), so the sequenced rows do too."""


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one submission got from a round."""

    results: bytes
    """One encoded PublishResult per event, in row order (see Submission)."""
    count: int
    """Events of the submission."""
    duplicates: int
    """How many of them were duplicates of an earlier id."""


@dataclass(slots=True, eq=False)
class Round:
    """One sequenced round: its entry, and what to answer once it is applied."""

    index: int
    term: int
    batch: EntryBatch
    """The encoded EVENTS entry (one), as the log writes it."""
    taken: list[Submission]
    results: list[RoundResult]
    rows: EntryRows
    """What the applier needs of the entry, as a scan of it would list it."""


class Sequencer:
    """Builds EVENTS entries from submissions (see the module docstring).

    Args:
        encoder: places accepted events and encodes their records and acknowledgements.
        codec: the CRC32C functions and the native entry encoder.
        window: the applied de-duplication window (read only here).
        partitions: partitions of the log.
        durability: the ``Durability`` value written in acknowledgements.
    """

    def __init__(self, encoder: EventEncoder, codec: EntryCodec, window: DedupWindow,
                 partitions: int, durability: int) -> None:
        self._encoder = encoder
        self._codec = codec
        self._window = window
        self._durability = durability
        self._next = array("Q", [0]) * partitions
        self._last_time = 0
        self._in_flight: dict[bytes, tuple[int, int, int, int]] = {}
        """id -> (partition, offset, time, entry index) of entries not applied yet."""
        self._by_entry: deque[tuple[int, list[bytes]]] = deque()
        """(entry index, its ids in flight), in index order."""
        self._arena = RecordArena()
        """Where a round's records are sealed until its entry is encoded."""
        self.term = 0
        """The term this sequencer leads in; 0 while inactive."""

    @property
    def active(self) -> bool:
        """Whether it sequences (this node leads)."""
        return self.term != 0

    @property
    def in_flight_ids(self) -> int:
        """Producer ids of rounds sequenced, not applied yet."""
        return len(self._in_flight)

    def activate(self, term: int, next_offsets: list[int], last_time: int,
                 unapplied: Iterable[tuple[int, bytes, int, int, int]]) -> None:
        """Start leading in ``term`` from the log's tail.

        Args:
            term: the term this node leads.
            next_offsets: each partition's next offset after every appended entry.
            last_time: the newest ingest time the log holds.
            unapplied: (entry index, id, partition, offset, time) of each
                producer id in the entries appended but not applied.
        """
        self._next = array("Q", next_offsets)
        self._last_time = max(self._last_time, last_time)
        self._in_flight = {}
        self._by_entry = deque()
        for index, event_id, partition, offset, time_ns in unapplied:
            self._in_flight[event_id] = (partition, offset, time_ns, index)
            if not self._by_entry or self._by_entry[-1][0] != index:
                self._by_entry.append((index, []))
            self._by_entry[-1][1].append(event_id)
        self.term = term

    def deactivate(self) -> None:
        """Stop sequencing (leadership lost); rounds in flight keep their answers pending."""
        self.term = 0

    def sequence(self, taken: list[Submission], index: int, term: int, now_ns: int) -> Round:
        """Build the EVENTS entry at ``(index, term)`` from ``taken`` (nothing is visible yet).

        Raises:
            Exception: from the encoder (a bug, not the publisher's fault);
                nothing of the round was counted then.
        """
        time_ns = max(now_ns, self._last_time)
        next_offsets = array("Q", self._next)
        results: list[RoundResult] = []
        placed = []
        in_flight = self._in_flight
        ids: list[bytes] = []
        stored: list[tuple[int, int, bytes]] = []
        self._arena.reset()
        try:
            for submission in taken:
                dups, fresh = self._dedup(submission, time_ns)
                out = self._encoder.place(submission.events, dups.encoded(), next_offsets,
                                          time_ns=time_ns, durability=self._durability,
                                          result_tag=submission.result_tag, into=self._arena)
                for event_id, row in fresh:  # seen by the next submissions of the round too
                    partition, offset = out.position(row)
                    in_flight[event_id] = (partition, offset, time_ns, index)
                    ids.append(event_id)
                    stored.append((partition, offset, event_id))
                submission.placed = out
                placed.append(out)
                results.append(RoundResult(out.results, submission.count, dups.count))
            encoder = EntryEncoder(self._codec, index)
            encoder.add_events(term, placed, array("Q", self._next), time_ns)
            batch = encoder.finish()
        except BaseException:
            for event_id in ids:  # nothing of the round counts
                in_flight.pop(event_id, None)
            raise
        self._next = next_offsets
        self._last_time = time_ns
        if ids:
            self._by_entry.append((index, ids))
        return Round(index, term, batch, taken, results, _rows_of(batch, stored))

    def applied(self, index: int) -> None:
        """Entries up to ``index`` were applied (their ids are in the window) or lost.

        Their ids leave the in-flight set.
        """
        by_entry, in_flight = self._by_entry, self._in_flight
        while by_entry and by_entry[0][0] <= index:
            entry, ids = by_entry.popleft()
            for event_id in ids:
                held = in_flight.get(event_id)
                if held is not None and held[3] == entry:
                    del in_flight[event_id]

    def _dedup(self, submission: Submission, now_ns: int
               ) -> tuple[Duplicates, list[tuple[bytes, int]]]:
        """Which events of one submission repeat an id seen before.

        Returns:
            The duplicates, and the (id, event number) of each new event
            that carries a producer id.
        """
        dups = Duplicates(submission.count)
        ids = submission.events.producer_ids()
        if ids is None:
            return dups, []  # only server-assigned ids: unique by construction
        lookup, in_flight = self._window.lookup, self._in_flight
        first_row: dict[bytes, int] = {}
        fresh: list[tuple[bytes, int]] = []
        for row, event_id in enumerate(ids):
            if not event_id:
                continue
            held = in_flight.get(event_id)
            hit = held[:3] if held is not None else lookup(event_id, now_ns)
            if hit is not None:
                dups.of_stored(row, *hit)
            elif event_id in first_row:
                dups.of_event(row, first_row[event_id])
            else:
                first_row[event_id] = row
                fresh.append((event_id, row))
        return dups, fresh


def _rows_of(batch: EntryBatch, stored: list[tuple[int, int, bytes]]) -> EntryRows:
    """The applier's rows of a sequenced entry: what ``entry_scan`` would list.

    Args:
        batch: the one EVENTS entry.
        stored: (partition, offset, id) of each event stored with a producer id.
    """
    blocks = batch.blocks
    runs = [(blocks[row + B_PARTITION], blocks[row + B_FIRST_OFFSET], blocks[row + B_COUNT],
             blocks[row + B_TIME]) for row in range(0, len(blocks), BLOCK_FIELDS)]
    stored.sort()  # the entry's order: by partition, then offset
    match = _SERVER_MADE_ID.fullmatch
    return EntryRows(runs, [(event_id, partition, offset) for partition, offset, event_id in stored
                            if not match(event_id)])


__all__ = ["Round", "RoundResult", "Sequencer"]
