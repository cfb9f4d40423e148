"""wait_caught_up on /status documents written by hand, one list of views per poll.

It must not pass while a just-elected leader has not committed its own
log, however far a just-restarted node applied from its own log; it takes
its mark again when another node leads, and gives up with the views when
the nodes never catch up.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cluster_reads import wait_caught_up


def view(role: str, term: int, commit: int, applied: int, last: int, node: str) -> dict[str, Any]:
    """A node's /status ``cluster`` section: its own member's match index is its last index."""
    return {"role": role, "term": term, "commit_index": commit, "applied_index": applied,
            "members": [{"node_id": node, "match_index": last}]}


class Polls:
    """Answers ``status`` from one scripted set of views per poll (the last one repeats)."""

    def __init__(self, *polls: dict[str, dict[str, Any]]) -> None:
        self._polls = list(polls)
        self.taken = 0

    def status(self, node: str) -> dict[str, Any]:
        """The node's document in the current poll (the first node asked starts a poll)."""
        if node == "n1":
            self.taken += 1
        return {"cluster": self._polls[min(self.taken, len(self._polls)) - 1][node]}


def test_a_just_elected_leaders_commit_index_is_no_mark():
    # n1 was just elected at term 2 (its NOOP is entry 51, commit index not known yet);
    # n2 restarted and replayed 50 entries of its own log.
    polls = Polls(
        {"n1": view("leader", 2, 0, 50, 51, "n1"), "n2": view("follower", 1, 50, 50, 50, "n2")},
        {"n1": view("leader", 2, 51, 51, 51, "n1"), "n2": view("follower", 2, 50, 50, 51, "n2")},
        {"n1": view("leader", 2, 51, 51, 51, "n1"), "n2": view("follower", 2, 51, 51, 51, "n2")})
    wait_caught_up(polls, ["n1", "n2"], timeout=10.0)
    assert polls.taken == 3


def test_a_new_leader_sets_the_mark_again():
    polls = Polls(
        {"n1": view("leader", 2, 40, 40, 41, "n1"), "n2": view("follower", 2, 40, 40, 41, "n2")},
        # n2 leads at term 3 with a NOOP at 42; n1 applied 41, past the old mark.
        {"n1": view("follower", 3, 41, 41, 42, "n1"), "n2": view("leader", 3, 41, 41, 42, "n2")},
        {"n1": view("follower", 3, 42, 42, 42, "n1"), "n2": view("leader", 3, 42, 42, 42, "n2")})
    wait_caught_up(polls, ["n1", "n2"], timeout=10.0)
    assert polls.taken == 3


def test_nodes_that_never_catch_up_fail_the_wait_with_the_views():
    polls = Polls(
        {"n1": view("leader", 2, 51, 51, 51, "n1"), "n2": view("follower", 2, 51, 30, 51, "n2")})
    with pytest.raises(AssertionError, match="not caught up within"):
        wait_caught_up(polls, ["n1", "n2"], timeout=0.2)
