"""The driver's ports: what the Raft driver needs from persistence, the network and the application.

Pure: ``typing.Protocol`` classes only. :class:`~.node.RaftDriver` is
written against these; the server wires concrete ones (an adapter over the
entry log, the gRPC transport, the write path's applier), tests wire
in-memory ones (:class:`~.memory_log.MemoryRaftLog`, the fake hub in
``eventstream.server.testing.raft_hub``).

Every method is called on the event loop thread. The driver calls
:class:`RaftLog` and :class:`Applier` only from its own task, one call at a
time, in the order of the Ready contract (``raft/ready.py``): persist, then
send, then apply. The transport calls the driver's :class:`Inbox` from any
task of the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from eventstream.server.raft import Entry, LogStorage, Message, Ready, Snapshot


class RaftLog(Protocol):
    """The durable side of a Raft node: the core reads it, the driver writes it.

    Ordering: :meth:`persist` is called once per Ready, never concurrently
    with another call of this port, and always before the messages of that
    Ready are sent. Errors: any exception from a method halts the driver
    (the node stops taking writes and must be restarted); it is never
    retried, since a failed fsync may have lost pages.
    """

    @property
    def storage(self) -> LogStorage:
        """The read-only view the core is built on (``raft.LogStorage``).

        It shows what :meth:`persist` and :meth:`save_snapshot` stored as
        soon as they return (the core reads entries back after ``advance()``).
        """
        ...

    async def persist(self, ready: Ready) -> None:
        """Store what ``ready`` asks, in this order, then return.

        1. ``ready.snapshot`` when set: it replaces the whole log.
        2. ``ready.entries``: when ``entries[0].index`` is at or below the
           last stored index, first drop every stored entry from that index
           on (a new leader overwrote them), then append.
        3. ``ready.hard_state`` when set (term, vote, commit).

        When ``ready.must_sync`` all of it is durable (fsynced) when this
        returns; otherwise it may be written later, but in this order, and
        never reordered with a later persist.

        Raises:
            Exception: any storage error; the driver halts.
        """
        ...

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot``, taken by the application at an applied index still stored.

        Afterwards ``storage.snapshot()`` returns it and entries up to
        ``snapshot.index`` may be compacted. Called on the driver's task
        after the apply step of a Ready with ``snapshot_request`` set.

        Raises:
            Exception: any storage error; the driver halts.
        """
        ...


class Applier(Protocol):
    """The application: applies committed entries, in index order, exactly once per start.

    Called only on the driver's task, after the entries are durable locally
    and committed by the group. An exception halts the driver. On restart
    the driver re-delivers the committed entries after the latest snapshot
    (the application restores that snapshot first, or starts empty at index
    0), so an applier that keeps state outside the log must tolerate seeing
    entries it applied before a crash again, in the same order.
    """

    async def apply(self, entries: Sequence[Entry]) -> None:
        """Apply ``entries`` (consecutive, in index order, every kind including NOOP and MEMBERSHIP).

        Ownership: the entries are immutable and shared; keep them if needed.
        """
        ...

    async def restore(self, snapshot: Snapshot) -> None:
        """Replace the application's state with ``snapshot`` (installed from the leader).

        Called after :meth:`RaftLog.persist` stored it and before any entry
        after ``snapshot.index`` is applied.
        """
        ...

    async def snapshot(self) -> bytes:
        """The application's state as of the last entry it applied, as opaque bytes.

        Called when a follower needs entries the log no longer holds; the
        driver wraps the bytes in a ``raft.Snapshot`` and hands it to
        :meth:`RaftLog.save_snapshot`.
        """
        ...


class Inbox(Protocol):
    """Where a transport hands what it received to the driver (implemented by ``RaftDriver``).

    Non-reentrant: none of these call into the transport. Messages are
    stepped on the driver's task in the order they were delivered.
    """

    async def deliver(self, messages: Sequence[Message]) -> None:
        """Queue inbound ``messages`` for the driver; waits while the bounded inbox is full.

        Waiting is the back-pressure: a transport that awaits this stops
        reading its peer's stream. Messages delivered after the driver
        stopped are dropped.
        """
        ...

    def try_deliver(self, messages: Sequence[Message]) -> bool:
        """Queue ``messages`` without waiting; False (and nothing queued) when the inbox is full."""
        ...

    def report_unreachable(self, node_id: str) -> None:
        """A message to ``node_id`` could not be sent (dropped, or the link is down)."""
        ...

    def report_snapshot(self, node_id: str, ok: bool) -> None:
        """Sending a snapshot to ``node_id`` finished (``ok``) or failed."""
        ...


class Transport(Protocol):
    """Sends Raft messages to peers and delivers theirs to the driver.

    Ownership: the transport's own tasks and sockets are started and stopped
    by whoever made it (the composition root, a test); the driver only binds
    to it and sends.
    """

    def bind(self, inbox: Inbox) -> None:
        """Deliver every inbound message, and report send failures, to ``inbox`` from now on.

        Called once, by ``RaftDriver.start()``, before the first :meth:`send`.
        """
        ...

    def send(self, messages: Sequence[Message]) -> None:
        """Queue ``messages`` for their recipients; never blocks, never raises for a peer's trouble.

        Per-peer queues are bounded: a message that finds its peer's queue
        full (or names an unknown peer) is dropped, counted, and the peer is
        reported with ``Inbox.report_unreachable``; Raft resends what
        matters. Order per peer is kept for the messages sent. An
        ``InstallSnapshot`` is streamed in chunks, and its outcome reported
        with ``Inbox.report_snapshot``.
        """
        ...
