"""Membership changes and their versioned entry format."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstream.server.raft import (
    Membership,
    MembershipChange,
    MembershipError,
    MembershipOp,
    apply_change,
    decode_membership_entry,
    encode_membership_entry,
)

ids = st.text(min_size=1, max_size=20)


@given(st.sampled_from(list(MembershipOp)), ids, st.sets(ids, max_size=5), st.sets(ids, max_size=5))
def test_an_entry_decodes_to_what_was_encoded(op: MembershipOp, node: str, voters: set[str],
                                              learners: set[str]):
    membership = Membership(frozenset(voters), frozenset(learners - voters))
    change = MembershipChange(op, node)
    data = encode_membership_entry(change, membership)
    assert decode_membership_entry(data) == (change, membership)
    assert data[0] == 1  # format version


def test_the_format_is_fixed():
    data = encode_membership_entry(MembershipChange(MembershipOp.ADD_LEARNER, "d"),
                                   Membership(frozenset({"b", "a"}), frozenset({"d"})))
    assert data == bytes.fromhex("01 02 0001 64 0002 0001 61 0001 62 0001 0001 64")


@pytest.mark.parametrize(("data", "error"), [
    (b"", "truncated"),
    (b"\x03\x01\x00\x01a\x00\x00\x00\x00", "version 3"),
    (b"\x02\x01\x00\x01a\x00\x00\x00\x00", "truncated"),  # version 2 needs its address table
    (b"\x02\x02\x00\x01a\x00\x00\x00\x00\x00\x01\x00\x01z\x00\x01x", "not members"),
    (b"\x01\x09\x00\x01a\x00\x00\x00\x00", "unknown membership op 9"),
    (b"\x01\x01\x00\x05a", "truncated"),
    (b"\x01\x01\x00\x01a\x00\x00\x00\x00!", "trailing"),
    (b"\x01\x01\x00\x00\x00\x00\x00\x00", "empty node id"),
    (b"\x01\x01\x00\x01\xff\x00\x00\x00\x00", "UTF-8"),
])
def test_malformed_entries_are_refused(data: bytes, error: str):
    with pytest.raises(MembershipError, match=error):
        decode_membership_entry(data)


def test_added_members_keep_their_address_until_removed():
    added = apply_change(START, MembershipChange(MembershipOp.ADD_LEARNER, "d", "10.0.0.4:9100"))
    assert added.address_map() == {"d": "10.0.0.4:9100"}
    data = encode_membership_entry(MembershipChange(MembershipOp.ADD_LEARNER, "d", "h:1"),
                                   Membership(frozenset({"a"}), frozenset({"d"}), (("d", "h:1"),)))
    assert data == bytes.fromhex("02 02 0001 64 0001 0001 61 0001 0001 64 0001 0001 64 0003 683a31")
    assert decode_membership_entry(data)[0].address == "h:1"
    promoted = apply_change(added, MembershipChange(MembershipOp.PROMOTE_LEARNER, "d"))
    assert promoted.address_map() == {"d": "10.0.0.4:9100"} and "d" in promoted.voters
    assert decode_membership_entry(encode_membership_entry(
        MembershipChange(MembershipOp.PROMOTE_LEARNER, "d"), promoted))[1] == promoted
    removed = apply_change(promoted, MembershipChange(MembershipOp.REMOVE_NODE, "d"))
    assert removed.addresses == () and "d" not in removed
    with pytest.raises(MembershipError, match="not members"):
        Membership(frozenset({"a"}), addresses=(("b", "h:1"),))


def test_ids_must_fit_the_format():
    with pytest.raises(MembershipError, match="node id"):
        encode_membership_entry(MembershipChange(MembershipOp.ADD_VOTER, ""), Membership())


START = Membership(frozenset({"a", "b"}), frozenset({"c"}))


@pytest.mark.parametrize(("op", "node", "voters", "learners"), [
    (MembershipOp.ADD_VOTER, "d", "abd", "c"),
    (MembershipOp.ADD_LEARNER, "d", "ab", "cd"),
    (MembershipOp.PROMOTE_LEARNER, "c", "abc", ""),
    (MembershipOp.REMOVE_NODE, "a", "b", "c"),
    (MembershipOp.REMOVE_NODE, "c", "ab", ""),
])
def test_single_server_changes(op: MembershipOp, node: str, voters: str, learners: str):
    expected = Membership(frozenset(voters), frozenset(learners))
    assert apply_change(START, MembershipChange(op, node)) == expected


@pytest.mark.parametrize(("op", "node", "error"), [
    (MembershipOp.ADD_VOTER, "a", "already a member"),
    (MembershipOp.ADD_LEARNER, "c", "already a member"),
    (MembershipOp.PROMOTE_LEARNER, "a", "not a learner"),
    (MembershipOp.REMOVE_NODE, "z", "not a member"),
    (MembershipOp.ADD_VOTER, "", "needs a node id"),
])
def test_changes_that_do_not_fit_are_refused(op: MembershipOp, node: str, error: str):
    with pytest.raises(MembershipError, match=error):
        apply_change(START, MembershipChange(op, node))


def test_the_last_voter_cannot_be_removed_and_nobody_is_both():
    with pytest.raises(MembershipError, match="last voter"):
        apply_change(Membership(frozenset({"a"})), MembershipChange(MembershipOp.REMOVE_NODE, "a"))
    with pytest.raises(MembershipError, match="both voter and learner"):
        Membership(frozenset({"a"}), frozenset({"a"}))
    assert START.describe() == "voters=a,b learners=c" and START.members() == ["a", "b", "c"]
    assert MembershipChange(MembershipOp.PROMOTE_LEARNER, "c").describe() == "promote-learner c"
