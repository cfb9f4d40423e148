"""Shared fixtures: real server processes, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.support.dns import Responder
from tests.support.server import ServerProcess

# Property tests assert what holds, never how fast: hypothesis's default 200 ms
# deadline per example and its too-slow health check fail on a busy 2-core
# machine, where one example can wait for the CPU far longer.
settings.register_profile("eventstream", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("eventstream")

PORT_ATTEMPTS = 3
"""Starts of a server whose free port another process took first, each on new ports."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--rewrite``: golden files (the Raft scripts) take the actual output; review the diff."""
    parser.addoption("--rewrite", action="store_true", default=False,
                     help="rewrite golden test files with the actual output")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Factory starting servers that are all stopped when the test ends."""
    started: list[ServerProcess] = []
    counter = 0

    def start(config: dict[str, Any] | None = None, args: list[str] | None = None,
              env: dict[str, str] | None = None, wait: bool = True) -> ServerProcess:
        nonlocal counter
        counter += 1
        for attempt in range(PORT_ATTEMPTS):
            workdir = tmp_path / (f"server-{counter}" + (f"-retry-{attempt}" if attempt else ""))
            workdir.mkdir()
            server = ServerProcess(workdir, config, args, env)
            started.append(server)
            try:
                return server.start(wait=wait)
            except AssertionError:
                if not server.lost_a_port() or attempt == PORT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """One server with the default test configuration."""
    return start_server()


@pytest.fixture
def responder() -> Iterator[Responder]:
    """A DNS responder on 127.0.0.1 whose records the test sets (``cluster.dns_server``)."""
    server = Responder().start()
    yield server
    server.stop()
