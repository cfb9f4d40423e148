"""The server gives C heap left free in the middle of its heap back to the system.

How much free heap a burst of requests leaves depends on how the requests
interleave in the server, which depends on whatever else runs on the machine;
a test built on a burst failed under load. Here the server makes the free heap
itself, deterministically: with the test-only EVENTSTREAM_TEST_HEAP_HOLE_BYTES
its trim task first leaves that many resident bytes free below a chunk it
keeps, as a burst of large requests does, and the real trim loop must give
them back and count them. What a real burst leaves, and what trimming saves
at the end of the peer benchmark, are in bench/README.md.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from eventstream.server.heap_trim import HOLE_ENV, THRESHOLD_BYTES, HeapTrimmer
from tests.support.server import ServerProcess, wait_for_metric

MIB = 1024 * 1024
HOLE = 64 * MIB
TRIMMED = "eventstream_memory_trimmed_bytes_total"

pytestmark = pytest.mark.skipif(not HeapTrimmer().available,
                                reason="needs glibc (mallinfo2, malloc_trim)")


def test_free_heap_in_the_middle_of_the_heap_is_given_back(
        start_server: Callable[..., ServerProcess]) -> None:
    assert HOLE >= 2 * THRESHOLD_BYTES  # due at the first pass
    server = start_server(env={HOLE_ENV: str(HOLE)})
    # The first pass is one period after the start; a few periods at most.
    trimmed = wait_for_metric(server, TRIMMED, HOLE // 2, timeout=60)
    assert trimmed >= HOLE // 2, f"{trimmed / MIB:.1f} MiB given back of a {HOLE // MIB} MiB hole"
    assert "a test-only setting" in server.log()

