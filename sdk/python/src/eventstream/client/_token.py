"""Bearer tokens: interceptors that add ``authorization: Bearer <token>`` to every call.

Interceptors rather than gRPC call credentials, so a token also travels on
a plaintext channel (a server behind a TLS-terminating proxy or mesh);
without TLS anywhere on the path the token can be read on the network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import grpc

_KEY = "authorization"


def bearer_metadata(token: str) -> tuple[str, str]:
    """The metadata entry that carries ``token``.

    Raises:
        ValueError: an empty token, or one with characters metadata cannot carry.
    """
    if not token or not token.isprintable() or not token.isascii() or token != token.strip():
        raise ValueError("token: must be non-empty printable ASCII without surrounding spaces")
    return (_KEY, f"Bearer {token}")


def _with_token(metadata: Any, entry: tuple[str, str]) -> list[tuple[str, Any]]:
    kept = [(key, value) for key, value in (metadata or ()) if key != _KEY]
    return [*kept, entry]


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _SyncDetails(_Details, grpc.ClientCallDetails):
    """grpc.ClientCallDetails with its fields (the sync API wants a subclass)."""


class TokenInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                       grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the bearer token to every call of a blocking channel.

    Args:
        token: the bearer token.
    """

    def __init__(self, token: str) -> None:
        self._entry = bearer_metadata(token)

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _SyncDetails(details.method, details.timeout,
                            _with_token(details.metadata, self._entry), details.credentials,
                            getattr(details, "wait_for_ready", None),
                            getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Callable[..., Any],
                              client_call_details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any],
                               client_call_details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any],
                               client_call_details: grpc.ClientCallDetails,
                               request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Callable[..., Any],
                                client_call_details: grpc.ClientCallDetails,
                                request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


class AsyncTokenInterceptor(grpc.aio.UnaryUnaryClientInterceptor,
                            grpc.aio.UnaryStreamClientInterceptor,
                            grpc.aio.StreamUnaryClientInterceptor,
                            grpc.aio.StreamStreamClientInterceptor):
    """Adds the bearer token to every call of a grpc.aio channel.

    Args:
        token: the bearer token.
    """

    def __init__(self, token: str) -> None:
        self._entry = bearer_metadata(token)

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*_with_token(details.metadata, self._entry))
        return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata,
                                          details.credentials, details.wait_for_ready)

    async def intercept_unary_unary(self, continuation: Any,
                                    client_call_details: grpc.aio.ClientCallDetails,
                                    request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_unary_stream(self, continuation: Any,
                                     client_call_details: grpc.aio.ClientCallDetails,
                                     request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_stream_unary(self, continuation: Any,
                                     client_call_details: grpc.aio.ClientCallDetails,
                                     request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)

    async def intercept_stream_stream(self, continuation: Any,
                                      client_call_details: grpc.aio.ClientCallDetails,
                                      request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


__all__ = ["AsyncTokenInterceptor", "TokenInterceptor", "bearer_metadata"]
