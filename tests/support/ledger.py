"""What producers were told, against what a server holds: the durability checker.

A :class:`Ledger` records the outcome of every publish made through the
Python SDK with producer-chosen ids: acknowledged (with the partition and
offset the server gave), unknown (the call failed: the server may or may not
have stored the events) or refused (the server said they were not stored).
:func:`check_stored` compares it with every event read back from the earliest
offset by a subscriber and fails, naming the events, when

- an acknowledged event is missing, stored at another position, or changed;
- an event is stored twice, or an offset holds something other than what was
  acknowledged there (an offset reused);
- offsets of a partition have a gap or go backwards;
- something is stored that was never published, or that was refused.

Only public interfaces are used (SDK publishes, a Subscribe from earliest,
``/status`` for the end offsets), so the checker holds for any log format.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from eventstream.client import (
    NO_RETRY,
    AsyncClient,
    Event,
    EventStreamError,
    PublishAck,
    ReceivedEvent,
)
from tests.support.durable import end_offsets, payload_of
from tests.support.server import ServerProcess


@dataclass
class Ledger:
    """Every outcome producers saw, by event id (ids are unique per test)."""

    acked: dict[str, tuple[int, int]] = field(default_factory=dict)
    """id -> (partition, offset) of its first acknowledgement."""
    unknown: set[str] = field(default_factory=set)
    """Ids whose publish failed without a verdict: stored or not, both are right."""
    refused: set[str] = field(default_factory=set)
    """Ids the server said it did not store."""
    errors: list[EventStreamError] = field(default_factory=list)
    """Every call-level error, in order."""
    sizes: dict[str, int] = field(default_factory=dict)
    """id -> the payload size it was published with (see :func:`payload_of`)."""

    def ack(self, ack: PublishAck) -> None:
        """Record an acknowledgement; a duplicate must name the first position."""
        where = (ack.partition, ack.offset)
        first = self.acked.setdefault(ack.id, where)
        assert first == where, f"{ack.id}: acknowledged at {first}, then again at {where}"
        self.unknown.discard(ack.id)

    async def publish(self, client: AsyncClient, ids: list[str], *, topic: str = "faults/t",
                      key: str = "", keys: Sequence[str] = (), size: int = 0,
                      timeout: float = 30.0) -> bool:
        """Publish ``ids`` as one batch and record the outcome; True when all were acknowledged.

        Events get ``key``, or ``keys`` round-robin when given. ``size`` pads
        each payload to that many bytes (the payload is still a function of
        the id, so a stored event can be checked whole).
        """
        events = [Event(topic, payload_of(i, self.sizes.setdefault(i, size)), id=i,
                        key=keys[n % len(keys)] if keys else key)
                  for n, i in enumerate(ids)]
        try:
            results = await client.publish_batch(events, timeout=timeout)
        except EventStreamError as error:
            self.errors.append(error)
            self.unknown.update(i for i in ids if i not in self.acked)
            return False
        every = True
        for event_id, result in zip(ids, results, strict=True):
            if result.ack is not None:
                self.ack(result.ack)
            else:
                self.refused.add(event_id)
                every = False
        return every

    async def retry_unknown(self, client: AsyncClient, *, topic: str = "faults/t") -> int:
        """Publish every unknown id again (same id, same payload); return how many.

        Each comes back acknowledged: as a duplicate at its first position if
        the failed attempt was stored after all, else newly stored.
        """
        pending = sorted(self.unknown)
        for start in range(0, len(pending), 100):
            chunk = pending[start:start + 100]
            assert await self.publish(client, chunk, topic=topic), self.errors[-1:]
        return len(pending)


def sdk_client(server: ServerProcess) -> AsyncClient:
    """An SDK client that never retries: each failure is recorded as it happened."""
    return AsyncClient(server.target, retry=NO_RETRY)


async def read_back(server: ServerProcess, timeout: float = 60.0) -> list[ReceivedEvent]:
    """Every stored event, read with the SDK from the earliest offset up to the end offsets."""
    until = end_offsets(server)
    events: list[ReceivedEvent] = []
    if not any(until):
        return events
    reached = [0] * len(until)
    async with AsyncClient(server.target) as client:
        async with asyncio.timeout(timeout):
            async with client.subscribe("#", start="earliest") as subscription:
                async for item in subscription:
                    events.append(item)
                    reached[item.partition] = item.offset + 1
                    if all(r >= end for r, end in zip(reached, until)):
                        break
    return events


@dataclass(frozen=True)
class Verdict:
    """Counts of a successful check."""

    stored: int
    acknowledged: int
    unknown_stored: int
    """Events whose publish failed without a verdict but that are stored."""


def check_stored(ledger: Ledger, stored: Iterable[ReceivedEvent]) -> Verdict:
    """Fail, naming the events, unless ``stored`` keeps every promise of ``ledger``.

    Args:
        ledger: what producers were told.
        stored: every event the server holds, in delivery order per partition.
    """
    stored = list(stored)
    positions: dict[str, tuple[int, int]] = {}
    twice: list[str] = []
    changed: list[str] = []
    offsets: dict[int, list[int]] = {}
    for event in stored:
        where = (event.partition, event.offset)
        if event.id in positions:
            twice.append(f"{event.id} at {positions[event.id]} and {where}")
        positions.setdefault(event.id, where)
        offsets.setdefault(event.partition, []).append(event.offset)
        if event.payload != payload_of(event.id, ledger.sizes.get(event.id, 0)):
            changed.append(f"{event.id} at {where}")
    problems: list[str] = []
    if twice:
        problems.append(f"stored twice: {twice[:5]}")
    if changed:
        problems.append(f"payload changed: {changed[:5]}")
    for partition, seen in sorted(offsets.items()):
        if seen != list(range(seen[0], seen[0] + len(seen))):
            gaps = [(a, b) for a, b in itertools.pairwise(seen) if b != a + 1]
            problems.append(f"partition {partition}: offsets not consecutive at {gaps[:5]}")
    missing = sorted(i for i in ledger.acked if i not in positions)
    if missing:
        problems.append(f"{len(missing)} acknowledged events lost: {missing[:5]}")
    holders = {where: event_id for event_id, where in positions.items()}
    reused = sorted(f"{where} acknowledged to {i} holds {holders[where]}"
                    for i, where in ledger.acked.items()
                    if holders.get(where, i) != i)
    if reused:
        problems.append(f"{len(reused)} offsets reused: {reused[:5]}")
    moved = sorted(f"{i}: acknowledged at {ledger.acked[i]}, stored at {positions[i]}"
                   for i in ledger.acked if i in positions and positions[i] != ledger.acked[i])
    if moved:
        problems.append(f"{len(moved)} acknowledged events moved: {moved[:5]}")
    strangers = sorted(i for i in positions if i not in ledger.acked and i not in ledger.unknown)
    if strangers:
        problems.append(f"{len(strangers)} stored events were never acknowledged nor in doubt "
                        f"(refused or never sent): {strangers[:5]}")
    assert not problems, "; ".join(problems)
    return Verdict(len(stored), len(ledger.acked),
                   sum(1 for i in ledger.unknown if i in positions))


__all__ = ["Ledger", "Verdict", "check_stored", "read_back", "sdk_client"]
