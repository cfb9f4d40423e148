"""Fixtures for the native core tests: both backends, side by side.

The native backend needs libshardq built and installed into the package
(``make -C server/native/libshardq install``). Without it the native tests
fail with the loader's message, unless ``EVENTSTREAM_NATIVE=0`` says the
pure-Python fallback is the one under test; then they are skipped, visibly.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from eventstream.server.queue import NativeWire, PureShardQueue, PureWire, ShardQueue

# Hypothesis keeps a cache under ./.hypothesis by default; with this repo's
# pytest.ini (norecursedirs replaced, warnings as errors) that directory then
# breaks collection. Keep it out of the tree unless the caller chose a place.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      os.path.join(tempfile.gettempdir(), "eventstream-hypothesis"))

NATIVE_OFF = os.environ.get("EVENTSTREAM_NATIVE", "1").strip() == "0"


def _native_or_skip() -> None:
    if NATIVE_OFF:
        pytest.skip("EVENTSTREAM_NATIVE=0: native backend not under test")


@pytest.fixture(params=["native", "pure"])
def queue_cls(request: pytest.FixtureRequest) -> type:
    """Each queue backend in turn."""
    if request.param == "native":
        _native_or_skip()
        return ShardQueue
    return PureShardQueue


@pytest.fixture(params=["native", "pure"])
def wire(request: pytest.FixtureRequest) -> NativeWire | PureWire:
    """Each wire backend in turn."""
    if request.param == "native":
        _native_or_skip()
        return NativeWire()
    return PureWire()


@pytest.fixture(scope="session")
def native_wire() -> NativeWire:
    """The native wire helpers (for comparisons with the reference)."""
    _native_or_skip()
    return NativeWire()


@pytest.fixture(scope="session")
def pure_wire() -> PureWire:
    """The plain-Python reference."""
    return PureWire()
