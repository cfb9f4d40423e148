"""Typed errors decoded from gRPC statuses and per-event results.

Pure: no I/O. The server sends, with every error status, a
``google.rpc.Status`` in the ``grpc-status-details-bin`` trailer carrying
``ErrorInfo`` (stable reason, ``metadata["field"]``), ``BadRequest`` (the field
of an invalid request) and ``RetryInfo`` (how long to wait), plus a plain
``retry-after-ms`` trailer. Everything is decoded once, here.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from eventstream.v1 import common_pb2

RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
"""Codes a retry can cure. Never INVALID_ARGUMENT or other caller errors."""

_DETAILS_KEY = "grpc-status-details-bin"
_RETRY_AFTER_KEY = "retry-after-ms"


class EventStreamError(Exception):
    """An error reported by the server (or the connection to it).

    Attributes:
        code: the gRPC status code.
        message: the server's message; for bad input it starts with the field.
        reason: stable machine-readable reason, e.g. ``"TOPIC_WILDCARD"`` ("" if none).
        field: the request field at fault, e.g. ``"events[3].topic"`` ("" if none).
        retry_delay: seconds the server asked to wait before a retry, if it said.
        leader_id: for a write a follower of a replicated cluster could not pass
            on: the leader's node id ("" if none was named).
        leader_address: that leader's ``host:port`` ("" if unknown); a client
            may send there directly.

    Example:
        >>> try:
        ...     client.publish(Event("sensors/*", b"x"))
        ... except InvalidArgumentError as error:
        ...     print(error.reason, error.field)
        TOPIC_WILDCARD event.topic
    """

    def __init__(self, code: grpc.StatusCode, message: str, *, reason: str = "",
                 field: str = "", retry_delay: float | None = None, leader_id: str = "",
                 leader_address: str = "") -> None:
        super().__init__(f"{code.name}: {message}" + (f" ({reason})" if reason else ""))
        self.code = code
        self.message = message
        self.reason = reason
        self.field = field
        self.retry_delay = retry_delay
        self.leader_id = leader_id
        self.leader_address = leader_address

    @property
    def retryable(self) -> bool:
        """True when retrying the same request may succeed."""
        return self.code in RETRYABLE_CODES


class InvalidArgumentError(EventStreamError):
    """INVALID_ARGUMENT: a bad event or request field (:attr:`field` names it). Never retried."""


class OutOfRangeError(EventStreamError):
    """OUT_OF_RANGE: a start offset is no longer retained; subscribe from earliest or a time."""


class ResourceExhaustedError(EventStreamError):
    """RESOURCE_EXHAUSTED: a server lane is full; retried after the server's hint."""


class UnavailableError(EventStreamError):
    """UNAVAILABLE: the server is starting, draining or unreachable; retried."""


class DeadlineExceededError(EventStreamError):
    """DEADLINE_EXCEEDED: the call's timeout passed."""


class InternalError(EventStreamError):
    """INTERNAL: an unexpected server error; the message carries a correlation id."""


_CLASSES: dict[grpc.StatusCode, type[EventStreamError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.INTERNAL: InternalError,
}
_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def make_error(code: grpc.StatusCode, message: str, *, reason: str = "", field: str = "",
               retry_delay: float | None = None, leader_id: str = "",
               leader_address: str = "") -> EventStreamError:
    """The error of the class matching ``code``."""
    cls = _CLASSES.get(code, EventStreamError)
    return cls(code, message, reason=reason, field=field, retry_delay=retry_delay,
               leader_id=leader_id, leader_address=leader_address)


def error_from_status(code: grpc.StatusCode, message: str,
                      trailers: Iterable[tuple[str, str | bytes]]) -> EventStreamError:
    """Decode an error status and its trailers (rich details, retry hint)."""
    reason = field = ""
    retry_delay: float | None = None
    leader: dict[str, str] = {}
    for key, value in trailers:
        if key == _DETAILS_KEY and isinstance(value, bytes):
            reason, field, retry_delay, leader = _decode_details(value)
        elif key == _RETRY_AFTER_KEY and retry_delay is None:
            try:
                retry_delay = int(value) / 1000
            except ValueError:
                pass  # a malformed hint is no hint
    return make_error(code, message, reason=reason, field=field, retry_delay=retry_delay,
                      leader_id=leader.get("leader_id", ""),
                      leader_address=leader.get("leader_address", ""))


def error_from_rpc(error: grpc.RpcError) -> EventStreamError:
    """Decode a failed call (sync ``grpc.RpcError`` or ``grpc.aio.AioRpcError``)."""
    if isinstance(error, (grpc.aio.AioRpcError, grpc.Call)):
        return lost_connection(error_from_status(error.code(), error.details() or "",
                                                 tuple(error.trailing_metadata() or ())))
    return make_error(grpc.StatusCode.UNKNOWN, str(error))


# Two ways gRPC reports, under other codes and with no server details, a call
# the server never handled; both are UNAVAILABLE in effect (retry elsewhere or
# later): grpc.aio reports a request that cannot be sent because the
# connection broke as INTERNAL (grpc/grpc#36066), and a server that shuts down
# cancels the calls it received but had not yet handed to a handler
# (grpc/grpc#41785).
_NOT_HANDLED = {
    (grpc.StatusCode.INTERNAL, "Internal error from Core"): "the connection broke while sending",
    (grpc.StatusCode.CANCELLED, "CANCELLED"): "the server shut down before handling the call",
}


def lost_connection(error: EventStreamError) -> EventStreamError:
    """``error``, or UNAVAILABLE when it is gRPC's report of a call the server never handled."""
    why = _NOT_HANDLED.get((error.code, error.message))
    if why is None or error.reason:
        return error
    return UnavailableError(grpc.StatusCode.UNAVAILABLE,
                            f"{why} ({error.code.name}: {error.message})")


def error_from_event_error(error: common_pb2.EventError) -> EventStreamError:
    """The error of one refused event of a batch or stream."""
    code = _CODES_BY_NUMBER.get(error.code, grpc.StatusCode.UNKNOWN)
    return make_error(code, error.message, reason=error.reason, field=error.field)


def _decode_details(data: bytes) -> tuple[str, str, float | None, dict[str, str]]:
    """(reason, field, retry delay, leader hint) from a serialized google.rpc.Status."""
    reason = field = ""
    retry_delay: float | None = None
    leader: dict[str, str] = {}
    try:
        status = status_pb2.Status.FromString(data)
    except DecodeError:
        return reason, field, retry_delay, leader
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
            field = field or info.metadata.get("field", "")
            leader = {key: info.metadata[key] for key in ("leader_id", "leader_address")
                      if key in info.metadata}
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                field = bad.field_violations[0].field
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            hint = error_details_pb2.RetryInfo()
            detail.Unpack(hint)
            retry_delay = hint.retry_delay.ToNanoseconds() / 1e9
    return reason, field, retry_delay, leader
