"""Fixtures of the SDK tests: TCP proxies in front of servers, stopped after each test."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator

import pytest

from tests.support.proxy import TcpProxy


@pytest.fixture
def start_proxy() -> Iterator[Callable[..., TcpProxy]]:
    """Factory of started proxies (``start_proxy(upstream, tls=None)``), all stopped at the end."""
    started: list[TcpProxy] = []

    def start(upstream: str, tls: ssl.SSLContext | None = None) -> TcpProxy:
        proxy = TcpProxy(upstream, tls)
        started.append(proxy)
        return proxy.start()

    yield start
    for proxy in started:
        proxy.stop()
