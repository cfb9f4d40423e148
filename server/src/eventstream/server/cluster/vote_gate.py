"""A member that bootstrapped on an empty data dir votes only once it holds what was committed.

A member that lost its data dir and starts again on an empty one looks
exactly like a member starting for the first time. If it voted at once, its
empty log could help elect a candidate that lacks entries it acknowledged
before the loss, and committed entries would be lost. So from its bootstrap
until it has caught up, a member does not answer vote requests (pre-votes
included) of candidates whose log holds anything: a new cluster, whose logs
are all empty, elects as usual; a cluster with history waits for the others.

It has caught up once a linearizable read (``RaftDriver.read_index``)
returns on it: the leader's commit index, which is then applied here, so
its log holds every entry the cluster committed (whatever it acknowledged
before the loss included). The owner (``cluster.replicated``) tries that
until it works, opens the gate and records it in ``cluster.json``, so a
restart while catching up keeps the gate. :class:`GatedTransport` wraps the
peer transport and hands the driver a filtering inbox (:class:`VoteGate`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from eventstream.server.raft import Message, VoteRequest

from .ports import Inbox, Transport

log = logging.getLogger(__name__)


class VoteGate:
    """The driver's inbox, without the vote requests a catching-up member must not answer.

    Args:
        inbox: the driver.
        closed: whether this member is catching up (withholds votes) at start.
    """

    def __init__(self, inbox: Inbox, closed: bool) -> None:
        self._inbox = inbox
        self.closed = closed
        """True while vote requests of candidates with a log are withheld."""
        self.withheld = 0
        """Vote requests withheld."""

    def open(self) -> None:
        """The member caught up: vote as usual from now on."""
        if self.closed:
            self.closed = False
            log.info("caught up with the cluster: voting from now on (%d vote requests "
                     "withheld)", self.withheld)

    def _filter(self, messages: Sequence[Message]) -> Sequence[Message]:
        if not self.closed:
            return messages
        kept = [message for message in messages
                if not (isinstance(message, VoteRequest) and message.last_index > 0)]
        self.withheld += len(messages) - len(kept)
        return kept

    async def deliver(self, messages: Sequence[Message]) -> None:
        """See ``ports.Inbox.deliver``."""
        await self._inbox.deliver(self._filter(messages))

    def try_deliver(self, messages: Sequence[Message]) -> bool:
        """See ``ports.Inbox.try_deliver``."""
        return self._inbox.try_deliver(self._filter(messages))

    def report_unreachable(self, node_id: str) -> None:
        """See ``ports.Inbox.report_unreachable``."""
        self._inbox.report_unreachable(node_id)

    def report_snapshot(self, node_id: str, ok: bool) -> None:
        """See ``ports.Inbox.report_snapshot``."""
        self._inbox.report_snapshot(node_id, ok)


class GatedTransport:
    """Implements ``ports.Transport``: ``transport``, with the driver's inbox behind a gate.

    Args:
        transport: the peer transport.
        make_gate: builds the gate around the driver's inbox (at ``bind``).
    """

    def __init__(self, transport: Transport, make_gate: Callable[[Inbox], VoteGate]) -> None:
        self._transport = transport
        self._make_gate = make_gate
        self.gate: VoteGate | None = None

    def bind(self, inbox: Inbox) -> None:
        """See ``ports.Transport.bind``."""
        self.gate = self._make_gate(inbox)
        self._transport.bind(self.gate)

    def send(self, messages: Sequence[Message]) -> None:
        """See ``ports.Transport.send``."""
        self._transport.send(messages)


__all__ = ["GatedTransport", "VoteGate"]
