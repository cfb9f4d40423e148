"""The HTTP listener (port ``metrics.port``): health, metrics and status.

Thin aiohttp handlers over :class:`~..health.HealthState`, the metrics'
Prometheus rendering and a status snapshot function. Every connection passes
through :class:`_Guard`, which bounds how many are open at once and how long
a client may take to send a request head: aiohttp waits for a head forever,
so a few slow clients could otherwise hold the port the probes use.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web

from ..observability.metrics import CONTENT_TYPE, Metrics
from ..rpc.health import HealthState

_HEAD_END = b"\r\n\r\n"
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TOO_SLOW = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_LINGER_SECONDS = 2.0
"""How long a refused connection is read (and its bytes discarded) after its
answer, before it is closed: closing with unread bytes sends a reset, and a
client that reads after the reset loses the answer."""
_MAX_LINGERING = 256
"""Connections lingering at once; beyond, a refused one is closed at once (so a
flood of connections cannot hold more sockets than this for long)."""


class HttpServer:
    """Serves /health, /health/live, /health/ready, the metrics path and /status.

    It listens from the process's first moments (discovery, log recovery),
    before the node it reports on is built: until :meth:`attach`, /status
    holds only the phase, and /health/live answers 200 all the same (the
    process is up and its event loop turns), so a probe does not restart a
    node that is still reading its volume.

    Args:
        health: the serving state.
        metrics: rendered at ``metrics_path`` when ``metrics_enabled``.
        max_connections: connections open at once; one more gets 503.
        header_timeout: seconds to send a request head (then 408), and the
            longest idle time of a kept-alive connection.
    """

    def __init__(self, health: HealthState, metrics: Metrics, *, metrics_enabled: bool,
                 metrics_path: str, max_connections: int = 128,
                 header_timeout: float = 5.0) -> None:
        self._health = health
        self._unready: Callable[[], str] | None = None
        self._metrics = metrics
        self._status: Callable[[], dict[str, Any]] | None = None
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open_connections = 0
        self.lingering = 0
        """Refused connections being read after their answer (at most ``_MAX_LINGERING``)."""
        app = web.Application()
        app.router.add_get("/health", self._ready)
        app.router.add_get("/health/ready", self._ready)
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/status", self._status_handler)
        if metrics_enabled:
            app.router.add_get(metrics_path, self._metrics_handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     keepalive_timeout=header_timeout)
        self._listener: asyncio.Server | None = None
        self.port = 0

    def attach(self, status: Callable[[], dict[str, Any]],
               unready: Callable[[], str] | None = None) -> None:
        """Report on the node once it is built.

        Args:
            status: returns the /status document.
            unready: why a serving node still cannot serve ("" when it can); a
                cluster member's (no leader known, catching up) makes /health 503.
        """
        self._status = status
        self._unready = unready

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0 picks a free one, kept in ``self.port``)."""
        await self._runner.setup()
        handlers = self._runner.server
        assert handlers is not None
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: _Guard(self, handlers()), host, port, reuse_address=True)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, then end the open connections (once; again does nothing)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner.server is not None:
            await self._runner.cleanup()

    def closed(self, reason: str) -> None:
        """Count a connection the guard refused or cut short."""
        self._metrics.http_closed.add(1, {"reason": reason})

    async def _ready(self, _request: web.Request) -> web.Response:
        serving, phase = self._health.serving, self._health.phase
        if serving and self._unready is not None and (why := self._unready()):
            serving, phase = False, why
        body = {"status": "SERVING" if serving else "NOT_SERVING", "phase": phase}
        return web.json_response(body, status=200 if serving else 503)

    async def _live(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ALIVE", "phase": self._health.phase})

    async def _status_handler(self, _request: web.Request) -> web.Response:
        document = self._status() if self._status is not None else {
            "phase": self._health.phase, "serving": False}
        return web.Response(text=json.dumps(document, indent=2),
                            content_type="application/json")

    async def _metrics_handler(self, _request: web.Request) -> web.Response:
        return web.Response(body=await self._metrics.render_off_loop(),
                            headers={"Content-Type": CONTENT_TYPE})


class _Guard(asyncio.Protocol):
    """One connection: counted against the limit, its request heads timed.

    Passes every event on to aiohttp's protocol for the connection. A head's
    deadline starts at the connection or at the first byte after the previous
    head, and does not move while the head trickles in.
    """

    def __init__(self, server: HttpServer, inner: asyncio.Protocol) -> None:
        self._server = server
        self._inner: asyncio.Protocol | None = inner
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""   # the last bytes seen, for a head end split across reads
        self._linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)   # uvloop's is not a subclass
        server = self._server
        self._transport = transport
        if server.open_connections >= server.max_connections:
            self._inner = None
            server.closed("CONNECTION_LIMIT")
            self._answer_and_close(_BUSY)
            return
        server.open_connections += 1
        self._arm()
        assert self._inner is not None
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is None or self._linger is not None:
            return                     # refused or cut short: read and discarded
        seen = self._tail + data
        end = seen.rfind(_HEAD_END)
        if end == -1:
            if self._timer is None:
                self._arm()            # a new head began
        elif end + len(_HEAD_END) < len(seen):
            self._arm()                # a head ended and the next one began
        else:
            self._disarm()             # a head ended: aiohttp answers it
        self._tail = seen[-(len(_HEAD_END) - 1):]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._linger is not None:
            return False               # the client is done too: close
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
            self._server.lingering -= 1
        if self._inner is None:
            return
        self._disarm()
        self._server.open_connections -= 1
        inner, self._inner = self._inner, None
        inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def _arm(self) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(
            self._server.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._server.closed("HEADER_TIMEOUT")
        self._answer_and_close(_TOO_SLOW)   # its slot stays taken until it is closed

    def _answer_and_close(self, answer: bytes) -> None:
        """Write ``answer`` and end the stream; close when the client ends its own.

        At the latest after ``_LINGER_SECONDS``; bytes read meanwhile are
        discarded. With ``_MAX_LINGERING`` connections lingering already it closes at once.
        """
        transport, server = self._transport, self._server
        assert transport is not None
        transport.write(answer)
        if server.lingering >= _MAX_LINGERING or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        server.lingering += 1
        self._linger = asyncio.get_running_loop().call_later(_LINGER_SECONDS, transport.close)
