"""Loading libshardq with ctypes: declared signatures and the ABI check.

The only module that touches the shared library. It finds the library (the
``EVENTSTREAM_NATIVE_LIB`` environment variable, else ``libshardq.so`` next to
this file, copied there by ``make -C server/native/libshardq install``),
checks its ABI version, and declares every function's argument and result
types once. Failures raise :class:`NativeLibraryError` naming the path: the
server has no other backend (``make install`` builds the library).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from ctypes import (
    POINTER,
    c_char_p,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path

from .errors import NativeLibraryError

ABI_VERSION = 6
"""The libshardq ABI this package is written for (``SHARDQ_ABI_VERSION``)."""

ENV_LIBRARY = "EVENTSTREAM_NATIVE_LIB"
"""Environment variable holding an explicit path to libshardq."""

DEFAULT_LIBRARY = Path(__file__).with_name("libshardq.so")

SHARD_ANY = 0xFFFFFFFF
PUSH_ALL_OR_NOTHING = 1
OPT_NUMA = 1
FRAME_FINAL = 1
FEATURE_CRC32C_HW = 1
CRC_FILL = 1


class Options(ctypes.Structure):
    """``struct shardq_options``."""

    _fields_ = [
        ("size", c_uint32),
        ("shards", c_uint32),
        ("capacity_records", ctypes.c_uint64),
        ("capacity_bytes", ctypes.c_uint64),
        ("max_record", c_uint32),
        ("flags", c_uint32),
        ("sysfs_root", c_char_p),
    ]


class Stats(ctypes.Structure):
    """``struct shardq_stats``."""

    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "size", "shards", "depth", "depth_bytes", "capacity_records", "capacity_bytes",
            "pushes", "pops", "full_rejections", "too_large_rejections", "wakeups",
        )
    ] + [("numa_node", ctypes.c_int64), ("numa_errno", ctypes.c_int64)]


class Frame(ctypes.Structure):
    """``struct shardq_frame``: ten u32 fields."""

    _fields_ = [
        (name, c_uint32)
        for name in (
            "offset", "length", "reason", "priority", "topic_off", "topic_len",
            "payload_off", "payload_len", "hash", "reserved",
        )
    ]


class EventSpans(ctypes.Structure):
    """``struct shardq_event_spans``."""

    _fields_ = [
        (name, c_uint32)
        for name in (
            "id_off", "id_len", "topic_off", "topic_len", "key_off", "key_len",
            "payload_off", "payload_len", "event_off", "event_len", "hash", "reserved",
        )
    ] + [("priority", ctypes.c_int64), ("seen", ctypes.c_uint64)]


class AcceptLimits(ctypes.Structure):
    """``struct shardq_accept_limits``."""

    _fields_ = [(name, c_uint32) for name in (
        "size", "max_topic", "max_payload", "max_id", "max_key", "max_headers", "max_event")]


ID_PREFIX_MAX = 32


class StageArgs(ctypes.Structure):
    """``struct shardq_stage_args``."""

    _fields_ = [
        ("size", c_uint32), ("partitions", c_uint32), ("time_ns", ctypes.c_int64),
        ("durability", c_uint32), ("result_tag", c_uint32), ("id_counter", ctypes.c_uint64),
        ("id_prefix_len", c_uint32), ("id_prefix", ctypes.c_uint8 * ID_PREFIX_MAX),
        ("flags", c_uint32),
    ]


RECORDS_STORED = 1
"""``SHARDQ_RECORDS_STORED``: records staged (and handed to the entry encoder)
as sealed segment records."""


class Staged(ctypes.Structure):
    """``struct shardq_staged``."""

    _fields_ = [
        ("size", c_uint32), ("reserved", c_uint32),
        ("records", c_void_p), ("records_cap", c_size_t), ("records_len", c_size_t),
        ("record_ends", c_void_p), ("record_topics", c_void_p),
        ("record_priorities", c_void_p), ("part_counts", c_void_p),
        ("record_count", c_size_t), ("row_positions", c_void_p),
        ("results", c_void_p), ("results_cap", c_size_t), ("results_len", c_size_t),
    ]


class UdpOptions(ctypes.Structure):
    """``struct shardq_udp_options``."""

    _fields_ = [("size", c_uint32), ("fd", c_int32), ("shard", c_uint32), ("batch", c_uint32),
                ("max_datagram", c_uint32), ("numa_node", c_int32), ("n_networks", c_uint32),
                ("networks", c_void_p)]


UDP_NETWORK_BYTES = 18
"""``SHARDQ_UDP_NETWORK_BYTES``: family, prefix length, 16 address bytes."""


class UdpStats(ctypes.Structure):
    """``struct shardq_udp_stats``."""

    _fields_ = [(name, ctypes.c_uint64) for name in (
        "size", "datagrams", "bytes", "queue_full", "truncated", "errors")] + [
        ("last_errno", ctypes.c_int64), ("source_refused", ctypes.c_uint64)]


class SegmentArgs(ctypes.Structure):
    """``struct shardq_segment_args``."""

    _fields_ = [
        ("size", c_uint32), ("index_interval", c_uint32),
        ("records", c_void_p), ("records_len", c_size_t), ("records_start", c_size_t),
        ("record_ends", c_void_p), ("topic_data", c_void_p), ("topic_data_len", c_size_t),
        ("record_topics", c_void_p), ("record_priorities", c_void_p),
        ("record_count", c_size_t), ("next_record", c_size_t), ("time_ns", ctypes.c_int64),
        ("base", ctypes.c_uint64), ("next_offset", ctypes.c_uint64),
        ("position", ctypes.c_uint64), ("last_position", ctypes.c_uint64),
        ("sample_at", ctypes.c_uint64), ("roll_at", ctypes.c_uint64),
        ("out", c_void_p), ("out_cap", c_size_t), ("out_len", c_size_t),
        ("index", c_void_p), ("index_cap", c_size_t), ("index_len", c_size_t),
    ]


class SelectArgs(ctypes.Structure):
    """``struct shardq_select_args``."""

    _fields_ = [
        ("size", c_uint32), ("skip", c_uint32), ("limit", c_uint32), ("min_priority", c_uint32),
        ("match_all", c_uint32), ("n_patterns", c_uint32),
        ("patterns", c_void_p), ("patterns_len", c_size_t),
        ("budget", ctypes.c_uint64), ("held", ctypes.c_uint64), ("held_any", c_uint32),
        ("examined", c_uint32), ("matched", c_uint32), ("full", c_uint32),
        ("out_len", ctypes.c_uint64), ("end", ctypes.c_uint64),
    ]


SEGMENT_HEADER = 27
"""``SHARDQ_SEGMENT_HEADER``: bytes of a segment record's header."""


