"""Byte layouts of the TCP ingest protocol beyond the frame itself.

Pure. All integers are big-endian. The README's "Raw TCP and UDP ingest"
section documents the same layouts for client authors.

Client to server:

- Acknowledged-mode handshake: the 4 bytes ``ESA1`` first on the connection.
  Read as a frame length they are 0x45534131 (over 1.1 G), above the largest
  allowed ``ingest.max_frame_bytes`` (2**30), so no valid frame starts this way.
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
KIND_ACK = 1
KIND_ERROR = 2

_BATCH_HEADER = struct.Struct(">I")
_ACK_HEAD = struct.Struct(">IBQI")
_ENTRY = struct.Struct(">IQ")
_ERROR_HEAD = struct.Struct(">IBQB")


def batch_length(header: bytes) -> int:
    """The length of an acknowledged-mode batch from its 4-byte header."""
    return _BATCH_HEADER.unpack(header)[0]


def encode_ack(sequence: int, positions: list[tuple[int, int]]) -> bytes:
    """An ACK message for batch ``sequence``: one (partition, offset) per frame."""
    body = b"".join([_ENTRY.pack(p, o) for p, o in positions])
    return _ACK_HEAD.pack(1 + 8 + 4 + len(body), KIND_ACK, sequence, len(positions)) + body


def encode_error(position: int, reason: str, message: str) -> bytes:
    """An ERROR message; see the module docstring for ``position``."""
    reason_bytes = reason.encode("ascii")
    text = message.encode()
    return (_ERROR_HEAD.pack(1 + 8 + 1 + len(reason_bytes) + len(text), KIND_ERROR, position,
                             len(reason_bytes)) + reason_bytes + text)


def ack_position(ack: bytes) -> tuple[int, int]:
    """(partition, offset) of an encoded ``eventstream.v1.PublishAck``.

    Walks the protobuf wire format for fields 2 (partition) and 3 (offset),
    skipping the others (they are varints or length-delimited).
    """
    partition = offset = 0
    pos, end = 0, len(ack)
    while pos < end:
        key, pos = _varint(ack, pos)
        if key & 7 == 2:
            size, pos = _varint(ack, pos)
            pos += size
            continue
        value, pos = _varint(ack, pos)
        if key == 0x10:
            partition = value
        elif key == 0x18:
            offset = value
    return partition, offset


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


__all__ = ["HANDSHAKE_ACKED", "KIND_ACK", "KIND_ERROR", "ack_position", "batch_length",
           "encode_ack", "encode_error"]
