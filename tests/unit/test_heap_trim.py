"""HeapTrimmer against this process's own C heap (glibc only)."""

from __future__ import annotations

import ctypes

import pytest

from eventstream.server import heap_trim

CHUNK, COUNT = 1024, 40_000  # ~40 MiB of small chunks: heap, not mmap, allocations

trimmer = heap_trim.HeapTrimmer()
pytestmark = pytest.mark.skipif(not trimmer.available, reason="needs glibc (mallinfo2, malloc_trim)")


@pytest.fixture
def libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None)
    lib.malloc.restype = ctypes.c_void_p
    lib.malloc.argtypes = [ctypes.c_size_t]
    lib.free.argtypes = [ctypes.c_void_p]
    return lib


def test_freed_heap_below_a_live_chunk_is_given_back(libc: ctypes.CDLL) -> None:
    heap_trim.HeapTrimmer().trim()  # start from a trimmed heap
    chunks = [libc.malloc(CHUNK) for _ in range(COUNT)]
    for chunk in chunks:
        ctypes.memset(chunk, 1, CHUNK)  # resident
    # Free all but the newest: the freed 40 MiB sit below it, so free() cannot return them.
    for chunk in chunks[:-1]:
        libc.free(chunk)
    try:
        subject = heap_trim.HeapTrimmer(threshold=16 * 2**20)
        assert subject.free_bytes() >= 30 * 2**20
        assert subject.due()
        assert subject.trim() >= 20 * 2**20
    finally:
        libc.free(chunks[-1])


def test_not_due_below_the_threshold() -> None:
    subject = heap_trim.HeapTrimmer(threshold=2**40)
    assert not subject.due()
