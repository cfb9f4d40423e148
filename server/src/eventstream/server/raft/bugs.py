"""Known Raft bugs that tests can switch back on, to prove the checkers catch them.

TEST ONLY. Production code never sets ``Config.injected_bugs``; the
simulation's tests set one at a time and assert that the simulation then
reports a safety violation. Pure: only the enum.
"""

from __future__ import annotations

from enum import Enum


class InjectedBug(Enum):
    """A deliberate defect (see the module docstring)."""

    COMMIT_OLD_TERM_BY_COUNTING = "commit-old-term"
    """The leader commits an entry of an earlier term once a majority stores
    it (Figure 8 of the Raft paper shows how that loses a committed entry)."""

    VOTE_WITHOUT_LOG_CHECK = "vote-without-log-check"
    """Votes are granted without checking that the candidate's log is at least
    as up to date as the voter's."""

    FORGET_VOTE_ON_RESTART = "forget-vote"
    """A restarted node ignores the vote in its persisted hard state."""

    APPLY_BEFORE_PERSIST = "apply-before-persist"
    """The caller sends a Ready's messages and applies its committed entries
    before it persists its entries and hard state (a caller bug: the core
    ignores it; the simulation's shell honours it)."""
