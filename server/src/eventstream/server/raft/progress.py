"""What a leader knows about each follower, and how fast it may send to it.

Pure: no I/O, clock or randomness.

Each follower is in one of three states::

                    append accepted
        +-------+  ---------------->  +-----------+
        | PROBE |                     | REPLICATE |
        +-------+  <----------------  +-----------+
          |   ^     append rejected,        |
          |   |     reported unreachable    |
          |   |                             | the entries it needs are
          |   | it answered, the snapshot   | compacted: a snapshot is sent
          |   | is reported, or timed out   |
          |   |        +----------+         |
          |   +------  | SNAPSHOT |  <------+
          +--------->  +----------+

- PROBE: the leader does not know where the follower's log ends. It sends
  one append at a time and waits for the answer (or the next heartbeat
  response) before the next one, stepping ``next`` back on each rejection.
- REPLICATE: the follower's log matches up to ``match``. The leader streams
  appends optimistically (``next`` runs ahead of ``match``), at most a window
  of :class:`Inflights` unacknowledged messages.
- SNAPSHOT: the follower needs entries that are compacted; the leader sent a
  snapshot and sends nothing more until the follower answers, the caller
  reports the snapshot sent or failed, or (the answer was lost) the follower
  still answers heartbeats an election timeout later.
"""

from __future__ import annotations

from collections import deque
from enum import IntEnum


class ProgressState(IntEnum):
    """How the leader replicates to one follower (see the module docstring)."""

    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2


class Inflights:
    """The appends sent to a follower and not yet acknowledged, bounded in count and bytes."""

    __slots__ = ("_sent", "bytes", "capacity", "max_bytes")

    def __init__(self, capacity: int, max_bytes: int = 0) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._sent: deque[tuple[int, int]] = deque()  # (last index, bytes) per message
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._sent)

    def add(self, last_index: int, size: int) -> None:
        """Record a message whose last entry is ``last_index``."""
        self._sent.append((last_index, size))
        self.bytes += size

    def free_to(self, index: int) -> None:
        """Forget the messages whose last entry is at or below ``index``."""
        sent = self._sent
        while sent and sent[0][0] <= index:
            self.bytes -= sent.popleft()[1]

    def free_first(self) -> None:
        """Forget the oldest message (it was probably lost)."""
        if self._sent:
            self.bytes -= self._sent.popleft()[1]

    def full(self) -> bool:
        """Whether the window is closed."""
        return len(self._sent) >= self.capacity or (0 < self.max_bytes <= self.bytes)

    def reset(self) -> None:
        """Forget everything."""
        self._sent.clear()
        self.bytes = 0


class Progress:
    """The leader's view of one member: how far its log matches and what to send next."""

    __slots__ = (
        "inflights",
        "lease_ack",
        "match",
        "next",
        "pending_snapshot",
        "probe_sent",
        "recent_active",
        "snapshot_tick",
        "state",
    )

    def __init__(self, next_index: int, inflights: Inflights) -> None:
        self.match = 0
        """Highest index known to be stored by the member."""
        self.next = next_index
        """Index of the next entry to send."""
        self.state = ProgressState.PROBE
        self.probe_sent = False
        """PROBE: an append is outstanding; wait for an answer or a heartbeat response."""
        self.pending_snapshot = 0
        """SNAPSHOT: the index of the snapshot sent."""
        self.snapshot_tick = 0
        """SNAPSHOT: the leader's tick count when it sent the snapshot."""
        self.recent_active = False
        """Heard from since the last check-quorum round."""
        self.lease_ack = -1
        """The leader's tick at which it sent the latest heartbeat this member answered."""
        self.inflights = inflights

    def become_probe(self) -> None:
        """Go back to probing, after a rejection, an unreachable report or a snapshot."""
        if self.state == ProgressState.SNAPSHOT:
            # The snapshot may have been installed even if we heard nothing.
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflights.reset()

    def become_replicate(self) -> None:
        """Stream appends: the follower's log is known to match up to ``match``."""
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflights.reset()

    def become_snapshot(self, snapshot_index: int, tick: int) -> None:
        """A snapshot at ``snapshot_index`` was sent at leader tick ``tick``; wait for the follower."""
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = snapshot_index
        self.snapshot_tick = tick
        self.probe_sent = False
        self.inflights.reset()

    def is_paused(self) -> bool:
        """Whether the leader must not send appends to this member now."""
        if self.state == ProgressState.PROBE:
            return self.probe_sent
        if self.state == ProgressState.REPLICATE:
            return self.inflights.full()
        return True

    def sent(self, last_index: int, size: int, entry_count: int) -> None:
        """Record an append that carried entries up to ``last_index`` (``size`` bytes)."""
        if self.state == ProgressState.REPLICATE:
            if entry_count:
                self.next = last_index + 1
                self.inflights.add(last_index, size)
        else:
            self.probe_sent = True

    def acknowledged(self, index: int) -> bool:
        """The member stores entries up to ``index``; False when that is old news."""
        if index <= self.match:
            return False
        self.match = index
        self.next = max(self.next, index + 1)
        self.probe_sent = False
        return True

    def rejected(self, rejected_index: int, retry_index: int) -> bool:
        """The member refused an append after ``rejected_index``; retry from ``retry_index``.

        Returns False for a stale rejection (an answer to an older message).
        """
        if self.state == ProgressState.REPLICATE:
            if rejected_index <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected_index:
            return False
        if retry_index <= self.match:
            # The member holds less than it acknowledged: it lost its log (a wiped
            # data dir). Start over from what it holds; a lower match only holds
            # commits back, and a stale rejection costs one more probe.
            self.match = retry_index - 1
        self.next = max(min(rejected_index, retry_index), self.match + 1)
        self.probe_sent = False
        return True

    def describe(self) -> str:
        """A short readable form, e.g. ``REPLICATE match=5 next=6``."""
        text = f"{self.state.name} match={self.match} next={self.next}"
        if self.state == ProgressState.SNAPSHOT:
            text += f" snapshot={self.pending_snapshot}"
        elif self.state == ProgressState.PROBE and self.probe_sent:
            text += " paused"
        elif self.state == ProgressState.REPLICATE and self.inflights.full():
            text += " window-full"
        return text
