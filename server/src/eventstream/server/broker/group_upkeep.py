"""The consumer groups' periodic work: ack deadlines, lag counting, idle expiry, committed offsets.

One task, owned by :class:`GroupUpkeep` (``start``/``stop``). Ten times a
second it delivers again what passed its ack deadline and examines new events
for the groups' lag; twice a second, on the leader, it forgets groups idle too
long and writes the committed offsets (and dead-letter counts) that moved to
the log as one GROUPS entry (:meth:`.groups.GroupCoordinator.unsaved`). A
write that fails (no leader, a halted log) is tried again at the next turn:
the offsets in memory stay ahead of the log meanwhile, and a group that
resumes from the log sees the events acknowledged since then again
(at-least-once).
"""

from __future__ import annotations

import asyncio
import itertools
import logging

from ..errors import EventStreamError
from ..tasks import cancel_and_wait
from . import group_state
from .groups import GroupCoordinator
from .proposals import Proposer

log = logging.getLogger(__name__)

TICK_SECONDS = 0.1
LAG_COUNT_BUDGET = 4096
"""Events examined per group per tick for the lag (40 k/s)."""
_SAVE_EVERY = 5
"""Ticks between idle expiries and offset writes."""
STOP_SAVE_SECONDS = 5.0
"""How long a clean stop waits for the last offsets to be written."""


class GroupUpkeep:
    """Runs the groups' periodic work.

    Args:
        groups: the coordinator.
        proposer: says whether this node leads (only the leader writes group state).
        idle_expiry_seconds: ``groups.idle_expiry_seconds``, for the log line.
    """

    def __init__(self, groups: GroupCoordinator, proposer: Proposer,
                 idle_expiry_seconds: float) -> None:
        self._groups = groups
        self._proposer = proposer
        self._idle_expiry_seconds = idle_expiry_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-upkeep")

    async def stop(self) -> None:
        """End the task, then write the offsets that moved (bounded in time)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        try:
            async with asyncio.timeout(STOP_SAVE_SECONDS):
                await self.save()
        except TimeoutError:
            log.warning("the consumer groups' last offsets were not written within %g s; "
                        "their members see the events acknowledged since the last write again",
                        STOP_SAVE_SECONDS)

    async def _run(self) -> None:
        groups = self._groups
        for tick in itertools.count(1):
            await asyncio.sleep(TICK_SECONDS)
            groups.expire()
            groups.count_ahead(LAG_COUNT_BUDGET)
            if tick % _SAVE_EVERY == 0:
                await self.save(expire=True)

    async def save(self, expire: bool = False) -> None:
        """Write what moved (and, with ``expire``, forget idle groups) as one GROUPS entry."""
        if not self._proposer.is_leader:
            return
        groups = self._groups
        expired = groups.expire_idle() if expire else []
        if expired:
            log.info("consumer groups without members for %g s forgotten "
                     "(groups.idle_expiry_seconds): %s",
                     self._idle_expiry_seconds, ", ".join(expired))
        ops = [group_state.delete(name) for name in expired] + groups.unsaved()
        if not ops:
            return
        try:
            await groups.propose(ops)
        except EventStreamError as error:
            log.warning("consumer group offsets not written (%s); retrying", error.message)


__all__ = ["LAG_COUNT_BUDGET", "GroupUpkeep"]
