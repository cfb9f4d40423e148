"""Give the C heap that large bursts freed back to the operating system.

glibc's ``free`` returns memory to the kernel only from the top of a heap, so
what a burst left free in the middle (the buffers of many large requests
handled at once; before the tail cache kept whole batches, also its evicted
1 KiB records) stays resident: 80 MiB at the end of the peers benchmark then.
``malloc_trim(0)`` releases every free page. It holds the
allocator's locks (measured: 0.4 ms with nothing to release, 6 ms releasing
76 MiB), so the server runs it on a worker thread every few seconds, and only
while ``threshold`` bytes or more of the heap are free. Free bytes alone
cannot tell resident from already released pages, hence the fixed period.
Without glibc (``mallinfo2`` and ``malloc_trim`` missing) nothing is done.

How much a real burst leaves free depends on how its requests interleave, so
tests do not rely on one: with the test-only ``EVENTSTREAM_TEST_HEAP_HOLE_BYTES``
set, the trim task first leaves that many bytes free below a live chunk of
its own heap, and a test watches the real loop give them back.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
from collections.abc import Callable

from .tasks import cancel_and_wait

THRESHOLD_BYTES = 16 * 1024 * 1024
PERIOD_SECONDS = 5.0
HOLE_ENV = "EVENTSTREAM_TEST_HEAP_HOLE_BYTES"
"""Test-only: bytes of C heap to leave free, resident, below a live chunk (see the module docstring)."""
_HOLE_CHUNK = 64 * 1024  # below glibc's mmap threshold: taken from the heap itself
_PAGE = os.sysconf("SC_PAGE_SIZE")

log = logging.getLogger(__name__)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


class HeapTrimmer:
    """Decides when to trim, trims, and reports the resident bytes it gave back.

    Args:
        threshold: free heap (bytes) below which a trim is not worth its pause.
    """

    def __init__(self, threshold: int = THRESHOLD_BYTES) -> None:
        self.threshold = threshold
        self._libc = _glibc()

    @property
    def available(self) -> bool:
        """True on glibc, where trimming means something."""
        return self._libc is not None

    def free_bytes(self) -> int:
        """Bytes free inside the allocator's heaps (``mallinfo2().fordblks``); 0 without glibc."""
        return self._libc.mallinfo2().fordblks if self._libc is not None else 0

    def due(self) -> bool:
        """Whether at least ``threshold`` bytes of the heap are free."""
        return self.available and self.free_bytes() >= self.threshold

    def trim(self) -> int:
        """``malloc_trim(0)`` (blocking: call it on a worker thread); resident bytes released."""
        assert self._libc is not None
        before = _resident_bytes()
        self._libc.malloc_trim(0)
        return max(0, before - _resident_bytes())

    def leave_hole_if_asked(self) -> int:
        """With ``HOLE_ENV`` set, leave that many bytes of heap free (tests only).

        The bytes are made resident and freed below a chunk kept for good, as
        a burst of large requests does. Returns the bytes asked for (0: none).
        """
        size = int(os.environ.get(HOLE_ENV) or 0)
        if size <= 0 or self._libc is None:
            return 0
        malloc, free = self._libc.malloc, self._libc.free
        chunks = [malloc(_HOLE_CHUNK) for _ in range(max(1, size // _HOLE_CHUNK) + 1)]
        if not all(chunks):
            raise MemoryError(f"{HOLE_ENV}: cannot allocate {size} bytes")
        for chunk in chunks:
            ctypes.memset(chunk, 1, _HOLE_CHUNK)  # resident, like a request's buffer
        for chunk in chunks[:-1]:
            free(chunk)
        return size


class HeapTrimTask:
    """Every :data:`PERIOD_SECONDS`, trims the heap on a worker thread when it is due.

    Args:
        on_trimmed: called with the resident bytes each trim gave back.
        trimmer: the trimmer (default: one with :data:`THRESHOLD_BYTES`).
    """

    def __init__(self, on_trimmed: Callable[[int], None], trimmer: HeapTrimmer | None = None) -> None:
        self._on_trimmed = on_trimmed
        self._trimmer = trimmer or HeapTrimmer()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task (nothing without glibc)."""
        if self._trimmer.available:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="heap-trim")

    async def stop(self) -> None:
        """End the task."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        trimmer = self._trimmer
        if hole := trimmer.leave_hole_if_asked():
            log.warning("%s=%d: left that much free heap to trim (a test-only setting)", HOLE_ENV, hole)
        while True:
            await asyncio.sleep(PERIOD_SECONDS)
            if trimmer.due():
                self._on_trimmed(await asyncio.to_thread(trimmer.trim))


def _glibc() -> ctypes.CDLL | None:
    libc = ctypes.CDLL(None)  # the process's own symbols: the C library it runs on
    if not (hasattr(libc, "mallinfo2") and hasattr(libc, "malloc_trim")):
        return None
    libc.mallinfo2.restype = _MallInfo2
    libc.mallinfo2.argtypes = []
    libc.malloc_trim.restype = ctypes.c_int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.restype = None
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


def _resident_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE
