"""Turning domain errors into gRPC statuses, in one place.

Every servicer method is wrapped by :func:`handles_errors`: an
:class:`EventStreamError` becomes its status code with a message naming the
field and rich details (``google.rpc.BadRequest`` for the field,
``google.rpc.ErrorInfo`` for the reason, ``google.rpc.RetryInfo`` when a retry
may succeed); anything unexpected becomes INTERNAL with a correlation id that
is logged with the traceback, which is never sent.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from ..errors import KINDS, EventStreamError
from ..observability.metrics import Metrics

log = logging.getLogger(__name__)

DOMAIN = "eventstream.v1"
LEADER_ID = "eventstream-leader-id"
"""Trailer of a write refused by a follower: the leader's node id."""
LEADER_ADDRESS = "eventstream-leader-address"
"""Trailer of a write refused by a follower: the leader's public ``host:port``."""
T = TypeVar("T")


def status_details(error: EventStreamError) -> bytes:
    """The serialized google.rpc.Status carried in ``grpc-status-details-bin``."""
    details = []
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN)
    if error.field:
        info.metadata["field"] = error.field
    if error.leader_id:
        info.metadata["leader_id"] = error.leader_id
    if error.leader_address:
        info.metadata["leader_address"] = error.leader_address
    details.append(info)
    if error.field and error.kind.status == grpc.StatusCode.INVALID_ARGUMENT:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=error.field,
                                                        description=error.message)]))
    if error.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after * 1e9))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    status = status_pb2.Status(code=error.code, message=error.message)
    for detail in details:
        status.details.add().Pack(detail)
    encoded: bytes = status.SerializeToString()
    return encoded


def error_from_status(code: int, message: str, details: bytes) -> EventStreamError:
    """The error a leader answered a forwarded request with, rebuilt from its status.

    The reason, field, retry delay and leader hint come from the details;
    a status without a known reason keeps its code through a reason of that code.
    """
    reason = field = leader_id = leader_address = ""
    retry_after: float | None = None
    try:
        status = status_pb2.Status.FromString(details)
    except DecodeError:
        status = status_pb2.Status()
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, field = info.reason, info.metadata.get("field", "")
            leader_id = info.metadata.get("leader_id", "")
            leader_address = info.metadata.get("leader_address", "")
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            hint = error_details_pb2.RetryInfo()
            detail.Unpack(hint)
            retry_after = hint.retry_delay.ToNanoseconds() / 1e9
    if reason not in KINDS:
        reason = _REASON_OF_CODE.get(code, "INTERNAL")
    return EventStreamError(reason, message, field=field, retry_after=retry_after,
                            leader_id=leader_id, leader_address=leader_address)


_REASON_OF_CODE = {
    grpc.StatusCode.UNAVAILABLE.value[0]: "COMMIT_FAILED",
    grpc.StatusCode.INVALID_ARGUMENT.value[0]: "REQUEST_MALFORMED",
    grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]: "LANE_FULL",
}
"""A reason of the same code, for a status whose details name none this version knows."""


def trailing_metadata(error: EventStreamError) -> tuple[tuple[str, str | bytes], ...]:
    """Trailers for an error: rich details, plus plain retry and leader hints when known."""
    trailers: list[tuple[str, str | bytes]] = [("grpc-status-details-bin", status_details(error))]
    if error.retry_after is not None:
        trailers.append(("retry-after-ms", str(int(error.retry_after * 1000))))
    if error.leader_id:
        trailers.append((LEADER_ID, error.leader_id))
    if error.leader_address:
        trailers.append((LEADER_ADDRESS, error.leader_address))
    return tuple(trailers)


def handles_errors(method: str, metrics: Metrics
                   ) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Decorate a servicer coroutine ``(request, context)`` to map errors to statuses."""

    def decorate(handler: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(handler)
        async def wrapper(request: Any, context: grpc.aio.ServicerContext[bytes, bytes]) -> T:
            try:
                return await handler(request, context)
            except EventStreamError as error:
                metrics.rpc_errors.add(1, {"method": method, "code": error.kind.status.name})
                await context.abort(error.kind.status, error.message, trailing_metadata(error))
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise
            except Exception:  # last resort: never send a traceback
                correlation = uuid.uuid4().hex[:12]
                log.exception("unexpected error in %s (correlation id %s)", method, correlation)
                metrics.rpc_errors.add(1, {"method": method, "code": "INTERNAL"})
                await context.abort(grpc.StatusCode.INTERNAL,
                                    f"internal error (correlation id {correlation})")
            raise AssertionError("unreachable: abort raises")

        return wrapper

    return decorate

