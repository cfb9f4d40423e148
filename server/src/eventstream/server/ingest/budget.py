"""A shared allowance of bytes that raw ingest connections may hold.

Pure asyncio bookkeeping, no I/O. Each TCP connection takes what it needs
for one unit of work (a decoded read, a frame larger than its receive
buffer, an acknowledged-mode batch) before it holds the bytes, and gives it
back when the events are in a lane. A unit is taken whole and never while
the connection holds another, so holders never wait on each other. Waiters
are served in arrival order, so a large unit is not starved by small ones.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ByteBudget:
    """Bytes that may be held at once, taken and given back by holders.

    Args:
        limit: the bytes that may be held at once. A single request larger
            than this is granted once nothing else is held.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        """Bytes held now."""
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, count: int) -> bool:
        return self.used + count <= self.limit or self.used == 0

    def try_take(self, count: int) -> bool:
        """Take ``count`` bytes now if they fit and nobody waits before us."""
        if self._waiters or not self._fits(count):
            return False
        self.used += count
        return True

    async def take(self, count: int) -> None:
        """Take ``count`` bytes, waiting (in arrival order) until they fit."""
        if self.try_take(count):
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (count, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give(count)   # granted just as we were cancelled
            else:
                self._waiters.remove(entry)
                self._grant()
            raise

    def give(self, count: int) -> None:
        """Give back ``count`` bytes taken before."""
        self.used -= count
        self._grant()

    def _grant(self) -> None:
        while self._waiters:
            count, waiter = self._waiters[0]
            if not self._fits(count):
                return
            self._waiters.popleft()
            self.used += count
            waiter.set_result(None)


__all__ = ["ByteBudget"]