class EntrySource(ctypes.Structure):
    """``struct shardq_entry_source``."""

    _fields_ = [
        ("records", c_void_p), ("records_len", c_size_t), ("record_ends", c_void_p),
        ("record_topics", c_void_p), ("record_priorities", c_void_p),
        ("part_counts", c_void_p), ("record_count", c_size_t), ("flags", c_uint32),
    ]


class EntryArgs(ctypes.Structure):
    """``struct shardq_entry_args``."""

    _fields_ = [
        ("size", c_uint32), ("partitions", c_uint32), ("index", ctypes.c_uint64),
        ("term", ctypes.c_uint64), ("time_ns", ctypes.c_int64), ("sources", c_void_p),
        ("source_count", c_size_t), ("next_offsets", c_void_p), ("out", c_void_p),
        ("out_cap", c_size_t), ("out_len", c_size_t), ("blocks", c_void_p),
        ("blocks_cap", c_size_t), ("block_count", c_size_t),
    ]


ENTRY_BLOCK_FIELDS = 6
"""``SHARDQ_ENTRY_BLOCK_FIELDS``: int64 values per block row of ``shardq_entry_encode``."""
ENTRY_ID_FIELDS = 4
"""``SHARDQ_ENTRY_ID_FIELDS``: int64 values per id row of ``shardq_entry_scan``."""


_SIZE_P = POINTER(c_size_t)

