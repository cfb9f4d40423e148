"""A fake network for Raft drivers in one process: partition, heal, drop, delay, reorder.

Each node gets a :class:`HubTransport` (the ``cluster.ports.Transport``
port) from one :class:`FakeHub`. Messages are handed to the recipient's
inbox on the event loop (never synchronously inside ``send``), through
faults set per directed link. Randomness (drop probability, reordering
jitter) comes only from the hub's seeded generator.

Like a real network, a message lost to a fault is not reported to its
sender; a message to a node the hub does not know, or whose inbox is
full, is reported unreachable. An ``InstallSnapshot`` that arrives is
reported sent (``report_snapshot(ok=True)``), one that is lost, failed.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eventstream.server.cluster.ports import Inbox
from eventstream.server.raft import InstallSnapshot, Message


@dataclass
class LinkFaults:
    """What happens to messages from one node to another."""

    cut: bool = False
    """Nothing gets through (a partition)."""
    drop: float = 0.0
    """Probability that each message is lost."""
    delay: float = 0.0
    """Seconds each message takes."""
    jitter: float = 0.0
    """Extra seconds drawn uniformly in ``[0, jitter)`` per message: messages get reordered."""


class FakeHub:
    """The network between named nodes (see the module docstring).

    Args:
        seed: seeds the drop and jitter draws.
    """

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._transports: dict[str, HubTransport] = {}
        self._faults: dict[tuple[str, str], LinkFaults] = {}
        self._pending: dict[int, asyncio.Handle] = {}
        self._keys = itertools.count()
        self.delivered = 0
        """Messages handed to an inbox."""
        self.lost = 0
        """Messages lost to a fault or a full inbox."""

    def transport(self, node_id: str) -> HubTransport:
        """The transport of ``node_id`` (made on first use)."""
        transport = self._transports.get(node_id)
        if transport is None:
            transport = self._transports[node_id] = HubTransport(self, node_id)
        return transport

    # Faults.

    def link(self, sender: str, recipient: str) -> LinkFaults:
        """The faults of the link ``sender -> recipient``, to change in place."""
        return self._faults.setdefault((sender, recipient), LinkFaults())

    def partition(self, *sides: Iterable[str]) -> None:
        """Cut every link between nodes on different sides (nodes on no side are untouched)."""
        groups = [set(side) for side in sides]
        for number, side in enumerate(groups):
            for other in groups[number + 1:]:
                for a in side:
                    for b in other:
                        self.link(a, b).cut = True
                        self.link(b, a).cut = True

    def isolate(self, node_id: str) -> None:
        """Cut ``node_id`` from every other node."""
        self.partition([node_id], [other for other in self._transports if other != node_id])

    def drop(self, sender: str, recipient: str, probability: float = 1.0) -> None:
        """Lose messages ``sender -> recipient`` with ``probability``."""
        self.link(sender, recipient).drop = probability

    def delay(self, sender: str, recipient: str, seconds: float, jitter: float = 0.0) -> None:
        """Delay messages ``sender -> recipient`` by ``seconds`` plus up to ``jitter`` (reordering them)."""
        faults = self.link(sender, recipient)
        faults.delay, faults.jitter = seconds, jitter

    def heal(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def close(self) -> None:
        """Cancel every delivery still scheduled."""
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()

    # Delivery.

    def _send(self, sender: str, messages: Sequence[Message]) -> None:
        loop = asyncio.get_running_loop()
        origin = self._transports[sender]
        for message in messages:
            recipient = self._transports.get(message.recipient)
            if recipient is None or recipient.inbox is None:
                origin.report(message, reachable=False)
                continue
            faults = self._faults.get((sender, message.recipient))
            if faults is not None and (faults.cut or (faults.drop and self._rng.random() < faults.drop)):
                self.lost += 1
                origin.report(message, arrived=False)
                continue
            seconds = 0.0
            if faults is not None:
                seconds = faults.delay + (self._rng.random() * faults.jitter if faults.jitter else 0.0)
            key = next(self._keys)
            self._pending[key] = (loop.call_later(seconds, self._arrive, key, origin, recipient, message)
                                  if seconds else
                                  loop.call_soon(self._arrive, key, origin, recipient, message))

    def _arrive(self, key: int, origin: HubTransport, recipient: HubTransport, message: Message) -> None:
        del self._pending[key]
        faults = self._faults.get((origin.node_id, recipient.node_id))
        inbox = recipient.inbox
        if (faults is not None and faults.cut) or inbox is None or not inbox.try_deliver([message]):
            # Cut while in flight, or the inbox is full: lost.
            self.lost += 1
            origin.report(message, arrived=False)
            return
        self.delivered += 1
        origin.report(message, arrived=True)


class HubTransport:
    """One node's end of a :class:`FakeHub` (the ``Transport`` port)."""

    def __init__(self, hub: FakeHub, node_id: str) -> None:
        self._hub = hub
        self.node_id = node_id
        self.inbox: Inbox | None = None
        self.sent = 0
        """Messages given to :meth:`send`."""

    def bind(self, inbox: Inbox) -> None:
        """Deliver to ``inbox`` from now on."""
        self.inbox = inbox

    def send(self, messages: Sequence[Message]) -> None:
        """Hand ``messages`` to the hub; never blocks."""
        self.sent += len(messages)
        self._hub._send(self.node_id, messages)

    def report(self, message: Message, *, reachable: bool = True, arrived: bool = True) -> None:
        """Tell the sender's driver what became of ``message`` when it needs to know."""
        inbox = self.inbox
        if inbox is None:
            return
        if not reachable:
            inbox.report_unreachable(message.recipient)
        if isinstance(message, InstallSnapshot):
            inbox.report_snapshot(message.recipient, reachable and arrived)
