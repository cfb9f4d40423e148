"""The core's API at its edges: refusals, misuse, snapshots on demand, single voters, config checks."""

from __future__ import annotations

import random

import pytest

from eventstream.server.raft import (
    AppendResponse,
    Config,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    InstallSnapshot,
    Membership,
    MembershipChange,
    MembershipError,
    MembershipOp,
    MemoryStorage,
    NotLeaderError,
    RaftInvariantError,
    RaftNode,
    ReadOnlyMode,
    Ready,
    Role,
    Snapshot,
    UnavailableError,
    VoteResponse,
    encode_membership_entry,
)
from eventstream.server.raft.membership import apply_change
from eventstream.server.raft.quorum import committed_index
from eventstream.server.raft.read_only import ReadIndexTracker
from eventstream.server.testing.raft_script import ScriptEnv

ALONE = Membership(frozenset({"n1"}))
THREE = Membership(frozenset({"n1", "n2", "n3"}))


def env(*commands: str) -> ScriptEnv:
    scripted = ScriptEnv()
    for command in commands:
        scripted.run(command)
    return scripted


def handle(raft: RaftNode, storage: MemoryStorage) -> Ready:
    ready = raft.ready()
    if ready.snapshot is not None:
        storage.apply_snapshot(ready.snapshot)
    storage.append(ready.entries)
    if ready.hard_state is not None:
        storage.set_hard_state(ready.hard_state)
    raft.advance()
    return ready


def test_a_single_voter_leads_at_once_commits_alone_and_reads_at_once():
    storage = MemoryStorage(ALONE)
    raft = RaftNode(Config("n1"), storage, random.Random(1))
    raft.campaign()
    assert raft.role is Role.LEADER
    index = raft.propose(b"a")
    ready = handle(raft, storage)
    assert [e.index for e in ready.committed_entries] == [1, index]
    raft.read_index(b"r")
    assert handle(raft, storage).read_states[0].index == index
    with pytest.raises(ValueError, match="no other voter"):
        raft.transfer_leadership()


def test_every_message_is_tagged_with_the_group_and_both_node_ids():
    members = Membership(frozenset({"eventstream-0", "eventstream-1"}))
    raft = RaftNode(Config("eventstream-0", group_id=7), MemoryStorage(members), lambda n: 0)
    raft.campaign()
    [request] = raft.ready().messages
    assert (request.group_id, request.sender, request.recipient) == (7, "eventstream-0", "eventstream-1")


def test_misuse_is_refused():
    raft = RaftNode(Config("n1"), MemoryStorage(ALONE), lambda n: 0)
    with pytest.raises(ValueError, match="group"):
        raft.step(Heartbeat(7, "n2", "n1", 1, 0))
    with pytest.raises(ValueError, match="stepped into"):
        raft.step(Heartbeat(0, "n2", "n9", 1, 0))
    with pytest.raises(RuntimeError, match="without a Ready"):
        raft.advance()
    raft.ready()
    with pytest.raises(RuntimeError, match="before advance"):
        raft.ready()
    raft.advance()
    with pytest.raises(NotLeaderError):
        raft.transfer_leadership()
    raft.campaign()
    with pytest.raises(ValueError, match="written by the core"):
        raft.propose(b"", EntryKind.NOOP)
    with pytest.raises(ValueError, match="written by the core"):
        raft.propose_many([(EntryKind.EVENTS, b"a"), (EntryKind.MEMBERSHIP, b"")])
    assert raft.propose_many([]) == range(2, 2)
    assert raft.propose_many([(EntryKind.GROUPS, b"g"), (EntryKind.RETENTION, b"r")]) == range(2, 4)


@pytest.mark.parametrize(("settings", "error"), [
    ({"node_id": ""}, "node_id"),
    ({"heartbeat_ticks": 0}, "heartbeat_ticks"),
    ({"election_ticks": 1}, "election_ticks"),
    ({"max_inflight_msgs": 0}, "max_inflight_msgs"),
    ({"read_only": ReadOnlyMode.LEASE, "check_quorum": False}, "LEASE needs check_quorum"),
])
def test_config_errors_are_all_reported(settings: dict, error: str):
    with pytest.raises(ValueError, match=error):
        Config(**{"node_id": "n1", **settings})


def test_a_node_does_not_campaign_before_applying_committed_membership_entries():
    storage = MemoryStorage(THREE)
    change = MembershipChange(MembershipOp.REMOVE_NODE, "n1")
    membership = encode_membership_entry(change, apply_change(THREE, change))
    storage.append([Entry(1, 1, EntryKind.NOOP, b""), Entry(2, 1, EntryKind.MEMBERSHIP, membership)])
    storage.set_hard_state(HardState(1, None, 2))
    raft = RaftNode(Config("n1", pre_vote=False), storage, lambda n: 0)
    raft.campaign()
    raft.campaign()  # the scan is remembered
    assert raft.role is Role.FOLLOWER
    handle(raft, storage)  # applies the removal: n1 is no longer a voter
    raft.campaign()
    assert raft.role is Role.FOLLOWER and "n1" not in raft.membership


def test_a_snapshot_the_follower_already_holds_only_moves_its_commit():
    storage = MemoryStorage(THREE)
    storage.append([Entry(1, 1, EntryKind.EVENTS, b"a"), Entry(2, 1, EntryKind.EVENTS, b"b")])
    raft = RaftNode(Config("n1"), storage, lambda n: 0)
    raft.step(InstallSnapshot(0, "n2", "n1", 1, Snapshot(2, 1, THREE, b"")))
    ready = handle(raft, storage)
    assert ready.snapshot is None and raft.commit_index == 2
    assert ready.messages == [AppendResponse(0, "n1", "n2", 1, 2)]


