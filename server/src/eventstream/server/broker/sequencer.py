"""The sequencer: turns the submissions of a round into the next EVENTS entry (leader side).

Pure: no I/O; the clock's reading and the entry's index and term are passed
in. Only the leader sequences. Per round it

- de-duplicates each event that carries a producer id against the node's
  table of ids (:class:`..native.DedupTable`): the applied window (which
  only the applier changes) and the ids of rounds sequenced but not applied
  yet (*in flight*, which only the sequencer holds and releases); one native
  call checks a submission's ids, one holds its new ones, over the bytes
  the submission already has (no object per id);
- gives each new event its partition and offset from the *last appended*
  counters (one per partition) and encodes its record, sealed as the entry
  stores it, and its acknowledgement (one native call per submission,
  :meth:`..native.EventEncoder.place`, into one reused arena per round);
- stamps the round with one ingest time, clamped so it never goes back;
- encodes the whole round as one EVENTS entry (one native call, which adds
  the entry's and the groups' heads and copies each partition's run of
  sealed records whole: each record is written once before that copy);
- keeps what the applier needs of that entry, its blocks
  (:class:`.applier.EntryRows`; its producer ids are the ones held in
  flight for its index), so the node that sequenced an entry applies it
  without scanning it again (a follower scans).

The counters and the in-flight ids are re-derived from the log's tail each
time this node starts to lead (:meth:`Sequencer.activate`): the next offset
of every partition and the newest time over what the log holds, and the ids
of the entries appended but not applied (a previous leader's rounds may
still commit). While it does not lead, the sequencer is inactive and takes
nothing.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from ..native import DedupTable, EventEncoder, RecordArena
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
from .lanes import Submission


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
        window: the node's table of producer ids: the sequencer reads its
            window and holds and releases the ids in flight.
        partitions: partitions of the log.
        durability: the ``Durability`` value written in acknowledgements.
    """

    def __init__(self, encoder: EventEncoder, codec: EntryCodec, window: DedupTable,
                 partitions: int, durability: int) -> None:
        self._encoder = encoder
        self._codec = codec
        self._window = window
        self._durability = durability
        self._next = array("Q", [0]) * partitions
        self._last_time = 0
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
        return self._window.in_flight

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
        window = self._window
        window.clear_in_flight()
        by_entry: dict[int, tuple[int, bytearray, array[int]]] = {}
        for index, event_id, partition, offset, time_ns in unapplied:  # once per term: cold
            _, ids, rows = by_entry.setdefault(index, (time_ns, bytearray(), array("q")))
            rows.extend((partition, offset, len(ids), len(event_id)))
            ids += event_id
        for index in sorted(by_entry):
            time_ns, ids, rows = by_entry[index]
            window.hold_ids(bytes(ids), rows, time_ns, index)
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
        window = self._window
        self._arena.reset()
        try:
            for submission in taken:
                events = submission.events
                dups = window.check(events, time_ns)
                out = self._encoder.place(events, dups.encoded(), next_offsets,
                                          time_ns=time_ns, durability=self._durability,
                                          result_tag=submission.result_tag, into=self._arena)
                window.hold(events, dups, out, time_ns, index)  # seen by the next submissions too
                submission.placed = out
                placed.append(out)
                results.append(RoundResult(out.results, submission.count, dups.count))
            encoder = EntryEncoder(self._codec, index)
            encoder.add_events(term, placed, array("Q", self._next), time_ns)
            batch = encoder.finish()
        except BaseException:
            window.release(since=index)  # nothing of the round counts
            raise
        self._next = next_offsets
        self._last_time = time_ns
        return Round(index, term, batch, taken, results, _rows_of(batch))

    def applied(self, index: int) -> None:
        """Entries up to ``index`` were applied (their ids are in the window) or lost.

        Their ids leave the flight.
        """
        self._window.release(through=index)


def _rows_of(batch: EntryBatch) -> EntryRows:
    """The applier's rows of a sequenced entry: what ``entry_scan`` would list.

    Its producer ids are those held in flight for its index (the applier
    promotes them into the window).
    """
    blocks = batch.blocks
    runs = [(blocks[row + B_PARTITION], blocks[row + B_FIRST_OFFSET], blocks[row + B_COUNT],
             blocks[row + B_TIME]) for row in range(0, len(blocks), BLOCK_FIELDS)]
    return EntryRows(runs, None)


__all__ = ["Round", "RoundResult", "Sequencer"]
