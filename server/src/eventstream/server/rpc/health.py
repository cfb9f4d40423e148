"""The node's serving state, published through standard gRPC health.

One source of truth: the gRPC ``grpc.health.v1.Health`` service reports it for
the overall server ("") and for each public service, and the HTTP /health
endpoint answers 200 exactly when it is SERVING. Two things decide it: the
node's life cycle (starting, serving, draining, storage failed: :meth:`set`)
and, on a member of a replicated cluster, why the cluster holds it back (no
leader known, catching up: :meth:`hold`); SERVING needs both.
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
        """The life cycle's half: started and not draining nor halted."""
        self.phase = "starting"
        self.held = ""
        """The cluster's half: why it holds this node back ("" when it does not)."""
        self._halting: asyncio.Task[None] | None = None

    async def set(self, serving: bool, phase: str) -> None:
        """Set the life cycle's half and publish; ``phase`` is for /status."""
        self.serving = serving
        self.phase = phase
        await self._publish()

    async def hold(self, reason: str) -> None:
        """Set the cluster's half ("" releases it) and publish."""
        self.held = reason
        await self._publish()

    async def _publish(self) -> None:
        """SERVING for every service name exactly when both halves allow it."""
        status = SERVING if self.serving and not self.held else NOT_SERVING
        for name in self.services:
            await self.servicer.set(name, status)

    def storage_failed(self, reason: str, error: str) -> None:
        """Writes halted on a storage error: NOT_SERVING until the process restarts.

        Args:
            reason: what failed (for the write path's log; /status shows it).
            error: the short name of the error.
        """
        self._halting = asyncio.get_running_loop().create_task(
            self.set(False, "storage failed"), name="storage-failed")
