"""Remembers recent event ids so a repeated publish is stored once.

Pure: time is passed in. Bounded by age and by count; the oldest ids are
forgotten first. An id is remembered from the moment its event is given an
offset, so a duplicate arriving while the first is still being committed is
caught too; ids of a commit that failed are forgotten again.
"""

from __future__ import annotations

from collections import OrderedDict


class DedupWindow:
    """Map of id (UTF-8 bytes) -> (partition, offset) for ids seen inside the window.

    Args:
        window_ns: how long an id is remembered, in nanoseconds.
        max_ids: most ids remembered.
    """

    def __init__(self, window_ns: int, max_ids: int) -> None:
        self.window_ns = window_ns
        self.max_ids = max_ids
        # Oldest first. An OrderedDict, not a dict: removing a plain dict's first
        # entry over and over makes finding the next first entry ever slower.
        self._seen: OrderedDict[bytes, tuple[int, int, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def lookup(self, event_id: bytes, now_ns: int) -> tuple[int, int, int] | None:
        """Where the first event with this id went, if still inside the window.

        Returns:
            (partition, offset, time remembered), or None.
        """
        hit = self._seen.get(event_id)
        if hit is None or now_ns - hit[2] > self.window_ns:
            return None
        return hit

    def remember(self, event_id: bytes, partition: int, offset: int, now_ns: int) -> None:
        """Remember an id given (partition, offset) at ``now_ns``.

        Old ids are forgotten by :meth:`expire`, once per batch of calls.
        """
        if self.max_ids == 0 or self.window_ns == 0:
            return
        seen = self._seen
        seen[event_id] = (partition, offset, now_ns)
        seen.move_to_end(event_id)  # an id seen before (expired) becomes the youngest

    def forget(self, event_ids: list[bytes]) -> None:
        """Forget ids whose commit failed."""
        for event_id in event_ids:
            self._seen.pop(event_id, None)

    def expire(self, now_ns: int) -> None:
        """Forget ids older than the window, and the oldest beyond ``max_ids``."""
        seen = self._seen
        while len(seen) > self.max_ids:
            seen.popitem(last=False)
        horizon = now_ns - self.window_ns
        while seen:
            oldest = next(iter(seen.values()))
            if oldest[2] >= horizon:
                break
            seen.popitem(last=False)
