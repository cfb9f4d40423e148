"""Protobuf varints and length-delimited fields, for framing by concatenation.

Pure. Records and acknowledgements are encoded by the event encoder
(:mod:`..native.events`); the RPC and ingest layers only wrap them in their
response messages (a length varint before each) or cut them apart again.
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


def field_spans(encoded: bytes) -> list[tuple[int, int, int]]:
    """(start, value start, end) of each length-delimited field in ``encoded``.

    ``encoded`` must be fields with one-byte tags, all length-delimited, as
    the encoder writes them (concatenated PublishResults, or each wrapped in a
    response's results field).
    """
    spans, pos = [], 0
    while pos < len(encoded):
        start = pos
        pos += 1  # the tag byte
        length = shift = 0
        while True:
            byte = encoded[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        spans.append((start, pos, pos + length))
        pos += length
    return spans
