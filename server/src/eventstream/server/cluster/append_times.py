"""When the leader appended its entries, for the age of the oldest entry a peer lacks.

Pure: the caller passes the time (the driver's monotonic clock). One mark
per proposal (a range of entries appended at once), never one per entry.
The marks start again when the node starts to lead: entries of earlier
leaders carry no time here, so a peer lacking one is reported as late as
this node's leadership is old (a lower bound).
"""

from __future__ import annotations

import bisect
from collections import deque

MAX_MARKS = 65536
"""Marks kept at most; beyond, the oldest go (their entries then count as
old as the oldest mark left)."""


class AppendTimes:
    """Marks (first index of a proposal, time) of the current leadership, in index order."""

    def __init__(self, max_marks: int = MAX_MARKS) -> None:
        self._indexes: deque[int] = deque(maxlen=max_marks)
        self._times: deque[float] = deque(maxlen=max_marks)

    def lead(self, first_index: int, now: float) -> None:
        """This node starts to lead; its first entry (the empty one of its term) is ``first_index``."""
        self._indexes.clear()
        self._times.clear()
        self.mark(first_index, now)

    def mark(self, first_index: int, now: float) -> None:
        """Entries from ``first_index`` on were appended at ``now`` (indexes only grow)."""
        if self._indexes and first_index <= self._indexes[-1]:
            return  # a conflicting suffix was replaced: keep the older time
        self._indexes.append(first_index)
        self._times.append(now)

    def lag_seconds(self, match: int, last_index: int, now: float) -> float:
        """Age of entry ``match + 1`` (0 when a peer with ``match`` lacks nothing)."""
        if match >= last_index or not self._indexes:
            return 0.0
        at = bisect.bisect_right(self._indexes, match + 1) - 1
        return max(now - self._times[max(at, 0)], 0.0)

    def forget_through(self, index: int) -> None:
        """Drop marks every peer is past (only entries after ``index`` can be lacked)."""
        indexes, times = self._indexes, self._times
        while len(indexes) > 1 and indexes[1] <= index + 1:
            indexes.popleft()
            times.popleft()


__all__ = ["MAX_MARKS", "AppendTimes"]
