"""The Raft hard state (term, vote, commit) in a small file of its own.

Pure apart from the two functions that read and write the file. The file is
replaced whole through :meth:`.fileops.FileOps.write_file` (a temporary
beside it, fdatasync, rename, directory sync), so a crash leaves the old
state or the new one, and a CRC32C refuses one damaged on disk.

Format, little-endian, 29 to 284 bytes::

    4s  magic "ESHS"
    u32 version (1)
    u64 term
    u64 commit   highest index known committed
    u8  length of the vote, then the vote: the node id voted for in
        ``term`` (UTF-8, at most 255 bytes; empty for none)
    u32 crc32c   of every byte before it

Ordering (for the Raft shell): the entries a hard state's ``commit`` covers
must be durable in the log before the hard state is written: the log's
start-up checks refuse a log that ends before the recorded commit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from .fileops import FileOps
from .segment import Checksums

HARD_STATE_FILE = "hard-state"
MAGIC = b"ESHS"
VERSION = 1
_LAYOUT = struct.Struct("<4sIQQB")
_CRC = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class HardState:
    """What a Raft node must never forget across restarts."""

    term: int = 0
    """The latest term this node has seen."""
    vote: str = ""
    """The node voted for in :attr:`term` ("": none)."""
    commit: int = 0
    """The highest entry index known to be committed."""


class HardStateRefused(Exception):
    """The hard-state file is damaged or of an unknown version; the message names it."""


def encode(state: HardState, checksums: Checksums) -> bytes:
    """The file's bytes for ``state``."""
    vote = state.vote.encode()
    if len(vote) > 255:
        raise ValueError(f"a vote for a node id of {len(vote)} bytes (at most 255)")
    body = _LAYOUT.pack(MAGIC, VERSION, state.term, state.commit, len(vote)) + vote
    return body + _CRC.pack(checksums.crc32c(body))


def decode(data: bytes, checksums: Checksums, path: Path | str = HARD_STATE_FILE) -> HardState:
    """Parse the file's bytes.

    Raises:
        HardStateRefused: wrong size, magic, version or CRC.
    """
    if len(data) < _LAYOUT.size + _CRC.size:
        raise HardStateRefused(f"{path}: {len(data)} bytes, not a hard-state file")
    magic, version, term, commit, vote_len = _LAYOUT.unpack_from(data)
    if magic != MAGIC:
        raise HardStateRefused(f"{path}: not a hard-state file")
    end = _LAYOUT.size + vote_len
    if len(data) != end + _CRC.size:
        raise HardStateRefused(f"{path}: {len(data)} bytes, not a hard-state file")
    if _CRC.unpack_from(data, end)[0] != checksums.crc32c(data[:end]):
        raise HardStateRefused(f"{path}: CRC32C mismatch: the file is damaged")
    if version != VERSION:
        raise HardStateRefused(f"{path}: hard-state version {version}; this server reads "
                               f"version {VERSION}")
    try:
        vote = data[_LAYOUT.size:end].decode()
    except UnicodeDecodeError:
        raise HardStateRefused(f"{path}: the vote is not UTF-8: the file is damaged") from None
    return HardState(term, vote, commit)


def load(path: Path, checksums: Checksums) -> HardState:
    """The saved hard state, or the initial one when there is no file.

    Raises:
        HardStateRefused: the file is damaged.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return HardState()
    return decode(data, checksums, path)


def save(ops: FileOps, path: Path, state: HardState, checksums: Checksums) -> None:
    """Replace the file with ``state``, durably (raises :class:`OSError` as ``ops`` does)."""
    ops.write_file(path, encode(state, checksums), sync=True)


__all__ = ["HARD_STATE_FILE", "HardState", "HardStateRefused", "decode", "encode", "load", "save"]
