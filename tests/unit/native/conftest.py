"""Fixtures for the native core tests: libshardq beside its plain-Python reference.

The native side needs libshardq built and installed into the package
(``make install``); without it the tests fail with the loader's message.
The references live in :mod:`tests.support.oracles`.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from eventstream.server.native import NativeWire, ShardQueue
from tests.support.oracles.ring import PureShardQueue
from tests.support.oracles.wire import PureWire

# Hypothesis keeps a cache under ./.hypothesis by default; with this repo's
# pytest.ini (norecursedirs replaced, warnings as errors) that directory then
# breaks collection. Keep it out of the tree unless the caller chose a place.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      os.path.join(tempfile.gettempdir(), "eventstream-hypothesis"))


@pytest.fixture(params=["native", "pure"])
def queue_cls(request: pytest.FixtureRequest) -> type:
    """The native queue, then its reference (both must pass the same tests)."""
    return ShardQueue if request.param == "native" else PureShardQueue


@pytest.fixture(params=["native", "pure"])
def wire(request: pytest.FixtureRequest) -> NativeWire | PureWire:
    """The native wire helpers, then their reference."""
    return NativeWire() if request.param == "native" else PureWire()


@pytest.fixture(scope="session")
def native_wire() -> NativeWire:
    """The native wire helpers (for comparisons with the reference)."""
    return NativeWire()


@pytest.fixture(scope="session")
def pure_wire() -> PureWire:
    """The plain-Python reference."""
    return PureWire()
