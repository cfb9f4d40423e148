"""Protobuf wire-format encoders for the fields the server adds to events.

Pure. Stored events are encoded ``eventstream.v1.Event`` messages; the server
appends its own fields (id when generated, ingest_time, partition, offset) to
the producer's bytes instead of re-encoding the message. Protobuf readers take
the last value of a repeated scalar field, and the producer's copies of these
fields are cleared before encoding, so the appended values are the ones read.
"""

from __future__ import annotations

# Field numbers of eventstream.v1.Event set by the server (see common.proto).
ID_TAG = b"\x0a"           # field 1, length-delimited
INGEST_TIME_TAG = b"\x42"  # field 8, length-delimited (google.protobuf.Timestamp)
PARTITION_TAG = b"\x48"    # field 9, varint
OFFSET_TAG = b"\x50"       # field 10, varint
# Field 1 (repeated Event events) of SubscribeResponse: the delivery framing.
DELIVERY_TAG = b"\x0a"

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


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    """Encode a length-delimited field: tag, length, payload."""
    return tag + varint(len(payload)) + payload


def timestamp_field(tag: bytes, time_ns: int) -> bytes:
    """Encode a google.protobuf.Timestamp field for ``time_ns`` since the epoch."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    body = b"\x08" + varint(seconds) + (b"\x10" + varint(nanos) if nanos else b"")
    return length_delimited(tag, body)


# Fields of eventstream.v1.PublishAck, encoded by the write path so that
# acknowledgements travel as bytes (see publish.proto).
ACK_ID_TAG = b"\x0a"           # 1 id
ACK_PARTITION_TAG = b"\x10"    # 2 partition
ACK_OFFSET_TAG = b"\x18"       # 3 offset
ACK_DUPLICATE = b"\x20\x01"    # 4 duplicate = true
ACK_DURABILITY_TAG = b"\x28"   # 5 durability
ACK_INGEST_TIME_TAG = b"\x32"  # 6 ingest_time


def ack_tail(durability: int, ingest_time_ns: int) -> bytes:
    """Encode the durability and ingest_time fields that end every PublishAck."""
    return (ACK_DURABILITY_TAG + varint(durability)
            + timestamp_field(ACK_INGEST_TIME_TAG, ingest_time_ns))


def encode_ack(event_id: bytes, partition: int, offset: int, duplicate: bool,
               tail: bytes) -> bytes:
    """Encode a PublishAck; ``tail`` comes from :func:`ack_tail`."""
    return b"".join((ACK_ID_TAG, varint(len(event_id)), event_id, ACK_PARTITION_TAG,
                     varint(partition), ACK_OFFSET_TAG, varint(offset),
                     ACK_DUPLICATE if duplicate else b"", tail))
