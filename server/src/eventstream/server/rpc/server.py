"""The gRPC listener: grpc.aio with the public services, health and reflection.

Requests and responses of the EventStream services are bytes (the servicers
decode what they need); the send limit is above every delivery the node can
build, so any one event it accepted can always be delivered.

With TLS the port serves grpc's dynamic SSL credentials
(:func:`..security.tls.grpc_server_credentials`): a rotated certificate is
served to new connections while open ones keep theirs.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ..config.model import Config
from ..security.tls import ServerTls, grpc_server_credentials
from . import cluster, publish, subscribe
from .health import HealthState

PUBLIC_SERVICES = [publish.SERVICE, subscribe.SERVICE, cluster.SERVICE]
"""The services a client calls (health and reflection besides)."""

# What a stored record adds to an event as published (the server's fields, a
# generated id, the framing) is far below this.
_RECORD_SLACK = 64 * 1024


def send_limit(config: Config) -> int:
    """The gRPC send limit.

    Above every delivery the node can build, so that any one event it accepted can always be delivered.
    """
    limits = config.limits
    largest = max(limits.event_bytes(), limits.max_message_bytes + limits.max_topic_bytes,
                  config.subscribe.max_batch_bytes, config.groups.max_batch_bytes,
                  limits.max_request_bytes)
    return min(largest + _RECORD_SLACK, 2**31 - 1)


class GrpcServer:
    """The node's gRPC server.

    Args:
        config: the node's configuration (message limits).
        handlers: the generic handlers of the public services.
        health: the serving state, published through ``grpc.health.v1``.
        tls: the certificate to serve (None: plaintext).
    """

    def __init__(self, config: Config, handlers: list[grpc.GenericRpcHandler],
                 health: HealthState, tls: ServerTls | None = None) -> None:
        self._config = config
        self._handlers = handlers
        self._health = health
        self._tls = tls
        self._bound: grpc.aio.Server | None = None
        self._server: grpc.aio.Server | None = None   # once started
        self.port = 0

    def bind(self, host: str, port: int) -> None:
        """Make the server and bind ``host:port`` (0: any free port); see :attr:`port`.

        Raises:
            RuntimeError: the port could not be bound (gRPC gives no reason).
        """
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", self._config.limits.max_request_bytes),
            ("grpc.max_send_message_length", send_limit(self._config)),
            ("grpc.so_reuseport", 0),
        ])
        server.add_generic_rpc_handlers(tuple(self._handlers))
        health_pb2_grpc.add_HealthServicer_to_server(self._health.servicer, server)
        reflection.enable_server_reflection(
            [*PUBLIC_SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME], server)
        address = f"{host}:{port}"
        self.port = (server.add_insecure_port(address) if self._tls is None
                     else server.add_secure_port(address, grpc_server_credentials(self._tls)))
        if not self.port:
            raise RuntimeError("no port bound")
        self._bound = server

    async def start(self) -> None:
        """Start serving on the bound port."""
        assert self._bound is not None, "bind first"
        await self._bound.start()
        self._server = self._bound

    async def stop(self, grace: float) -> None:
        """Stop, giving calls in flight ``grace`` seconds."""
        if self._server is not None:
            await self._server.stop(grace=grace)
            self._server = None


__all__ = ["PUBLIC_SERVICES", "GrpcServer", "send_limit"]
