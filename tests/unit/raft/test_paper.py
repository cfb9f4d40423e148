"""One test per claim of the Raft paper (and of the thesis for pre-vote,
check-quorum, leadership transfer and learners), plus properties that
compare the quorum arithmetic with a naive count.

Section numbers refer to "In Search of an Understandable Consensus
Algorithm (Extended Version)", Ongaro and Ousterhout, 2014.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstream.server.raft import (
    AppendEntries,
    AppendResponse,
    Config,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    Membership,
    MemoryStorage,
    Message,
    NotLeaderError,
    RaftNode,
    Role,
    VoteRequest,
    VoteResponse,
)
from eventstream.server.raft.quorum import VoteResult, committed_index, has_quorum, majority, vote_result
from eventstream.server.testing.raft_script import ScriptEnv

THREE = Membership(frozenset({"n1", "n2", "n3"}))


def env(*commands: str) -> ScriptEnv:
    """A scripted group after running ``commands`` (see ``raft_script``)."""
    scripted = ScriptEnv()
    for command in commands:
        output = scripted.run(command)
        assert not output.startswith("error"), f"{command}: {output}"
    return scripted


@dataclass
class Solo:
    """One node driven by hand: the test steps messages in and looks at what comes out."""

    raft: RaftNode
    storage: MemoryStorage

    def drain(self) -> list[Message]:
        """Handle every Ready (persist, apply) and return the messages to send."""
        messages: list[Message] = []
        while self.raft.has_ready():
            ready = self.raft.ready()
            self.storage.append(ready.entries)
            if ready.hard_state is not None:
                self.storage.set_hard_state(ready.hard_state)
            messages += ready.messages
            self.raft.advance()
        return messages


def node(config: Config | None = None, *, term: int = 0, vote: str | None = None,
         log_terms: Sequence[int] = (), commit: int = 0) -> Solo:
    """Node n1 of n1..n3, restarted from a log where entry i + 1 has term ``log_terms[i]``."""
    storage = MemoryStorage(THREE)
    storage.append([Entry(i + 1, t, EntryKind.EVENTS, b"%d" % (i + 1)) for i, t in enumerate(log_terms)])
    storage.set_hard_state(HardState(term, vote, commit))
    config = config or Config("n1", pre_vote=False, check_quorum=False)
    return Solo(RaftNode(config, storage, lambda n: 0), storage)


def append(term: int, index: int, log_term: int, entries: Sequence[Entry] = (), commit: int = 0,
           to: str = "n1", sender: str = "n2") -> AppendEntries:
    return AppendEntries(0, sender, to, term, index, log_term, list(entries), commit)


def entries(first: int, *terms: int) -> list[Entry]:
    return [Entry(first + k, t, EntryKind.EVENTS, b"x") for k, t in enumerate(terms)]


def role(scripted: ScriptEnv, node_id: str) -> Role:
    raft = scripted.nodes[node_id].raft
    assert raft is not None
    return raft.role


def raft_of(scripted: ScriptEnv, node_id: str) -> RaftNode:
    raft = scripted.nodes[node_id].raft
    assert raft is not None
    return raft


# 5.1 Raft basics ----------------------------------------------------------


def test_5_1_a_server_adopts_a_larger_term_it_sees():
    solo = node(term=2)
    solo.raft.step(Heartbeat(0, "n2", "n1", 5, 0))
    assert solo.raft.term == 5 and solo.raft.role is Role.FOLLOWER and solo.raft.leader_id == "n2"


@pytest.mark.parametrize("start", ["candidate", "leader"])
def test_5_1_a_candidate_or_leader_with_an_old_term_reverts_to_follower(start: str):
    scripted = env("add-nodes 3 prevote=false checkquorum=false", "elect n1")
    raft = raft_of(scripted, "n1")
    if start == "candidate":
        scripted.run("campaign n2")
        raft = raft_of(scripted, "n2")
        assert raft.role is Role.CANDIDATE
    newer = raft.term + 1
    raft.step(AppendResponse(0, "n3", raft.node_id, newer, 0))
    assert raft.role is Role.FOLLOWER and raft.term == newer


def test_5_1_a_request_with_a_stale_term_is_rejected():
    solo = node(Config("n1"), term=3, log_terms=[1])
    solo.raft.step(append(term=2, index=1, log_term=1, entries=entries(2, 2)))
    [answer] = solo.drain()
    # Rejected: its entries are not taken, and the answer carries the newer term.
    assert solo.raft.last_index == 1 and isinstance(answer, AppendResponse) and answer.term == 3


# 5.2 Leader election ------------------------------------------------------


def test_5_2_followers_stay_followers_while_they_hear_from_a_leader():
    scripted = env("add-nodes 3 prevote=false", "elect n1")
    for _ in range(50):  # five election timeouts, messages delivered every tick
        scripted.run("tick all")
        scripted.run("stabilize")
    assert [role(scripted, n) for n in ("n1", "n2", "n3")] == [Role.LEADER, Role.FOLLOWER, Role.FOLLOWER]
    assert raft_of(scripted, "n2").term == 1


def test_5_2_a_follower_without_a_leader_campaigns_after_its_timeout():
    solo = node(term=1)
    for _ in range(9):
        solo.raft.tick()
    assert solo.raft.role is Role.FOLLOWER
    solo.raft.tick()
    requests = solo.drain()
    assert solo.raft.role is Role.CANDIDATE and solo.raft.term == 2
    assert sorted(m.recipient for m in requests) == ["n2", "n3"]
    assert all(isinstance(m, VoteRequest) and m.term == 2 for m in requests)
    assert solo.raft.status().vote == "n1"


def test_5_2_election_timeouts_are_random_in_one_to_two_election_timeouts():
    timeouts = set()
    for draw in range(10):
        raft = RaftNode(Config("n1", pre_vote=False), MemoryStorage(THREE), lambda n, d=draw: d)
        ticks = 0
        while raft.role is Role.FOLLOWER:
            raft.tick()
            ticks += 1
        timeouts.add(ticks)
    assert timeouts == set(range(10, 20))


def test_5_2_a_server_votes_for_at_most_one_candidate_per_term():
    solo = node(term=1)
    solo.raft.step(VoteRequest(0, "n2", "n1", 2, 0, 0))
    solo.raft.step(VoteRequest(0, "n3", "n1", 2, 0, 0))
    solo.raft.step(VoteRequest(0, "n2", "n1", 2, 0, 0))  # a repeated request gets the same answer
    grants = [(m.recipient, m.granted) for m in solo.drain()]
    assert grants == [("n2", True), ("n3", False), ("n2", True)]


@pytest.mark.parametrize(("grants", "outcome"), [
    ({"n2": True}, Role.LEADER),
    ({"n2": False, "n3": False}, Role.FOLLOWER),
    ({"n2": False}, Role.CANDIDATE),
])
def test_5_2_a_candidate_wins_with_a_majority_of_votes(grants: dict[str, bool], outcome: Role):
    solo = node(term=1)
    solo.raft.campaign()
    for voter, granted in grants.items():
        solo.raft.step(VoteResponse(0, voter, "n1", 2, granted))
    assert solo.raft.role is outcome


@pytest.mark.parametrize(("leader_term", "outcome"), [(2, Role.FOLLOWER), (1, Role.CANDIDATE)])
def test_5_2_a_candidate_follows_a_leader_of_its_term_but_not_an_older_one(leader_term: int,
                                                                            outcome: Role):
    solo = node(term=1)
    solo.raft.campaign()
    solo.raft.step(Heartbeat(0, "n2", "n1", leader_term, 0))
    assert solo.raft.role is outcome


# 5.3 Log replication ------------------------------------------------------


def test_5_3_the_leader_appends_then_replicates_in_parallel():
    scripted = env("add-nodes 3", "elect n1")
    raft = raft_of(scripted, "n1")
    index = raft.propose(b"cmd")
    ready = raft.ready()
    assert [e.index for e in ready.entries] == [index]
    appends = [m for m in ready.messages if isinstance(m, AppendEntries)]
    assert sorted(m.recipient for m in appends) == ["n2", "n3"]
    assert all(m.entries[-1].data == b"cmd" for m in appends)


def test_5_3_an_entry_commits_once_a_majority_stores_it_and_applies_in_order():
    scripted = env("add-nodes 3", "elect n1", "partition n3 / n1 n2", "propose-many n1 a b")
    raft = raft_of(scripted, "n1")
    scripted.run("process-ready n1")
    assert raft.commit_index == 1  # only the leader stores 2 and 3
    scripted.run("stabilize")
    assert raft.commit_index == 3  # n1 and n2: a majority
    assert [e.data for e in scripted.nodes["n2"].applied] == [b"", b"a", b"b"]


def test_5_3_a_follower_refuses_entries_that_do_not_follow_its_log():
    solo = node(term=2, log_terms=[1, 1])
    solo.raft.step(append(term=2, index=2, log_term=2, entries=entries(3, 2)))
    [answer] = solo.drain()
    assert answer.reject and solo.raft.last_index == 2


def test_5_3_log_matching_an_accepted_append_truncates_a_conflicting_suffix():
    solo = node(term=2, log_terms=[1, 1, 1])
    solo.raft.step(append(term=3, index=1, log_term=1, entries=entries(2, 3)))
    [answer] = solo.drain()
    assert not answer.reject and answer.index == 2
    assert solo.raft.last_index == 2 and solo.raft.status().last_index == 2


# Figure 7: the leader of term 8 forces six kinds of follower log to match its own.
LEADER_LOG = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIGURE_7 = {
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}


@pytest.mark.parametrize("case", sorted(FIGURE_7))
def test_5_3_figure_7_the_leader_makes_every_follower_log_match_its_own(case: str):
    scripted = env("add-nodes 3 prevote=false checkquorum=false")
    logs = {"n1": LEADER_LOG, "n2": FIGURE_7[case], "n3": []}
    for node_id, terms in logs.items():
        storage = MemoryStorage(THREE)
        storage.append([Entry(i + 1, t, EntryKind.EVENTS, b"%d@t%d" % (i + 1, t))
                        for i, t in enumerate(terms)])
        storage.set_hard_state(HardState(7))
        scripted.nodes[node_id].storage = storage
        scripted.run(f"restart {node_id}")
    scripted.run("elect n1")
    assert role(scripted, "n1") is Role.LEADER and raft_of(scripted, "n1").term == 8
    scripted.run("propose n1 new")
    scripted.run("stabilize")
    leader_log = scripted.run("raft-log n1")
    assert scripted.run("raft-log n2") == leader_log == scripted.run("raft-log n3")
    assert raft_of(scripted, "n2").commit_index == 12


# 5.4.1 Election restriction ----------------------------------------------


@pytest.mark.parametrize(("last_term", "last_index", "granted"), [
    (2, 3, True),   # same last term, same length
    (2, 4, True),   # same last term, longer
    (2, 2, False),  # same last term, shorter
    (3, 1, True),   # newer last term wins whatever the length
    (1, 9, False),  # older last term loses whatever the length
])
def test_5_4_1_a_voter_refuses_a_candidate_whose_log_is_less_up_to_date(last_term: int, last_index: int,
                                                                         granted: bool):
    solo = node(term=2, log_terms=[1, 2, 2])
    solo.raft.step(VoteRequest(0, "n2", "n1", 3, last_index, last_term))
    [answer] = solo.drain()
    assert answer.granted is granted


# 5.4.2 Committing entries from previous terms ---------------------------------


def test_5_4_2_a_leader_never_commits_an_earlier_term_entry_by_counting_replicas():
    # n1 leads term 3 with 2@t1 from an earlier term; n2 stores it too (a majority).
    solo = node(term=2, log_terms=[1, 1], commit=1)
    solo.raft.campaign()
    solo.raft.step(VoteResponse(0, "n2", "n1", 3, True))
    assert solo.raft.role is Role.LEADER and solo.raft.last_index == 3  # its NOOP 3@t3
    solo.drain()
    solo.raft.step(AppendResponse(0, "n2", "n1", 3, 2))
    assert solo.raft.commit_index == 1
    # Once its own entry is stored by a majority, everything before it commits too.
    solo.raft.step(AppendResponse(0, "n2", "n1", 3, 3))
    assert solo.raft.commit_index == 3


# 5.5 Follower and candidate crashes -----------------------------------------


def test_5_5_appends_are_idempotent():
    solo = node(term=2, log_terms=[1])
    message = append(term=2, index=1, log_term=1, entries=entries(2, 2, 2), commit=1)
    solo.raft.step(message)
    first = solo.drain()
    solo.raft.step(message)
    second = solo.drain()
    assert [m.index for m in first] == [m.index for m in second] == [3]
    assert solo.raft.last_index == 3


def test_5_5_a_restarted_follower_keeps_its_term_vote_and_log():
    scripted = env("add-nodes 3 prevote=false", "elect n1", "propose n1 a", "stabilize", "crash n2",
                   "restart n2")
    raft = raft_of(scripted, "n2")
    assert (raft.term, raft.status().vote, raft.last_index, raft.commit_index) == (1, "n1", 2, 2)


# 8 Client interaction -----------------------------------------------------


def test_8_a_new_leader_commits_a_blank_entry_of_its_term():
    scripted = env("add-nodes 3", "elect n1")
    assert scripted.run("raft-log n2") == "1@t1 NOOP"


def test_8_only_the_leader_accepts_proposals_and_names_it():
    scripted = env("add-nodes 3", "elect n1")
    with pytest.raises(NotLeaderError) as refused:
        raft_of(scripted, "n2").propose(b"x")
    assert refused.value.leader_hint == "n1"


def test_8_a_read_waits_until_the_leader_confirms_it_leads():
    scripted = env("add-nodes 3", "elect n1", "partition n1 / n2 n3", "read-index n1 r1")
    assert "ReadState" not in scripted.run("stabilize")
    scripted.run("heal")
    scripted.run("tick-heartbeat n1")
    assert 'ReadState index=1 ctx="r1"' in scripted.run("stabilize")


# Thesis: pre-vote, check-quorum, leadership transfer, learners -----------------


def test_thesis_9_6_pre_vote_keeps_an_isolated_node_from_raising_its_term():
    scripted = env("add-nodes 3", "elect n1", "partition n3 / n1 n2")
    for _ in range(5):
        scripted.run("tick-election n3")
        scripted.run("stabilize")
    assert raft_of(scripted, "n3").term == 1


def test_thesis_6_2_a_leader_without_a_quorum_steps_down():
    scripted = env("add-nodes 3", "elect n1", "partition n1 / n2 n3", "tick-election n1",
                   "tick-election n1")
    assert role(scripted, "n1") is Role.FOLLOWER


def test_thesis_3_10_leadership_transfer_elects_the_target():
    scripted = env("add-nodes 3", "elect n1", "transfer-leadership n1 n3", "stabilize")
    assert role(scripted, "n3") is Role.LEADER and raft_of(scripted, "n3").term == 2


def test_thesis_4_2_1_learners_do_not_count_for_commit():
    scripted = env("add-nodes 3 voters=n1,n2 learners=n3", "elect n1", "partition n2 / n1 n3",
                   "propose n1 a", "stabilize")
    assert raft_of(scripted, "n1").commit_index == 1
    assert raft_of(scripted, "n3").last_index == 2


# Quorum arithmetic against a naive count --------------------------------------

voter_sets = st.lists(st.sampled_from([f"v{k}" for k in range(7)]), min_size=1, max_size=7, unique=True)


def naive_committed(voters: list[str], acked: dict[str, int]) -> int:
    """The largest index that at least a majority of voters acknowledged, by trying every index."""
    best = 0
    for index in range(0, max(acked.values(), default=0) + 1):
        if sum(1 for voter in voters if acked.get(voter, 0) >= index) * 2 > len(voters):
            best = index
    return best


@given(voter_sets, st.data())
def test_committed_index_matches_a_naive_count(voters: list[str], data: st.DataObject):
    acked = {voter: data.draw(st.integers(0, 20)) for voter in voters}
    assert committed_index(voters, lambda voter: acked[voter]) == naive_committed(voters, acked)


@given(voter_sets, st.data())
def test_vote_result_matches_a_naive_count(voters: list[str], data: st.DataObject):
    votes = {voter: data.draw(st.sampled_from([True, False, None])) for voter in voters}
    cast = {voter: vote for voter, vote in votes.items() if vote is not None}
    granted = sum(1 for vote in cast.values() if vote)
    rejected = len(cast) - granted
    if granted * 2 > len(voters):
        expected = VoteResult.WON
    elif (len(voters) - rejected) * 2 <= len(voters):
        expected = VoteResult.LOST
    else:
        expected = VoteResult.PENDING
    assert vote_result(voters, cast) is expected


@given(voter_sets, st.sets(st.sampled_from([f"v{k}" for k in range(9)])))
def test_has_quorum_matches_a_naive_count(voters: list[str], present: set[str]):
    assert has_quorum(voters, present) == (len(set(voters) & present) * 2 > len(voters))
    assert majority(len(voters)) * 2 > len(voters) >= (majority(len(voters)) - 1) * 2
