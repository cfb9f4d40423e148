"""Domain errors: one table of stable codes, gRPC status codes and retryability.

Pure: no I/O. Everything below the RPC layer raises these; the RPC layer turns
them into a gRPC status (or a per-event error of a batch) in one place, and
the metric of rejected events counts them by ``reason``.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class ErrorKind:
    """One row of the error table."""

    reason: str
    """Stable, machine-readable code, e.g. ``TOPIC_EMPTY``."""
    status: grpc.StatusCode
    retryable: bool


_INVALID = grpc.StatusCode.INVALID_ARGUMENT

# The table. Reasons are stable: clients and alerts match on them.
KINDS: dict[str, ErrorKind] = {
    kind.reason: kind
    for kind in (
        ErrorKind("TOPIC_EMPTY", _INVALID, False),
        ErrorKind("TOPIC_WILDCARD", _INVALID, False),
        ErrorKind("TOPIC_EMPTY_LEVEL", _INVALID, False),
        ErrorKind("TOPIC_TOO_LONG", _INVALID, False),
        ErrorKind("TOPIC_NOT_UTF8", _INVALID, False),
        ErrorKind("ID_NOT_UTF8", _INVALID, False),
        ErrorKind("KEY_NOT_UTF8", _INVALID, False),
        ErrorKind("EVENT_MALFORMED", _INVALID, False),
        ErrorKind("REQUEST_MALFORMED", _INVALID, False),
        ErrorKind("PAYLOAD_TOO_LARGE", _INVALID, False),
        ErrorKind("PRIORITY_UNKNOWN", _INVALID, False),
        ErrorKind("ID_TOO_LONG", _INVALID, False),
        ErrorKind("KEY_TOO_LONG", _INVALID, False),
        ErrorKind("TOO_MANY_HEADERS", _INVALID, False),
        ErrorKind("EVENT_TOO_LARGE", _INVALID, False),
        ErrorKind("HEADER_NOT_UTF8", _INVALID, False),
        ErrorKind("PUBLISH_TIME_OUT_OF_RANGE", _INVALID, False),
        ErrorKind("EVENT_MISSING", _INVALID, False),
        ErrorKind("FRAME_TRUNCATED", _INVALID, False),
        ErrorKind("FRAME_TOO_LONG", _INVALID, False),
        ErrorKind("FRAME_BAD_LENGTH", _INVALID, False),
        ErrorKind("BATCH_TOO_LARGE", _INVALID, False),
        ErrorKind("PATTERN_INVALID", _INVALID, False),
        ErrorKind("PATTERNS_MISSING", _INVALID, False),
        ErrorKind("START_POSITION_INVALID", _INVALID, False),
        ErrorKind("START_MISSING", _INVALID, False),
        ErrorKind("GROUP_INVALID", _INVALID, False),
        ErrorKind("GROUP_PATTERNS_DIFFER", _INVALID, False),
        ErrorKind("POSITION_INVALID", _INVALID, False),
        ErrorKind("OFFSET_OUT_OF_RANGE", grpc.StatusCode.OUT_OF_RANGE, False),
        ErrorKind("LANE_FULL", grpc.StatusCode.RESOURCE_EXHAUSTED, True),
        ErrorKind("CONNECTION_LIMIT", grpc.StatusCode.RESOURCE_EXHAUSTED, True),
        ErrorKind("GROUPS_LIMIT", grpc.StatusCode.RESOURCE_EXHAUSTED, False),
        # Authentication and authorization (docs/security.md).
        ErrorKind("CREDENTIALS_MISSING", grpc.StatusCode.UNAUTHENTICATED, False),
        ErrorKind("TOKEN_INVALID", grpc.StatusCode.UNAUTHENTICATED, False),
        ErrorKind("PERMISSION_DENIED", grpc.StatusCode.PERMISSION_DENIED, False),
        ErrorKind("QUOTA_EXCEEDED", grpc.StatusCode.RESOURCE_EXHAUSTED, True),
        ErrorKind("IDLE_TIMEOUT", grpc.StatusCode.DEADLINE_EXCEEDED, True),
        ErrorKind("FRAME_TIMEOUT", grpc.StatusCode.DEADLINE_EXCEEDED, True),
        ErrorKind("SHUTTING_DOWN", grpc.StatusCode.UNAVAILABLE, True),
        ErrorKind("STARTING", grpc.StatusCode.UNAVAILABLE, True),
        ErrorKind("COMMIT_FAILED", grpc.StatusCode.UNAVAILABLE, True),
        # A write reached a follower of a replicated cluster (the leader is named when known).
        ErrorKind("NOT_LEADER", grpc.StatusCode.UNAVAILABLE, True),
        ErrorKind("STORAGE_FAILED", grpc.StatusCode.UNAVAILABLE, True),
        # Membership administration (ClusterService; docs/cluster.md "Changing the members").
        ErrorKind("MEMBER_INVALID", _INVALID, False),
        ErrorKind("MEMBER_UNKNOWN", grpc.StatusCode.NOT_FOUND, False),
        ErrorKind("MEMBER_EXISTS", grpc.StatusCode.ALREADY_EXISTS, False),
        ErrorKind("MEMBERSHIP_CHANGE_PENDING", grpc.StatusCode.FAILED_PRECONDITION, True),
        ErrorKind("LAST_VOTER", grpc.StatusCode.FAILED_PRECONDITION, False),
        ErrorKind("NOT_LEARNER", grpc.StatusCode.FAILED_PRECONDITION, False),
        ErrorKind("NOT_VOTER", grpc.StatusCode.FAILED_PRECONDITION, False),
        ErrorKind("LEARNER_BEHIND", grpc.StatusCode.FAILED_PRECONDITION, True),
        ErrorKind("NOT_REPLICATED", grpc.StatusCode.FAILED_PRECONDITION, False),
        ErrorKind("MEMBERSHIP_TIMEOUT", grpc.StatusCode.DEADLINE_EXCEEDED, True),
        ErrorKind("SEGMENT_CORRUPT", grpc.StatusCode.DATA_LOSS, False),
        # A stored event clients cannot decode (accepted before validation covered it).
        ErrorKind("EVENT_UNDECODABLE", grpc.StatusCode.DATA_LOSS, False),
        ErrorKind("INTERNAL", grpc.StatusCode.INTERNAL, False),
    )
}


class EventStreamError(Exception):
    """An error with a stable reason, the request field at fault and a message.

    Args:
        reason: a key of :data:`KINDS`.
        message: human-readable explanation; it names the field.
        field: the request field at fault, e.g. ``events[3].topic``.
        retry_after: seconds a client should wait before retrying, if known.
        leader_id: the cluster's leader, for a write that reached a follower.
        leader_address: the leader's public ``host:port``, when known.
    """

    def __init__(self, reason: str, message: str, *, field: str = "",
                 retry_after: float | None = None, leader_id: str = "",
                 leader_address: str = "") -> None:
        super().__init__(message)
        self.kind = KINDS[reason]
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.leader_id = leader_id
        self.leader_address = leader_address

    @property
    def reason(self) -> str:
        """The stable reason code."""
        return self.kind.reason

    @property
    def code(self) -> int:
        """The numeric gRPC status code (google.rpc.Code)."""
        return int(self.kind.status.value[0])

    def at(self, prefix: str) -> EventStreamError:
        """Return a copy whose field (and message) is prefixed, e.g. ``events[3].``.

        An error about the whole event (no field) names the event itself.
        """
        if self.field:
            return EventStreamError(self.reason, f"{prefix}{self.message}",
                                    field=f"{prefix}{self.field}", retry_after=self.retry_after)
        where = prefix.rstrip(".")
        return EventStreamError(self.reason, f"{where}: {self.message}", field=where,
                                retry_after=self.retry_after)


def invalid(reason: str, field: str, problem: str) -> EventStreamError:
    """Build a validation error whose message starts with the field name."""
    return EventStreamError(reason, f"{field}: {problem}", field=field)