class SnapshotLater(MemoryStorage):
    """A storage that makes snapshots on demand: none is ready while ``pending``."""

    pending = False

    def snapshot(self) -> Snapshot:
        if self.pending:
            raise UnavailableError("being taken")
        return super().snapshot()


def test_the_leader_asks_for_a_snapshot_when_storage_has_none_ready():
    scripted = env("add-nodes 3 prevote=false checkquorum=false", "elect n1", "partition n3 / n1 n2",
                   "propose-many n1 a b", "stabilize")
    leader = scripted.nodes["n1"]
    storage = SnapshotLater(THREE)
    storage.append(leader.storage.entries(1, 4))
    storage.set_hard_state(leader.storage.initial_state())
    storage.create_snapshot(3, THREE, b"app")
    storage.compact(3)
    leader.storage = storage
    scripted.run("restart n1")
    storage.pending = True
    scripted.run("heal")
    scripted.run("campaign n1")
    output = scripted.run("stabilize")
    assert "SnapshotRequest" in output
    storage.pending = False
    scripted.run("tick-heartbeat n1")
    assert "Snapshot t" in scripted.run("stabilize")
    assert scripted.nodes["n3"].raft.commit_index == scripted.nodes["n1"].raft.commit_index  # type: ignore[union-attr]


def test_a_snapshot_older_than_the_compacted_log_is_a_broken_storage():
    storage = MemoryStorage(THREE)
    storage.append([Entry(1, 1, EntryKind.EVENTS, b"a"), Entry(2, 1, EntryKind.EVENTS, b"b")])
    storage.set_hard_state(HardState(1, "n1", 2))
    storage.create_snapshot(2, THREE, b"")
    storage.compact(2)
    raft = RaftNode(Config("n1", pre_vote=False), storage, lambda n: 0)
    storage._snapshot = Snapshot(1, 1, THREE, b"")
    with pytest.raises(RaftInvariantError, match="snapshot covers only"):
        RaftNode(Config("n1"), storage, lambda n: 0)
    raft.campaign()
    raft.step(VoteResponse(0, "n2", "n1", 2, True))
    assert raft.role is Role.LEADER
    # n2 has nothing: the leader must go back past its compacted entries.
    with pytest.raises(RaftInvariantError, match="snapshot covers only"):
        raft.step(AppendResponse(0, "n2", "n1", 2, 2, True, 0, 0))


def test_removing_the_transfer_target_abandons_the_transfer():
    scripted = env("add-nodes 3", "elect n1", "partition n3 / n1 n2", "transfer-leadership n1 n3")
    leader = scripted.nodes["n1"].raft
    assert leader is not None and leader.status().transferring_to == "n3"
    with pytest.raises(NotLeaderError):
        leader.propose_membership_change(MembershipChange(MembershipOp.REMOVE_NODE, "n3"))
    scripted.run("tick-election n1")  # the transfer times out
    assert not leader.membership_pending
    leader.propose_membership_change(MembershipChange(MembershipOp.REMOVE_NODE, "n3"))
    assert leader.membership_pending  # until applied, another change is refused
    leader.transfer_leadership("n3")
    scripted.run("stabilize")
    assert leader.status().transferring_to is None and leader.role is Role.LEADER
    assert not leader.membership_pending


def test_a_candidate_removed_from_the_voters_gives_up():
    scripted = env("add-nodes 3 prevote=false", "elect n1", "propose-change n1 remove-node n3",
                   "process-ready n1", "deliver-msgs n3", "campaign n3", "process-ready n3")
    candidate = scripted.nodes["n3"].raft
    assert candidate is not None and candidate.role is Role.CANDIDATE
    candidate.step(Heartbeat(0, "n1", "n3", 1, 2))  # stale: n3 is at term 2
    scripted.run("stabilize n1 n2")
    # n1 learns term 2 from n3's answers and steps down; n3 then applies its own removal.
    scripted.run("stabilize")
    assert candidate.role is not Role.LEADER


def test_lease_mode_campaign_waits_for_the_lease_and_reports_follow_their_state():
    scripted = env("add-nodes 3 readonly=lease", "elect n1")
    follower = scripted.nodes["n2"].raft
    assert follower is not None
    follower.campaign()
    assert follower.role is Role.FOLLOWER
    leader = scripted.nodes["n1"].raft
    assert leader is not None
    leader.report_snapshot("n2", True)  # not sending a snapshot: nothing to do
    leader.report_unreachable("n9")
    assert leader.status().progress["n2"].state == "REPLICATE"


def test_small_pieces():
    assert committed_index([], lambda voter: 5) == 0
    tracker = ReadIndexTracker()
    assert len(tracker) == 0 and tracker.release_through(b"x") == [] and tracker.ack(b"x", "n1") is None
    assert tracker.add(1, b"a", "n1") and not tracker.add(1, b"a", "n1") and len(tracker) == 1
    assert Ready(None, None, None, [], False, [], [], [], False).is_empty()
    with pytest.raises(MembershipError, match="unknown membership op"):
        apply_change(THREE, MembershipChange(99, "n4"))  # type: ignore[arg-type]
