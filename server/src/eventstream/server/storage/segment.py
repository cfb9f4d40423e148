"""The record format of the entry log's EVENTS blocks, and what checks it.

Pure: no I/O. The records are encoded by libshardq
(``NativeWire.entry_encode``) and read by :mod:`.block_records`. A partition's
records in one EVENTS entry (a block, :mod:`.entries`) are records of this
format back to back. Little-endian; append-only (a change needs a new data
format version)::

    u32 length    bytes after this field
    u32 crc32c    of every byte after this field
    u64 offset
    i64 time_ns   ingest time
    u8  priority  frame priority byte (0..4)
    u16 topic_len
    topic         UTF-8
    record        the framed event, exactly as the log was given it
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Protocol

HEAD = struct.Struct("<IIQqBH")     # length, crc32c, offset, time_ns, priority, topic_len
HEADER_SIZE = HEAD.size

MIN_LENGTH = HEADER_SIZE - 4
"""Smallest valid length field: the CRC and fixed fields with an empty topic and record."""


class Checksums(Protocol):
    """The CRC32C functions of the wire backend (:class:`..native.NativeWire`)."""

    def crc32c(self, data: bytes | bytearray | memoryview, crc: int = 0) -> int:
        """CRC32C of ``data``."""
        ...

    def crc32c_records(self, buf: bytes | bytearray | memoryview, *, min_len: int,
                       fill: bool = False) -> tuple[bool, int]:
        """Check (or fill in) the CRC of every length-prefixed record of ``buf``."""
        ...


class CorruptSegment(Exception):
    """A record that fails its checks; names the file and the byte position."""

    def __init__(self, path: Path | str, position: int, reason: str) -> None:
        super().__init__(f"segment {path} is corrupt at byte {position}: {reason}")
        self.path = str(path)
        self.position = position
        self.reason = reason


__all__ = ["HEAD", "HEADER_SIZE", "MIN_LENGTH", "Checksums", "CorruptSegment"]