# name: (restype, argtypes). Pointers to caller memory are c_void_p so that
# bytes objects and raw addresses both pass without conversion.
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "shardq_abi_version": (c_uint32, []),
    "shardq_features": (c_uint32, []),
    "shardq_create": (c_int, [POINTER(Options), POINTER(c_void_p)]),
    "shardq_destroy": (None, [c_void_p]),
    "shardq_push_batch": (c_int, [c_void_p, c_uint32, c_void_p, c_size_t, c_uint32, _SIZE_P]),
    "shardq_pop_batch": (c_int, [c_void_p, c_uint32, c_size_t, c_void_p, c_size_t, _SIZE_P, _SIZE_P]),
    "shardq_stats": (c_int, [c_void_p, c_uint32, POINTER(Stats)]),
    "shardq_eventfd": (c_int, [c_void_p, POINTER(c_int32)]),
    "shardq_sleep_prepare": (c_int, [c_void_p]),
    "shardq_wakeup_clear": (c_int, [c_void_p]),
    "shardq_wait": (c_int, [c_void_p, c_int32]),
    "shardq_close": (c_int, [c_void_p]),
    "shardq_frame_parse": (
        c_int, [c_void_p, c_size_t, c_uint32, c_uint32, c_void_p, c_size_t, _SIZE_P, _SIZE_P]),
    "shardq_topic_check": (c_uint32, [c_void_p, c_size_t]),
    "shardq_topic_match": (c_int, [c_void_p, c_size_t, c_void_p, c_size_t]),
    "shardq_topic_match_batch": (
        c_int, [c_void_p, c_size_t, c_void_p, c_void_p, c_size_t, POINTER(c_uint8)]),
    "shardq_pb_fields": (c_int, [c_void_p, c_size_t, c_uint32, c_void_p, c_size_t, _SIZE_P]),
    "shardq_pb_events": (c_int, [c_void_p, c_size_t, c_uint32, c_void_p, c_size_t, _SIZE_P]),
    "shardq_pb_event": (c_int, [c_void_p, c_size_t, POINTER(EventSpans)]),
    "shardq_pb_accept": (c_int, [c_void_p, c_size_t, c_uint32, c_uint32, POINTER(AcceptLimits),
                                 c_void_p, c_size_t, _SIZE_P, c_void_p, c_size_t, _SIZE_P,
                                 c_void_p, c_void_p]),
    "shardq_frames_accept": (c_int, [c_void_p, c_size_t, c_uint32, c_uint32, POINTER(AcceptLimits),
                                     c_void_p, c_size_t, _SIZE_P, c_void_p, c_size_t, _SIZE_P,
                                     c_void_p, _SIZE_P, POINTER(c_uint32)]),
    "shardq_stage": (c_int, [POINTER(StageArgs), c_void_p, c_size_t, c_void_p, c_size_t,
                             c_void_p, c_void_p, POINTER(Staged)]),
    "shardq_crc32c": (c_uint32, [c_uint32, c_void_p, c_size_t]),
    "shardq_crc32c_records": (c_int, [c_void_p, c_size_t, c_size_t, c_uint32, _SIZE_P]),
    "shardq_segment_encode": (c_int, [POINTER(SegmentArgs)]),
    "shardq_entry_encode": (c_int, [POINTER(EntryArgs)]),
    "shardq_entry_scan": (c_int, [c_void_p, c_size_t, c_uint32, c_void_p, c_size_t, _SIZE_P,
                                  c_void_p, c_size_t, _SIZE_P]),
    "shardq_entry_check": (c_int, [c_void_p, c_size_t, c_uint32, c_void_p, c_size_t, _SIZE_P,
                                   c_void_p, c_size_t, _SIZE_P]),
    "shardq_records_select": (c_int, [c_void_p, c_size_t, POINTER(SelectArgs), c_void_p, c_size_t]),
    "shardq_hash": (c_uint32, [c_void_p, c_size_t, c_void_p, c_size_t]),
    "shardq_numa_nodes": (c_int, [c_char_p, POINTER(c_int32), c_size_t, _SIZE_P]),
    "shardq_numa_node_cpus": (c_int, [c_char_p, c_int32, POINTER(c_int32), c_size_t, _SIZE_P]),
    "shardq_numa_pin_thread": (c_int, [c_char_p, c_int32]),
    "shardq_udp_start": (c_int, [POINTER(UdpOptions), c_void_p, POINTER(c_void_p)]),
    "shardq_udp_stats": (c_int, [c_void_p, POINTER(UdpStats)]),
    "shardq_udp_stop": (None, [c_void_p, POINTER(UdpStats)]),
    "shardq_dedup_create": (c_int, [c_int64, c_uint64, POINTER(c_void_p)]),
    "shardq_dedup_destroy": (None, [c_void_p]),
    "shardq_dedup_counts": (c_int, [c_void_p, c_void_p]),
    "shardq_dedup_lookup": (c_int, [c_void_p, c_void_p, c_size_t, c_int64, c_void_p]),
    "shardq_dedup_check": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, c_int64,
                                   c_void_p, c_void_p]),
    "shardq_dedup_hold": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, c_void_p,
                                  c_void_p, c_int64, c_uint64]),
    "shardq_dedup_hold_ids": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, c_int64,
                                      c_uint64]),
    "shardq_dedup_release": (c_int, [c_void_p, c_uint64, c_uint64]),
    "shardq_dedup_promote": (c_int, [c_void_p, c_uint64, c_int64]),
    "shardq_dedup_remember": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, c_int64]),
    "shardq_dedup_expire": (c_int, [c_void_p, c_int64]),
    "shardq_dedup_encode": (c_int, [c_void_p, c_void_p, c_size_t, _SIZE_P]),
    "shardq_dedup_restore": (c_int, [c_void_p, c_void_p, c_size_t]),
}

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL] = {}


