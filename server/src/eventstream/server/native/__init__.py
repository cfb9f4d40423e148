"""The native core's Python face: the only package that talks to libshardq.

Layout (one package, one shared library, loaded with ctypes):

- ``_lib``: loads ``libshardq.so``, declares every function's types and
  checks its ABI version; the C structs live here.
- ``events``: :class:`EventEncoder` *accepts* publish requests and raw frames
  (validates and copies events, :class:`Accepted`) and *places* them
  (partition, offset, log records and acknowledgements, :class:`PlacedRecords`).
- ``shardq``: :class:`ShardQueue`, the sharded MPMC record queue;
  ``udp_receiver``: the thread that moves datagrams into one.
- ``dedup``: :class:`DedupTable`, the node's table of recent producer ids
  (the de-duplication window and the ids of rounds in flight).
- ``wire``: frame parsing, topic checks and matching, CRC32C, the partition
  hash, protobuf walking, segment and entry encoding (:class:`NativeWire`).
- ``numa``: NUMA discovery and thread pinning.
- ``errors``: the exceptions; return codes become them in one place.

Results are typed objects with methods; the C row layouts stay inside this
package. There is no fallback: without libshardq (built by ``make install``)
the server refuses to start with :class:`NativeLibraryError`.
"""

from __future__ import annotations

from ._common import QueueStats, encode_records, iter_records
from ._lib import ABI_VERSION, library_path
from .dedup import DedupCheck, DedupTable
from .errors import (
    BufferTooSmall,
    InvalidArgument,
    InvalidPattern,
    MalformedInput,
    NativeError,
    NativeLibraryError,
    NotUtf8,
    NumaNodeNotFound,
    QueueClosed,
    QueueEmpty,
    QueueFull,
    RecordTooLarge,
)
from .events import (
    ACCEPTED_EVENT_BYTES,
    Accepted,
    AcceptedEvents,
    EventEncoder,
    Limits,
    PlacedRecords,
    RecordArena,
    Refusal,
    Refused,
)
from .numa import NumaNode, discover, pin_thread
from .shardq import ShardQueue, alloc_buffer
from .udp_receiver import MAX_DATAGRAM, ReceiverStats, UdpReceiver, start_receiver
from .wire import (
    EntryScan,
    EventBatch,
    EventSpans,
    Frame,
    FrameBatch,
    FrameReason,
    NativeWire,
    SegmentProgress,
)

__all__ = [
    "ABI_VERSION",
    "ACCEPTED_EVENT_BYTES",
    "MAX_DATAGRAM",
    "Accepted",
    "AcceptedEvents",
    "BufferTooSmall",
    "DedupCheck",
    "DedupTable",
    "EntryScan",
    "EventBatch",
    "EventEncoder",
    "EventSpans",
    "Frame",
    "FrameBatch",
    "FrameReason",
    "InvalidArgument",
    "InvalidPattern",
    "Limits",
    "MalformedInput",
    "NativeError",
    "NativeLibraryError",
    "NativeWire",
    "NotUtf8",
    "NumaNode",
    "NumaNodeNotFound",
    "PlacedRecords",
    "QueueClosed",
    "QueueEmpty",
    "QueueFull",
    "QueueStats",
    "ReceiverStats",
    "RecordArena",
    "RecordTooLarge",
    "Refusal",
    "Refused",
    "SegmentProgress",
    "ShardQueue",
    "UdpReceiver",
    "alloc_buffer",
    "discover",
    "encode_records",
    "iter_records",
    "library_path",
    "pin_thread",
    "start_receiver",
]
