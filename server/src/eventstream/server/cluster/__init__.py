"""The I/O shell of Raft: the driver task, its ports, and (in ``transport``) the peer network.

``RaftDriver`` (``node.py``) owns a ``raft.RaftNode`` and runs its Ready
loop: persist, then send, then apply, then advance. It depends only on the
ports in ``ports.py``: ``RaftLog`` (persistence), ``Transport`` (peers) and
``Applier`` (the application), each a ``typing.Protocol`` documenting its
ordering, ownership and errors. ``MemoryRaftLog`` is the in-memory
``RaftLog``. The gRPC transport (the only module that imports the peer
protocol, ``eventstream.peer.v1``) is imported from
``eventstream.server.cluster.transport`` by whoever wires it.
"""

from eventstream.server.cluster.errors import DriverHalted, DriverStopped, ProposalDropped, TooManyReads
from eventstream.server.cluster.memory_log import MemoryRaftLog
from eventstream.server.cluster.node import RaftDriver
from eventstream.server.cluster.ports import Applier, Inbox, RaftLog, Transport

__all__ = [
    "Applier",
    "DriverHalted",
    "DriverStopped",
    "Inbox",
    "MemoryRaftLog",
    "ProposalDropped",
    "RaftDriver",
    "RaftLog",
    "TooManyReads",
    "Transport",
]
