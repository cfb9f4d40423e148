"""What a leader sends a follower that needs entries its log no longer holds: pure encoding.

The application snapshot holds offsets, the de-duplication window and the
groups' table at its index, but no events. A follower that installed only
that would lack the events of the entries the leader still retains up to
the snapshot's index, and its subscribers would miss them. So the transfer
carries the leader's retained entries too: every entry from the leader's
first retained index F to the snapshot's index S, exactly as stored, with
what a segment starting at F records (the term of entry F - 1 and each
partition's next offset before F). The follower's log then starts over at F,
holding the same entries as the leader's, and every retained event the
leader serves, the follower serves.

Format (little-endian), the data of the ``InstallSnapshot`` message::

    magic "ESTR" · u32 version · u64 first index F · u64 term of F - 1 ·
    u32 partitions · u64 next offset per partition · u64 entry bytes ·
    the entries F..S (entry format) · the application snapshot (the rest)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..storage.entries import B_COUNT, B_FIRST_OFFSET, B_PARTITION, BLOCK_FIELDS, CorruptEntry, EntryBatch
from ..storage.segment import Checksums

_MAGIC = b"ESTR"
_VERSION = 1
_HEAD = struct.Struct("<4sIQQI")
_U64 = struct.Struct("<Q")


class TransferRefused(Exception):
    """A transfer that is damaged or does not fit this node; the message says what."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """A decoded transfer (see the module docstring)."""

    first_index: int
    prev_term: int
    start_offsets: list[int]
    entries: memoryview
    """The entries F..S, encoded, checked."""
    application: bytes
    """The application snapshot at S."""


def encode_transfer(first_index: int, prev_term: int, start_offsets: list[int],
                    entries: bytes | bytearray | memoryview, application: bytes) -> bytes:
    """The transfer's bytes (see the module docstring)."""
    return b"".join((_HEAD.pack(_MAGIC, _VERSION, first_index, prev_term, len(start_offsets)),
                     struct.pack(f"<{len(start_offsets)}Q", *start_offsets),
                     _U64.pack(len(entries)), entries, application))


def decode_transfer(data: bytes, partitions: int, index: int, checksums: Checksums) -> Transfer:
    """Parse and check a transfer meant to bring the log up to ``index`` (the snapshot's).

    Raises:
        TransferRefused: not a transfer of this version, another partition
            count, entries that fail their checks or do not end at ``index``.
    """
    view = memoryview(data)
    if len(view) < _HEAD.size:
        raise TransferRefused(f"{len(view)} bytes, not a snapshot transfer")
    magic, version, first, prev_term, count = _HEAD.unpack_from(view)
    if magic != _MAGIC or version != _VERSION:
        raise TransferRefused(f"not a snapshot transfer of version {_VERSION}")
    if count != partitions:
        raise TransferRefused(f"a transfer of {count} partitions; this node has {partitions}")
    at = _HEAD.size + 8 * count
    if len(view) < at + _U64.size:
        raise TransferRefused("truncated before its entries")
    offsets = list(struct.unpack_from(f"<{count}Q", view, _HEAD.size))
    (size,) = _U64.unpack_from(view, at)
    at += _U64.size
    if len(view) < at + size:
        raise TransferRefused(f"{size} bytes of entries declared, {len(view) - at} left")
    entries = view[at:at + size]
    last = first - 1
    if size:
        try:
            batch = EntryBatch.decode(bytes(entries), checksums, first_index=first)
        except CorruptEntry as error:
            raise TransferRefused(f"its entries are damaged: {error}") from None
        last = batch.first_index + batch.count - 1
    if first < 1 or last != index:
        raise TransferRefused(f"its entries run from {first} to {last}, not up to the "
                              f"snapshot's index {index}")
    return Transfer(first, prev_term, offsets, entries, bytes(view[at + size:]))


def without_entries(data: bytes, partitions: int, index: int, checksums: Checksums) -> bytes:
    """Test-only bug: the same transfer without its entries (the follower then starts at S + 1).

    Its subscribers would miss the events of the leader's retained entries up
    to S: the cluster tests must see that.
    """
    transfer = decode_transfer(data, partitions, index, checksums)
    offsets, prev_term = list(transfer.start_offsets), transfer.prev_term
    if transfer.entries:
        batch = EntryBatch.decode(bytes(transfer.entries), checksums, first_index=transfer.first_index)
        blocks = batch.blocks
        for row in range(0, len(blocks), BLOCK_FIELDS):
            offsets[blocks[row + B_PARTITION]] = blocks[row + B_FIRST_OFFSET] + blocks[row + B_COUNT]
        prev_term = batch.terms[-1]
    return encode_transfer(index + 1, prev_term, offsets, b"", transfer.application)


__all__ = ["Transfer", "TransferRefused", "decode_transfer", "encode_transfer", "without_entries"]
