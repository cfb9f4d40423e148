"""What the Raft core persists through its caller: log entries, hard state, snapshots.

Pure: frozen, slotted dataclasses and size accounting; no I/O.
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import accumulate, repeat

from eventstream.server.raft.membership import Membership

Payload = bytes | memoryview
"""An entry's data: bytes, or a read-only view into a buffer the caller keeps
unchanged (so an encoded entry's payload need not be copied)."""

ENTRY_OVERHEAD = 24
"""Bytes counted for an entry besides its data when sizes are limited
(index, term and kind as a transport would frame them)."""


class EntryKind(IntEnum):
    """What an entry holds.

    Values are APPEND-ONLY: entries are stored on disk and sent between
    nodes, so an existing value must never be renumbered or reused. The core
    interprets only NOOP and MEMBERSHIP; every other kind is application
    data it passes through untouched.
    """

    NOOP = 0
    """The entry a new leader appends in its term, so that it can commit."""
    EVENTS = 1
    GROUPS = 2
    RETENTION = 3
    MEMBERSHIP = 4
    """A single-server membership change (see ``membership.py``)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry. Never mutated once made; shared freely between lists."""

    index: int
    term: int
    kind: EntryKind
    data: Payload


@dataclass(frozen=True, slots=True)
class HardState:
    """The state a node must persist before it sends the messages that depend on it.

    ``vote`` is the node voted for in ``term`` (None: no vote yet);
    ``commit`` is the highest index known committed (persisting it is an
    optimisation, so that a restarted node can apply without waiting).
    """

    term: int = 0
    vote: str | None = None
    commit: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The application's state as of log entry ``index`` (whose term is ``term``).

    Small metadata: ``membership`` is the membership in force after applying
    ``index``, ``data`` the application's opaque bytes. A fresh group starts
    from the snapshot at index 0, term 0 that holds its initial membership.
    """

    index: int = 0
    term: int = 0
    membership: Membership = field(default_factory=Membership)
    data: bytes = b""


_DATA = operator.attrgetter("data")


def entries_size(entries: Sequence[Entry]) -> int:
    """Bytes counted for ``entries`` by every size limit of the core."""
    return sum(map(len, map(_DATA, entries))) + ENTRY_OVERHEAD * len(entries)


def limit_size(entries: list[Entry], max_bytes: int) -> list[Entry]:
    """The longest prefix of ``entries`` within ``max_bytes``, but at least one entry.

    ``max_bytes <= 0`` means no limit. Returns ``entries`` itself when
    nothing is cut.
    """
    if max_bytes <= 0 or len(entries) <= 1:
        return entries
    if entries_size(entries) <= max_bytes:  # the common case, without building a list
        return entries
    sizes = list(accumulate(map(operator.add, map(len, map(_DATA, entries)), repeat(ENTRY_OVERHEAD))))
    return entries[:max(1, bisect_right(sizes, max_bytes))]
