"""The HTTP listener (port ``metrics.port``): health, metrics and status.

Thin aiohttp handlers over :class:`~..health.HealthState`, the metrics'
Prometheus rendering and a status snapshot function.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..health import HealthState
from ..observability.metrics import CONTENT_TYPE, Metrics


class HttpServer:
    """Serves /health, /health/live, /health/ready, the metrics path and /status.

    Args:
        health: the serving state.
        metrics: rendered at ``metrics_path`` when ``metrics_enabled``.
        status: returns the /status document.
    """

    def __init__(self, health: HealthState, metrics: Metrics, status: Callable[[], dict[str, Any]],
                 *, metrics_enabled: bool, metrics_path: str) -> None:
        self._health = health
        self._metrics = metrics
        self._status = status
        app = web.Application()
        app.router.add_get("/health", self._ready)
        app.router.add_get("/health/ready", self._ready)
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/status", self._status_handler)
        if metrics_enabled:
            app.router.add_get(metrics_path, self._metrics_handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0 picks a free one, kept in ``self.port``)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server  # aiohttp exposes the bound socket only here
        self.port = server.sockets[0].getsockname()[1] if server is not None else port

    async def stop(self) -> None:
        """Stop listening."""
        await self._runner.cleanup()

    async def _ready(self, _request: web.Request) -> web.Response:
        serving = self._health.serving
        body = {"status": "SERVING" if serving else "NOT_SERVING", "phase": self._health.phase}
        return web.json_response(body, status=200 if serving else 503)

    async def _live(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ALIVE", "phase": self._health.phase})

    async def _status_handler(self, _request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(self._status(), indent=2),
                            content_type="application/json")

    async def _metrics_handler(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE})
