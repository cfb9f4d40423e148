"""The consumer groups' periodic work: ack deadlines, lag counting, idle expiry, saving offsets.

One task, owned by :class:`GroupUpkeep` (``start``/``stop``). Ten times a
second it delivers again what passed its ack deadline and examines new events
for the groups' lag; twice a second it forgets groups idle too long and saves
the committed offsets that moved (on a worker thread: saving fsyncs).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence

from ..storage.group_offsets import GroupOffsets
from ..tasks import cancel_and_wait
from .groups import GROUP_NAME, Group, GroupCoordinator, StoredGroup

log = logging.getLogger(__name__)

TICK_SECONDS = 0.1
LAG_COUNT_BUDGET = 4096
"""Events examined per group per tick for the lag (40 k/s)."""
_SAVE_EVERY = 5
"""Ticks between idle expiries and offset saves."""


def stored_groups(offsets: GroupOffsets | None, partitions: int) -> dict[str, StoredGroup]:
    """The groups whose committed offsets are stored, idle since their last save.

    Raises:
        DataDirRefused: a damaged offsets file.
    """
    if offsets is None:
        return {}
    saved = offsets.load_all(partitions, lambda name: GROUP_NAME.fullmatch(name) is not None)
    ago = time.time_ns() - time.monotonic_ns()   # wall clock minus monotonic clock
    return {name: StoredGroup(entry.offsets, min(entry.saved_ns - ago, time.monotonic_ns()))
            for name, entry in saved.items()}


class GroupUpkeep:
    """Runs the groups' periodic work.

    Args:
        groups: the coordinator.
        offsets: where committed offsets are saved (None: kept in memory only).
        idle_expiry_seconds: ``groups.idle_expiry_seconds``, for the log line.
    """

    def __init__(self, groups: GroupCoordinator, offsets: GroupOffsets | None,
                 idle_expiry_seconds: float) -> None:
        self._groups = groups
        self._offsets = offsets
        self._idle_expiry_seconds = idle_expiry_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ack-deadlines")

    async def stop(self) -> None:
        """End the task, then save the offsets that moved (on this thread)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._offsets is not None:
            self._save(self._groups.unsaved())

    async def _run(self) -> None:
        groups = self._groups
        for tick in itertools.count(1):
            await asyncio.sleep(TICK_SECONDS)
            groups.expire()
            groups.count_ahead(LAG_COUNT_BUDGET)
            if tick % _SAVE_EVERY == 0:
                expired = groups.expire_idle()
                if expired:
                    log.info("consumer groups without members for %g s forgotten "
                             "(groups.idle_expiry_seconds): %s",
                             self._idle_expiry_seconds, ", ".join(expired))
                if self._offsets is not None:
                    moved = groups.unsaved()
                    if moved or expired:
                        await asyncio.to_thread(self._save, moved, expired)

    def _save(self, moved: list[tuple[Group, list[int]]], expired: Sequence[str] = ()) -> None:
        """Save the offsets of groups that moved and delete those of expired groups."""
        offsets = self._offsets
        assert offsets is not None
        for name in expired:
            try:
                offsets.delete(name)
            except OSError:
                log.exception("cannot delete the offsets of expired group %s", name)
        for group, frontiers in moved:
            try:
                offsets.save(group.name, frontiers)
            except OSError as error:
                log.error("cannot save the offsets of group %s (%s); retrying", group.name, error)
                continue
            self._groups.saved(group, frontiers)


__all__ = ["LAG_COUNT_BUDGET", "GroupUpkeep", "stored_groups"]
