"""The queue's record format, capacity rules and statistics.

Pure: no I/O. A record batch is a run of ``u32 big-endian length + bytes``
records, the format the native queue copies in and out unchanged (and the
shape of a run of raw frames, so validated frames can be pushed as they are).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .errors import EBADMSG, EINVAL, InvalidArgument, MalformedInput

MAX_SHARDS = 1024
_HEADER = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A snapshot of a queue's (or one shard's) counters, read in one call."""

    shards: int
    """Shards in the snapshot (1 for a single shard)."""
    depth: int
    """Records waiting."""
    depth_bytes: int
    """Bytes in use, 4-byte record headers included."""
    capacity_records: int
    """Records the shard(s) can hold."""
    capacity_bytes: int
    """Bytes the shard(s) can hold."""
    pushes: int
    """Records pushed, ever."""
    pops: int
    """Records popped, ever."""
    full_rejections: int
    """Records refused because their shard was full."""
    too_large_rejections: int
    """Push calls refused because a record exceeded ``max_record``."""
    wakeups: int
    """Times the eventfd was written to wake a sleeping consumer."""
    numa_node: int
    """NUMA node of the memory, or -1 (not placed, or shards on different nodes)."""
    numa_errno: int
    """0, or the errno of a failed placement (placement is best effort)."""


@dataclass(frozen=True, slots=True)
class Geometry:
    """Per-shard capacities derived from the queue options (the C rule, in one place)."""

    shards: int
    shard_records: int
    shard_bytes: int
    max_record: int

    @classmethod
    def of(cls, shards: int, capacity_records: int, capacity_bytes: int, max_record: int) -> Geometry:
        """Split the queue capacities over ``shards`` like ``shardq_create``.

        Raises:
            InvalidArgument: the options are out of range.
        """
        if not 1 <= shards <= MAX_SHARDS or capacity_records <= 0 or capacity_bytes <= 0 \
                or not 0 <= max_record <= 0xFFFFFFFF:
            raise InvalidArgument(EINVAL, "create: invalid queue options")
        shard_records = -(-capacity_records // shards)
        per_bytes = -(-capacity_bytes // shards)
        if per_bytes > 1 << 40:
            raise InvalidArgument(EINVAL, "create: capacity_bytes too large")
        shard_bytes = 1 << (max(per_bytes, 8) - 1).bit_length()
        if max_record == 0:
            max_record = min(shard_bytes - 4, 0xFFFFFFFF)
        if max_record + 4 > shard_bytes:
            raise InvalidArgument(EINVAL, "create: max_record does not fit in a shard")
        return cls(shards, shard_records, shard_bytes, max_record)


def encode_records(records: Iterable[bytes | bytearray | memoryview]) -> bytes:
    """Build a record batch from individual records (slow path: tools and tests).

    Hot paths build batches by concatenation or take frames as they arrive.
    """
    parts: list[bytes | bytearray | memoryview] = []
    for record in records:
        parts.append(_HEADER.pack(len(memoryview(record).cast("B"))))
        parts.append(record)
    return b"".join(parts)


def iter_records(batch: bytes | bytearray | memoryview) -> Iterator[memoryview]:
    """Yield each record of a batch as a memoryview (slow path: tools and tests).

    Raises:
        MalformedInput: the batch does not end on a record boundary.
    """
    view = memoryview(batch).cast("B")
    pos, end = 0, len(view)
    while pos < end:
        if end - pos < 4:
            raise MalformedInput(EBADMSG, "records: truncated header")
        (size,) = _HEADER.unpack_from(view, pos)
        if size > end - pos - 4:
            raise MalformedInput(EBADMSG, "records: truncated record")
        yield view[pos + 4:pos + 4 + size]
        pos += 4 + size
