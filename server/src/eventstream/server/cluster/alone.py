"""The transport of a cluster of one voter: there is nobody to send to.

A single node runs the same Raft driver, log adapter and applier as a
replicated one; only its transport differs. With one voter the core sends
no messages (it commits what is durable locally), so anything handed to
:meth:`NoPeers.send` names a node this one does not know: it is dropped and
reported unreachable, as a real transport does with an unknown peer.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventstream.server.raft import Message

from .ports import Inbox


class NoPeers:
    """Implements ``ports.Transport`` for a node without peers (see the module docstring)."""

    def __init__(self) -> None:
        self._inbox: Inbox | None = None
        self.dropped = 0
        """Messages dropped (each addressed to an unknown node)."""

    def bind(self, inbox: Inbox) -> None:
        """See ``ports.Transport.bind``."""
        self._inbox = inbox

    def send(self, messages: Sequence[Message]) -> None:
        """See ``ports.Transport.send``: every message names an unknown peer."""
        self.dropped += len(messages)
        if self._inbox is not None:
            for node_id in {message.recipient for message in messages}:
                self._inbox.report_unreachable(node_id)


__all__ = ["NoPeers"]
