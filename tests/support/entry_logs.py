"""What the entry log tests share: deterministic rounds of records, logs to open.

A *round* is what the write path turns into one EVENTS entry: a few record
batches for some partitions. Everything here is a pure function of its
arguments, so a test (or a child process killed mid-write) can rebuild the
exact bytes an index must hold.
"""

from __future__ import annotations

import dataclasses
from array import array
from dataclasses import dataclass
from pathlib import Path

from eventstream.server.config.model import StorageConfig
from eventstream.server.native import NativeWire
from eventstream.server.storage.entries import EntryBatch, EntryEncoder, EntryKind
from eventstream.server.storage.entry_data_dir import CLEAN_FILE
from eventstream.server.storage.entry_log import DiskEntryLog
from eventstream.server.storage.fileops import FileOps

CHECKSUMS = NativeWire()


def records(start: int, count: int) -> tuple[list[bytes], list[str], bytes]:
    """Records ``start`` to ``start + count - 1``.

    Framed events (a tag byte, a length, a body that starts with the topic), their topics and priorities.
    """
    topics = [f"topic/{i % 3}" for i in range(start, start + count)]
    bodies = [topic.encode() + b"#r%06d" % i for i, topic in zip(range(start, start + count),
                                                                   topics)]
    return ([b"\x0a" + bytes([len(body)]) + body for body in bodies], topics,
            bytes(i % 5 for i in range(start, start + count)))


@dataclass(frozen=True)
class Source:
    """One submission's records, a run per partition (what the event encoder places)."""

    records: bytes
    ends: array
    topics: array
    priorities: bytes
    part_counts: list[int]


def source_of(partitions: int, runs: dict[int, tuple[int, int]]) -> Source:
    """A submission holding, for each partition in ``runs``, a run of records.

    ``runs`` maps a partition to (first, count): records ``first`` to
    ``first + count - 1``.
    """
    data, ends, spans, priorities = bytearray(), array("I"), array("I"), bytearray()
    counts = [0] * partitions
    for partition in sorted(runs):
        first, count = runs[partition]
        framed, topics, prios = records(first, count)
        for record, topic in zip(framed, topics):
            spans.extend((len(data) + 2, len(topic)))
            data += record
            ends.append(len(data))
        priorities += prios
        counts[partition] = count
    return Source(bytes(data), ends, spans, bytes(priorities), counts)


class Rounds:
    """Builds EVENTS entries (and others) that follow on from a log's state.

    Args:
        partitions: partitions of the log.
        first_index: index of the next entry.
        next_offsets: each partition's next offset (default all 0).
    """

    def __init__(self, partitions: int, first_index: int = 1,
                 next_offsets: list[int] | None = None) -> None:
        self.partitions = partitions
        self.next_offsets = array("Q", next_offsets or [0] * partitions)
        self.encoder = EntryEncoder(CHECKSUMS, first_index)

    @classmethod
    def following(cls, log) -> Rounds:  # type: ignore[no-untyped-def]
        """Rounds that follow on from ``log``'s last entry."""
        return cls(log.partitions, log.last_index() + 1,
                   [log.next_offset(p) for p in range(log.partitions)])

    def events(self, term: int, spread: dict[int, int], time_ns: int,
               submissions: int = 2) -> EntryBatch:
        """One EVENTS entry with ``spread[partition]`` records per partition."""
        self.add_events(term, spread, time_ns, submissions)
        return self.encoder.finish()

    def add_events(self, term: int, spread: dict[int, int], time_ns: int,
                   submissions: int = 2) -> None:
        """Add one EVENTS entry to the batch being built (see :meth:`finish`).

        Each partition's records are split over ``submissions`` submissions.
        """
        sources = []
        for number in range(submissions):
            runs = {}
            for partition, count in spread.items():
                share = count // submissions + (number < count % submissions)
                first = self.next_offsets[partition] + sum(
                    count // submissions + (n < count % submissions) for n in range(number))
                if share:
                    runs[partition] = (first, share)
            sources.append(source_of(self.partitions, runs))
        self.encoder.add_events(term, sources, self.next_offsets, time_ns)

    def add(self, term: int, kind: EntryKind, payload: bytes) -> None:
        """Add an opaque entry to the batch being built."""
        self.encoder.add(term, kind, payload)

    def finish(self) -> EntryBatch:
        """The entries added since the last :meth:`finish`."""
        return self.encoder.finish()


def expected_records(partition: int, start: int, stop: int) -> list[bytes]:
    """The records :class:`Rounds` puts at offsets ``start`` to ``stop - 1`` of a partition."""
    return records(start, stop - start)[0]


def disk_config(root: Path, partitions: int, **changes: object) -> StorageConfig:
    """A small-segment storage config for tests."""
    config = StorageConfig(data_dir=str(root), partitions=partitions, segment_bytes=4096,
                           tail_cache_bytes=1 << 20, fsync="always")
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def open_disk(config: StorageConfig, ops: FileOps | None = None,
              index_cache_bytes: int = 1 << 20) -> DiskEntryLog:
    """Open a disk entry log."""
    return DiskEntryLog(config, CHECKSUMS, ops=ops, index_cache_bytes=index_cache_bytes)


def forget_clean_shutdown(root: Path | str) -> None:
    """Leave a closed log's data dir as a crash would: without the clean-shutdown record."""
    (Path(root) / CLEAN_FILE).unlink(missing_ok=True)


def segment_files(root: Path | str) -> list[Path]:
    """The log's segment files, oldest first."""
    return sorted((Path(root) / "log").glob("*.log"))
