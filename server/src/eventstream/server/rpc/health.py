"""The node's serving state, published through standard gRPC health.

One source of truth: the gRPC ``grpc.health.v1.Health`` service reports it for
the overall server ("") and for each public service, and the HTTP /health
endpoint answers 200 exactly when it is SERVING.
"""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health, health_pb2

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthState:
    """Serving or not, for "" and every named service.

    Args:
        services: fully-qualified names of the public services.
    """

    def __init__(self, services: list[str]) -> None:
        self.servicer = health.aio.HealthServicer()
        self.services = ["", *services]
        self.serving = False
        self.phase = "starting"
        self._halting: asyncio.Task[None] | None = None

    async def set(self, serving: bool, phase: str) -> None:
        """Publish the state to every service name; ``phase`` is for /status."""
        self.serving = serving
        self.phase = phase
        for name in self.services:
            await self.servicer.set(name, SERVING if serving else NOT_SERVING)

    def storage_failed(self, reason: str, error: str) -> None:
        """Writes halted on a storage error: NOT_SERVING until the process restarts.

        Args:
            reason: what failed (for the write path's log; /status shows it).
            error: the short name of the error.
        """
        self._halting = asyncio.get_running_loop().create_task(
            self.set(False, "storage failed"), name="storage-failed")
