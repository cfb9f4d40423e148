"""The native core's Python face: sharded record queues and wire helpers.

Layout (one package, one shared library):

- ``_lib``: loads ``libshardq.so`` with ctypes, checks its ABI version, picks
  the backend (``native=`` argument or ``EVENTSTREAM_NATIVE``).
- ``shardq``: :class:`ShardQueue`, the native queue; ``_pure``:
  :class:`PureShardQueue`, the pure-Python fallback with the same behaviour.
- ``wire``: frame parsing, topic checks and matching, CRC32C, the partition
  hash and protobuf walking (:class:`NativeWire`); ``_pure_wire``: the plain
  Python reference (:class:`PureWire`).
- ``numa``: NUMA discovery and thread pinning.
- ``errors``: the exceptions; return codes become them in one place.

The fallback is never chosen silently: without libshardq, :func:`open_queue`
and :func:`wire_backend` raise :class:`NativeLibraryError` unless
``native=False`` is passed or ``EVENTSTREAM_NATIVE=0`` is set.
"""

from __future__ import annotations

import os

from ._common import QueueStats, encode_records, iter_records
from ._lib import ABI_VERSION, library_path, use_native
from ._pure import PureShardQueue
from ._pure_wire import PureWire
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
from .numa import NumaNode, discover, pin_thread
from .shardq import ShardQueue, alloc_buffer
from .wire import EVENT_FIELDS, FRAME_FIELDS, EventBatch, EventSpans, Frame, FrameBatch, FrameReason, NativeWire


def open_queue(
    *,
    capacity_records: int,
    capacity_bytes: int,
    shards: int = 1,
    max_record: int = 0,
    numa: bool = False,
    sysfs_root: str | os.PathLike[str] | None = None,
    native: bool | None = None,
) -> ShardQueue | PureShardQueue:
    """Make a queue with the chosen backend.

    Args:
        capacity_records: records the whole queue holds.
        capacity_bytes: bytes the whole queue holds, record headers included.
        shards: number of shards.
        max_record: largest record in bytes; 0 means whatever fits a shard.
        numa: place shards on NUMA nodes (native only; best effort).
        sysfs_root: sysfs root for NUMA discovery.
        native: True for libshardq, False for the pure-Python fallback, None to
            follow ``EVENTSTREAM_NATIVE`` (default native).

    Raises:
        NativeLibraryError: native chosen and libshardq missing or mismatched.
    """
    cls = ShardQueue if use_native(native) else PureShardQueue
    return cls(capacity_records=capacity_records, capacity_bytes=capacity_bytes, shards=shards,
               max_record=max_record, numa=numa, sysfs_root=sysfs_root)


def wire_backend(native: bool | None = None) -> NativeWire | PureWire:
    """The wire helpers of the chosen backend (see :func:`open_queue` for ``native``)."""
    return NativeWire() if use_native(native) else PureWire()


__all__ = [
    "ABI_VERSION",
    "EVENT_FIELDS",
    "FRAME_FIELDS",
    "BufferTooSmall",
    "EventBatch",
    "EventSpans",
    "Frame",
    "FrameBatch",
    "FrameReason",
    "InvalidArgument",
    "InvalidPattern",
    "MalformedInput",
    "NativeError",
    "NativeLibraryError",
    "NativeWire",
    "NotUtf8",
    "NumaNode",
    "NumaNodeNotFound",
    "PureShardQueue",
    "PureWire",
    "QueueClosed",
    "QueueEmpty",
    "QueueFull",
    "QueueStats",
    "RecordTooLarge",
    "ShardQueue",
    "discover",
    "encode_records",
    "iter_records",
    "library_path",
    "alloc_buffer",
    "open_queue",
    "pin_thread",
    "use_native",
    "wire_backend",
]
