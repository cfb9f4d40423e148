"""Byte layouts of the TCP ingest protocol beyond the frame itself.

Pure. All integers are big-endian. docs/ingest.md documents the same
layouts for client authors.

Client to server:

- Acknowledged-mode handshake: the 4 bytes ``ESA1`` first on the connection.
  Read as a frame length they are 0x45534131 (over 1.1 G), above the largest
  allowed ``ingest.max_frame_bytes`` (2**30), so no valid frame starts this way.
- Acknowledged-mode handshake with a bearer token: ``ESA2`` · ``u16 token_len``
  · token (UTF-8, 1 to :data:`MAX_TOKEN_BYTES` bytes). ``ESA1`` is ``ESA2``
  without a token.
- Acknowledged-mode batch: ``u32 batch_len`` · ``batch_len`` bytes of whole frames.

Server to client (every message): ``u32 length`` (of what follows) · ``u8 kind`` · body.

- ``kind 1`` ACK: ``u64 batch_sequence`` · ``u32 count`` · ``count`` ×
  (``u32 partition`` · ``u64 offset``), one entry per frame in batch order.
- ``kind 2`` ERROR: ``u64 position`` · ``u8 reason_len`` · reason (ASCII,
  e.g. ``TOPIC_NOT_UTF8``) · message (UTF-8, the rest). ``position`` is the
  batch sequence in acknowledged mode, else the number of frames accepted on
  the connection before the error. The server closes the connection after it.
"""

from __future__ import annotations

import struct

HANDSHAKE_ACKED = b"ESA1"
"""First 4 bytes of a connection that wants acknowledgements."""
HANDSHAKE_ACKED_TOKEN = b"ESA2"
"""First 4 bytes of a connection that wants acknowledgements and sends a token."""
MAX_TOKEN_BYTES = 4096
"""Longest token the ``ESA2`` handshake may carry."""
KIND_ACK = 1
KIND_ERROR = 2

_BATCH_HEADER = struct.Struct(">I")
_ACK_HEAD = struct.Struct(">IBQI")
_ERROR_HEAD = struct.Struct(">IBQB")
_ACK_ENTRY_BYTES = 12


def batch_length(header: bytes | memoryview) -> int:
    """The length of an acknowledged-mode batch from its 4-byte header."""
    length: int = _BATCH_HEADER.unpack(header)[0]
    return length


def encode_ack(sequence: int, positions: list[int]) -> bytes:
    """An ACK message for batch ``sequence``.

    ``positions`` holds partition, offset, partition, offset, ... one pair per frame, in frame order.
    """
    return encode_ack_of(sequence, encode_positions(positions))


def encode_positions(positions: list[int]) -> bytes:
    """The entries of an ACK message: ``positions`` (partition, offset, ...) laid out as it carries them."""
    return struct.pack(f">{'IQ' * (len(positions) // 2)}", *positions)


def encode_ack_of(sequence: int, entries: bytes) -> bytes:
    """An ACK message for batch ``sequence`` around entries from :func:`encode_positions`."""
    count = len(entries) // _ACK_ENTRY_BYTES
    return _ACK_HEAD.pack(1 + 8 + 4 + len(entries), KIND_ACK, sequence, count) + entries


def encode_error(position: int, reason: str, message: str) -> bytes:
    """An ERROR message; see the module docstring for ``position``."""
    reason_bytes = reason.encode("ascii")
    text = message.encode()
    return (_ERROR_HEAD.pack(1 + 8 + 1 + len(reason_bytes) + len(text), KIND_ERROR, position,
                             len(reason_bytes)) + reason_bytes + text)


def token_length(header: bytes | memoryview) -> int:
    """The token length of an ``ESA2`` handshake from its 2 bytes after the magic."""
    return int.from_bytes(header[:2], "big")


__all__ = [
    "HANDSHAKE_ACKED",
    "HANDSHAKE_ACKED_TOKEN",
    "KIND_ACK",
    "KIND_ERROR",
    "MAX_TOKEN_BYTES",
    "batch_length",
    "encode_ack",
    "encode_ack_of",
    "encode_error",
    "encode_positions",
    "token_length",
]
