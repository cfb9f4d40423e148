"""Read-index requests a leader holds until a majority confirms it still leads.

Pure: no I/O, clock or randomness.

A request records the commit index when it arrived. The leader then sends a
heartbeat round carrying the request's context; once a majority has answered
that round, the leader was still leader after the request arrived, so every
request received up to then may be served at its recorded index.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ReadRequest:
    """One pending read: serve ``context`` for ``requester`` once entry ``index`` is applied."""

    index: int
    context: bytes
    requester: str
    acks: set[str] = field(default_factory=set)


class ReadIndexTracker:
    """Pending read-index requests in arrival order, keyed by their (unique) context."""

    __slots__ = ("_requests",)

    def __init__(self) -> None:
        self._requests: dict[bytes, ReadRequest] = {}

    def __len__(self) -> int:
        return len(self._requests)

    def add(self, index: int, context: bytes, requester: str) -> bool:
        """Hold a request; False (and ignored) if its context is already pending."""
        if context in self._requests:
            return False
        self._requests[context] = ReadRequest(index, context, requester)
        return True

    def ack(self, context: bytes, node_id: str) -> set[str] | None:
        """Record that ``node_id`` answered the round for ``context``; the nodes that have, or None."""
        request = self._requests.get(context)
        if request is None:
            return None
        request.acks.add(node_id)
        return request.acks

    def release_through(self, context: bytes) -> list[ReadRequest]:
        """Remove and return every request up to and including ``context``, oldest first."""
        if context not in self._requests:
            return []
        released = []
        for key in list(self._requests):
            released.append(self._requests.pop(key))
            if key == context:
                break
        return released

    def last_context(self) -> bytes:
        """The context of the newest pending request (b"" when none)."""
        return next(reversed(self._requests), b"")

    def clear(self) -> None:
        """Drop everything (leadership lost)."""
        self._requests.clear()