def unchecked(lib: ctypes.CDLL, name: str) -> Callable[..., int]:
    """A second entry point to ``name`` without declared argument types.

    Declared ``argtypes`` cost ctypes a conversion per argument on every call
    (about 200 ns each here), more than the work of a 64-record batch. The hot
    batch calls use this entry point instead and pass ready-made ctypes values:
    a ``c_void_p`` handle, ``c_size_t`` lengths, ``bytes`` or ctypes arrays for
    buffers, ``byref`` out-parameters, and Python ints only for 32-bit
    parameters. Its result type is ``int`` (the C ``int``).
    """
    fn = type(getattr(lib, name))((name, lib))
    fn.restype = c_int
    call: Callable[..., int] = fn
    return call


def library_path() -> Path:
    """The path the library is loaded from: ``$EVENTSTREAM_NATIVE_LIB`` or the package copy."""
    override = os.environ.get(ENV_LIBRARY)
    return Path(override) if override else DEFAULT_LIBRARY


def load(path: str | os.PathLike[str] | None = None) -> ctypes.CDLL:
    """Load libshardq once per path, declare its functions and check its ABI version.

    Args:
        path: library to load; default :func:`library_path`.

    Returns:
        The loaded library (ctypes releases the GIL during its calls).

    Raises:
        NativeLibraryError: the file is missing, cannot be loaded, lacks a
            function, or reports a different ABI version. The message names the
            path and how to fix it.
    """
    where = Path(path) if path is not None else library_path()
    key = str(where)
    with _lock:
        lib = _loaded.get(key)
        if lib is None:
            lib = _open(where)
            _loaded[key] = lib
    return lib


def _open(where: Path) -> ctypes.CDLL:
    hint = (
        "build it with `make install` (or `make -C server/native/libshardq install`), "
        f"or point {ENV_LIBRARY} at a built copy"
    )
    if not where.is_file():
        raise NativeLibraryError(f"native library not found at {where}: {hint}")
    try:
        lib = ctypes.CDLL(str(where))
    except OSError as exc:
        raise NativeLibraryError(f"cannot load native library {where}: {exc}; {hint}") from exc
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as exc:
            raise NativeLibraryError(
                f"native library {where} lacks {name}: it is not libshardq ABI {ABI_VERSION}; {hint}"
            ) from exc
        fn.restype = restype
        fn.argtypes = argtypes
    found = lib.shardq_abi_version()
    if found != ABI_VERSION:
        raise NativeLibraryError(
            f"native library {where} has ABI version {found}, this package needs "
            f"{ABI_VERSION}: rebuild it ({hint})"
        )
    return lib


class _PyBuffer(ctypes.Structure):
    """CPython's ``Py_buffer`` (stable layout since 3.3)."""

    _fields_ = [
        ("buf", c_void_p),
        ("obj", ctypes.py_object),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", c_int),
        ("ndim", c_int),
        ("format", c_char_p),
        ("shape", c_void_p),
        ("strides", c_void_p),
        ("suboffsets", c_void_p),
        ("internal", c_void_p),
    ]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, POINTER(_PyBuffer), c_int]
_get_buffer.restype = c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [POINTER(_PyBuffer)]
_release_buffer.restype = None
_PYBUF_SIMPLE = 0
_PYBUF_WRITABLE = 1


def address_of(data: bytes) -> int | None:
    """Address of a bytes object's contents (no copy; valid while it lives)."""
    return ctypes.cast(c_char_p(data), c_void_p).value


class Borrowed:
    """The address and length of any contiguous buffer, held until :meth:`release`.

    ``bytes`` pass as themselves (ctypes gives C their address, no copy);
    every other buffer (bytearray, memoryview, array, mmap) is borrowed
    through the buffer protocol, so it cannot be resized while C reads or
    writes it.
    """

    __slots__ = ("_view", "length", "ptr")

    def __init__(self, obj: object, writable: bool = False) -> None:
        if type(obj) is bytes and not writable:
            self.ptr: object = obj
            self.length = len(obj)
            self._view: _PyBuffer | None = None
            return
        view = _PyBuffer()
        _get_buffer(obj, view, _PYBUF_WRITABLE if writable else _PYBUF_SIMPLE)
        self._view = view
        self.ptr = c_void_p(view.buf)  # an object: a bare int would pass as a 32-bit C int
        self.length = view.len

    @property
    def address(self) -> int | None:
        """The buffer's address as an int (for a struct field; None for an empty one)."""
        if isinstance(self.ptr, c_void_p):
            return self.ptr.value
        assert isinstance(self.ptr, bytes)
        return address_of(self.ptr)

    def release(self) -> None:
        """Give the buffer back (idempotent)."""
        if self._view is not None:
            _release_buffer(self._view)
            self._view = None
