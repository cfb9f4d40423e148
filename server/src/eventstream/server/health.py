"""The node's serving state, published through standard gRPC health.

One source of truth: the gRPC ``grpc.health.v1.Health`` service reports it for
the overall server ("") and for each public service, and the HTTP /health
endpoint answers 200 exactly when it is SERVING.
"""

from __future__ import annotations

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

    async def set(self, serving: bool, phase: str) -> None:
        """Publish the state to every service name; ``phase`` is for /status."""
        self.serving = serving
        self.phase = phase
        for name in self.services:
            await self.servicer.set(name, SERVING if serving else NOT_SERVING)
