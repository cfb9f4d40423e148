"""One partition of the durable log: its segments, staging, rolling, seeking, retention.

Touched only by the event loop thread; bytes reach the files through the
durable log's I/O thread. Appending encodes a batch into the pending buffer of
the active segment with one native call (no Python work per record) and rolls
to a new segment by size or age at a record boundary.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

from .log import ReadResult, RecordBatch
from .segment import Checksums, Segment


class Partition:
    """The segments of one partition; the last is the active one.

    Args:
        directory: the partition's directory.
        segments: its recovered segments, oldest first.
        checksums: the CRC32C functions.
        segment_bytes: roll once the active segment holds this many bytes.
        segment_ns: roll once the active segment's first record is this old.
        index_interval: bytes between sparse index entries.
    """

    def __init__(self, directory: Path, segments: list[Segment], *, checksums: Checksums,
                 segment_bytes: int, segment_ns: int, index_interval: int) -> None:
        self.directory = directory
        self.segments = segments
        self._bases = [s.base for s in segments]
        self.bytes = sum(s.size for s in segments)
        self.pending: list[tuple[Segment, bytearray]] = []
        self._checksums = checksums
        self._segment_bytes = segment_bytes
        self._segment_ns = segment_ns
        self._interval = index_interval

    @property
    def active(self) -> Segment:
        """The segment being written (pending segments included)."""
        return self.pending[-1][0] if self.pending else self.segments[-1]

    @property
    def last_time(self) -> int:
        """Ingest time of the newest pending or committed record."""
        return self.active.pending_last_time

    def append(self, batch: RecordBatch, time_ns: int) -> None:
        """Encode a batch at the end of the partition; not written yet.

        One native call per segment touched encodes the records (header,
        topic, record, CRC) and picks the sparse index entries; the segment
        rolls by size or age at a record boundary.
        """
        if self.pending:
            segment, buf = self.pending[-1]
        else:
            segment, buf = self.segments[-1], bytearray()
            self.pending.append((segment, buf))
        if not segment.empty and time_ns - (segment.first_time or time_ns) >= self._segment_ns:
            segment, buf = self._roll(segment)
        encode = self._checksums.segment_encode
        first, count = 0, batch.count
        while True:
            progress = encode(
                buf, batch.data, batch.start, batch.ends, batch.topic_data, batch.topics,
                batch.priorities, first, time_ns=time_ns, base=segment.base,
                next_offset=segment.pending_next, position=segment.pending_size,
                last_position=segment.last_position,
                sample_at=segment.positions[-1] + self._interval if segment.positions else 0,
                roll_at=self._segment_bytes, interval=self._interval)
            entries = progress.index_entries
            if entries:
                segment.rel_offsets.extend(entries[::2])
                segment.positions.extend(entries[1::2])
                segment.times.extend([time_ns] * (len(entries) // 2))
            _store(segment, progress.position, progress.next_offset, progress.last_position,
                   time_ns)
            first = progress.next_record
            if first >= count:
                return
            segment, buf = self._roll(segment)

    def _roll(self, segment: Segment) -> tuple[Segment, bytearray]:
        """Start a new segment after ``segment``."""
        rolled = Segment(self.directory, segment.pending_next), bytearray()
        self.pending.append(rolled)
        return rolled

    def publish(self) -> None:
        """The pending bytes were written: make them committed."""
        for segment, buf in self.pending:
            segment.publish()
            if segment is not self.segments[-1]:
                self.segments[-1].sealed = True
                self.segments.append(segment)
                self._bases.append(segment.base)
            self.bytes += len(buf)
        self.pending.clear()

    def discard(self) -> None:
        """The pending bytes could not be written: forget them."""
        for segment, _ in self.pending:
            segment.discard()
        self.pending.clear()

    def start_offset(self) -> int:
        """Oldest retained offset."""
        return self.segments[0].base

    def high_watermark(self) -> int:
        """One past the newest committed offset."""
        return self.segments[-1].next_offset

    def read(self, offset: int, max_records: int) -> ReadResult:
        """Committed records from ``offset`` (retained, below the high watermark).

        Raises:
            CorruptSegment: a record fails its CRC.
        """
        segment = self.segments[bisect_right(self._bases, offset) - 1]
        decoded = segment.read(self._checksums, segment.position_of(offset), limit=max_records,
                               min_offset=offset)
        return ReadResult(offset, decoded.records, decoded.topics, bytes(decoded.priorities))

    def offset_for_time(self, time_ns: int) -> int:
        """First committed offset whose ingest time is at or after ``time_ns``."""
        for segment in self.segments:
            if segment.next_offset > segment.base and segment.last_time >= time_ns:
                decoded = segment.read(self._checksums, segment.position_of_time(time_ns), limit=1,
                                       min_time=time_ns, keep=False)
                return decoded.offsets[0] if decoded.offsets else segment.next_offset
        return self.high_watermark()

    def expire(self, now_ns: int, retention_ns: int, retention_bytes: int) -> list[Segment]:
        """Drop the oldest sealed segments past retention; return them (files still there)."""
        removed: list[Segment] = []
        while len(self.segments) > 1:
            oldest = self.segments[0]
            too_old = retention_ns > 0 and oldest.last_time < now_ns - retention_ns
            too_big = retention_bytes > 0 and self.bytes > retention_bytes
            if not (too_old or too_big):
                break
            self.segments.pop(0)
            self._bases.pop(0)
            self.bytes -= oldest.size
            removed.append(oldest)
        return removed


def _store(segment: Segment, size: int, offset: int, position: int, time_ns: int) -> None:
    """Write the staging loop's counters back into the segment."""
    segment.pending_size, segment.pending_next = size, offset
    if offset > segment.base:
        segment.last_position, segment.pending_last_time = position, time_ns
        if segment.first_time is None:
            segment.first_time = time_ns


__all__ = ["Partition"]
