"""The Raft package's public names are pinned, so they cannot change by accident."""

from __future__ import annotations

import eventstream.server.raft as raft

EXPECTED = {
    "AppendEntries", "AppendResponse", "CompactedError", "Config", "Entry", "EntryKind", "FollowerStatus",
    "HardState", "Heartbeat", "HeartbeatResponse", "InjectedBug", "InstallSnapshot", "LogStorage",
    "Membership", "MembershipChange", "MembershipError", "MembershipOp", "MemoryStorage", "Message",
    "NotLeaderError", "Payload", "RaftInvariantError", "RaftNode", "ReadIndexRequest", "ReadIndexResponse",
    "ReadOnlyMode", "ReadState", "Ready", "Role", "Snapshot", "SoftState", "Status", "StorageError",
    "TimeoutNow", "UnavailableError", "VoteRequest", "VoteResponse", "apply_change",
    "decode_membership_entry", "encode_membership_entry",
}


def test_all_is_pinned_and_resolves():
    assert set(raft.__all__) == EXPECTED
    for name in raft.__all__:
        assert getattr(raft, name) is not None


def test_entry_kind_values_are_append_only():
    assert {kind.name: kind.value for kind in raft.EntryKind} == {
        "NOOP": 0, "EVENTS": 1, "GROUPS": 2, "RETENTION": 3, "MEMBERSHIP": 4}
    assert {op.name: op.value for op in raft.MembershipOp} == {
        "ADD_VOTER": 1, "ADD_LEARNER": 2, "PROMOTE_LEARNER": 3, "REMOVE_NODE": 4}
