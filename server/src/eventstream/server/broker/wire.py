"""Protobuf varints for framing responses by concatenation.

Pure. Records and acknowledgements are encoded by the stager
(:mod:`..queue.staging`); the RPC layer only wraps them in their response
messages, which needs a length varint before each.
"""

from __future__ import annotations

_SMALL_VARINTS = [bytes([n]) for n in range(128)]


def varint(value: int) -> bytes:
    """Encode a non-negative integer as a protobuf varint."""
    if value < 128:
        return _SMALL_VARINTS[value]
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
