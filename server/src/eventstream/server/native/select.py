"""A subscriber's records of a log block, selected by libshardq in one call.

A subscription filtered by topic or priority used to build a ``str`` and a
``bytes`` per record it skipped; :class:`RecordSelector` hands a whole block
to ``shardq_records_select``, which copies the framed events of the matching
records back to back into the caller's buffer: the delivery's bytes, with no
Python object per record.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Sequence
from ctypes import byref
from typing import NamedTuple

from . import _lib
from .errors import EBADMSG, ENOBUFS, InvalidPattern, raise_for

Buffer = bytes | bytearray | memoryview
_PATTERN_LENGTH = struct.Struct("<H")


class Selected(NamedTuple):
    """What one call took from a block."""

    examined: int
    """Records examined after those skipped (the reader's cursor moves on by this many)."""
    matched: int
    """Matching records whose framed events were written."""
    written: int
    """Bytes written."""
    full: bool
    """Stopped before a match that would take the delivery past its budget."""
    short: bool
    """Stopped before a match that does not fit the rest of ``out``."""
    damaged_at: int
    """-1, or where in the buffer a record's lengths run past the block or the record."""


class RecordSelector:
    """Which records a subscriber takes: a priority floor and topic patterns.

    Args:
        patterns: the subscription's patterns (already validated), or None for every topic.
        min_priority: lowest frame priority byte (0..4) taken.
        library: explicit libshardq path (default: see :func:`._lib.library_path`).

    Raises:
        InvalidPattern: a pattern the library refuses.
    """

    def __init__(self, patterns: Sequence[str] | None, min_priority: int,
                 library: str | os.PathLike[str] | None = None) -> None:
        self._lib = _lib.load(library)
        self._encoded = b"".join(_PATTERN_LENGTH.pack(len(data)) + data
                                 for data in (p.encode() for p in patterns or ()))
        args = self._args = _lib.SelectArgs()
        args.size = ctypes.sizeof(args)
        args.min_priority = min_priority
        args.match_all = patterns is None
        args.n_patterns = len(patterns or ())
        args.patterns = ctypes.cast(ctypes.c_char_p(self._encoded), ctypes.c_void_p)
        args.patterns_len = len(self._encoded)
        self.takes_all = patterns is None and min_priority == 0
        """Every record matches."""
        # Checked once here, so a bad pattern fails the subscription, not a read.
        self.select(b"", 0, 0, 0, 0, budget=0, held=0, out=bytearray(), at=0)

    def select(self, buf: Buffer, start: int, end: int, skip: int, limit: int, *, budget: int,
               held: int, out: bytearray, at: int) -> Selected:
        """Write the framed events of the matching records of ``buf[start:end]`` to ``out[at:]``.

        Args:
            buf: holds a block of segment records at ``buf[start:end]``.
            start: where the block starts.
            end: where it ends.
            skip: records to pass over first.
            limit: most records to examine after them.
            budget: most bytes a delivery holds; a match past it is left for the next.
            held: bytes the delivery holds already (0: the first match goes whatever its size).
            out: receives the events from ``at`` on; when the next match does not
                fit, the call stops before it (:attr:`Selected.short`).
            at: where in ``out`` to write.

        Raises:
            InvalidPattern: a pattern is not valid.
        """
        args = self._args
        args.skip = skip
        args.limit = limit
        args.budget = budget
        args.held = held
        args.held_any = held > 0
        src = _lib.Borrowed(buf)
        dst = _lib.Borrowed(out, writable=True)
        try:
            rc = self._lib.shardq_records_select(
                _at(src, start), end - start, byref(args), _at(dst, at), dst.length - at)
        finally:
            src.release()
            dst.release()
        if rc and rc not in (EBADMSG, ENOBUFS):
            raise_for(rc, "records_select", invalid=InvalidPattern)
        return Selected(args.examined, args.matched, args.out_len, bool(args.full), rc == ENOBUFS,
                        start + args.end if rc == EBADMSG else -1)


def _at(borrowed: _lib.Borrowed, offset: int) -> ctypes.c_void_p:
    """The address ``offset`` bytes into a borrowed buffer."""
    address = borrowed.address
    return ctypes.c_void_p((address or 0) + offset)


__all__ = ["RecordSelector", "Selected"]
