"""DedupWindow: the plain-Python reference of the window of ``native.DedupTable``.

Pure: times are passed in. The server's window before it moved into
libshardq: a map of id -> (partition, offset, time), oldest first, bounded
by age and by count; the property tests compare the native table with it
(same lookups, same expiry, same encoding). Tests only.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

_HEAD = struct.Struct("<I")
_ITEM = struct.Struct("<HIQq")  # id length, partition, offset, time


class DedupWindow:
    """Map of id (UTF-8 bytes) -> (partition, offset, time) for ids seen inside the window.

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

    @property
    def enabled(self) -> bool:
        """Whether ids are remembered at all."""
        return self.max_ids > 0 and self.window_ns > 0

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
        if not self.enabled:
            return
        seen = self._seen
        seen[event_id] = (partition, offset, now_ns)
        seen.move_to_end(event_id)  # an id seen before (expired) becomes the youngest

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

    def encode(self) -> bytes:
        """The window as bytes, oldest first (the same bytes for the same window)."""
        pack = _ITEM.pack
        parts = [_HEAD.pack(len(self._seen))]
        for event_id, (partition, offset, time_ns) in self._seen.items():
            parts.append(pack(len(event_id), partition, offset, time_ns))
            parts.append(event_id)
        return b"".join(parts)

    def restore(self, data: bytes | memoryview) -> None:
        """Replace the window by one :meth:`encode` made.

        Raises:
            ValueError: ``data`` is not such bytes.
        """
        view = memoryview(data)
        (count,) = _HEAD.unpack_from(view)
        at = _HEAD.size
        unpack, size = _ITEM.unpack_from, _ITEM.size
        seen: OrderedDict[bytes, tuple[int, int, int]] = OrderedDict()
        try:
            for _ in range(count):
                length, partition, offset, time_ns = unpack(view, at)
                at += size
                seen[bytes(view[at:at + length])] = (partition, offset, time_ns)
                at += length
        except struct.error as error:
            raise ValueError(f"de-duplication window cut short: {error}") from None
        if at != len(view):
            raise ValueError("de-duplication window followed by other bytes")
        self._seen = seen


__all__ = ["DedupWindow"]
