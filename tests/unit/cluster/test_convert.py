"""Raft messages survive the peer protocol byte for byte, and batches are sized from above."""

from __future__ import annotations

import dataclasses
import io
import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstream.peer.v1 import raft_pb2 as pb
from eventstream.server.cluster.transport.convert import (
    InvalidBatch,
    SnapshotAssembler,
    SnapshotRefused,
    decode_batch,
    encode_batch,
    message_size,
    snapshot_requests,
)
from eventstream.server.raft import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Membership,
    ReadIndexRequest,
    ReadIndexResponse,
    Snapshot,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)

G, S, R = 3, "n1", "n2"
BIG = (1 << 64) - 1


def every_message() -> list:
    entries = [Entry(7, 2, kind, os.urandom(size)) for kind, size in
               zip(EntryKind, (0, 100_000, 17, 1, 40))]
    entries = [Entry(7 + number, 2, e.kind, e.data) for number, e in enumerate(entries)]
    return [
        AppendEntries(G, S, R, 2, 6, 1, entries, 9),
        AppendEntries(G, S, R, BIG, BIG, BIG, [], BIG),
        AppendResponse(G, S, R, 2, 11),
        AppendResponse(G, S, R, 2, 11, True, 4, 1),
        VoteRequest(G, S, R, 5, 10, 4, pre_vote=True, transfer=True),
        VoteRequest(G, S, R, 5, 10, 4),
        VoteResponse(G, S, R, 5, True, True),
        VoteResponse(G, S, R, 5, False),
        Heartbeat(G, S, R, 5, 8, b"read-1", 42),
        Heartbeat(G, S, R, 5, 8),
        HeartbeatResponse(G, S, R, 5, b"read-1", 42),
        TimeoutNow(G, S, R, 6),
        ReadIndexRequest(G, S, R, 6, b"ctx"),
        ReadIndexResponse(G, S, R, 6, 99, b"ctx"),
    ]


def test_every_message_round_trips_through_the_wire():
    messages = every_message()
    for group in (0, G):
        regrouped = [dataclasses.replace(m, group_id=group) for m in messages]
        wire = encode_batch(group, regrouped)
        assert decode_batch(pb.ExchangeRequest.FromString(wire), S, R) == regrouped


def reference_append(m: AppendEntries) -> pb.RaftMessage:
    """The append as the protobuf library builds it: the oracle of the hand-framed encoding."""
    return pb.RaftMessage(term=m.term, append_entries=pb.AppendEntries(
        index=m.index, log_term=m.log_term, commit=m.commit,
        entries=[pb.Entry(index=e.index, term=e.term, kind=e.kind, data=e.data) for e in m.entries]))


@given(st.lists(st.tuples(st.integers(0, BIG), st.integers(0, BIG), st.sampled_from(list(EntryKind)),
                          st.binary(max_size=300)), max_size=5),
       st.integers(0, BIG), st.integers(0, BIG), st.integers(0, BIG), st.integers(0, BIG),
       st.integers(0, BIG))
def test_appends_are_framed_byte_for_byte_as_protobuf_would(entries, group, term, index, log_term, commit):
    message = AppendEntries(group, S, R, term, index, log_term,
                            [Entry(i, t, kind, data) for i, t, kind, data in entries], commit)
    expected = pb.ExchangeRequest(group_id=group, messages=[reference_append(message)])
    assert encode_batch(group, [message]) == expected.SerializeToString(deterministic=True)


def test_sender_and_recipient_come_from_the_stream_not_the_bytes():
    wire = encode_batch(G, [TimeoutNow(G, "n1", "n2", 6)])
    assert decode_batch(pb.ExchangeRequest.FromString(wire), "n3", "n4") == [TimeoutNow(G, "n3", "n4", 6)]


def test_a_batch_is_never_larger_than_its_messages_are_counted():
    for message in every_message():
        decoded = pb.ExchangeRequest.FromString(encode_batch(G, [message]))
        encoded = len(decoded.messages[0].SerializeToString())
        assert encoded <= message_size(message), message


def test_snapshots_are_not_sent_in_a_batch():
    snapshot = InstallSnapshot(G, S, R, 2, Snapshot(5, 1, Membership(frozenset({"n1"})), b""))
    with pytest.raises(TypeError):
        encode_batch(G, [snapshot])


def _assembled(requests: list[pb.InstallSnapshotRequest], max_bytes: int) -> InstallSnapshot:
    spool = io.BytesIO()
    assembler = SnapshotAssembler(S, R, max_bytes, spool)
    for request in requests:
        assembler.add(request)
    assembler.check()
    return assembler.message(spool.getvalue())


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 10_000])
def test_a_snapshot_is_chunked_and_reassembled(size: int):
    snapshot = Snapshot(5, 2, Membership(frozenset({"n1", "n2"}), frozenset({"n3"})), os.urandom(size))
    message = InstallSnapshot(G, S, R, 4, snapshot)
    requests = [pb.InstallSnapshotRequest.FromString(r.SerializeToString())
                for r in snapshot_requests(message, 1000)]
    assert len(requests) == 1 + -(-size // 1000)
    assert _assembled(requests, size) == message


def test_a_snapshot_stream_carries_the_data_it_is_given():
    message = InstallSnapshot(G, S, R, 4, Snapshot(5, 2, Membership(), b"app"))
    received = _assembled(list(snapshot_requests(message, 2, b"entries and app")), 100)
    assert received.snapshot.data == b"entries and app"


def test_a_snapshot_stream_that_changes_group_is_refused():
    requests = list(snapshot_requests(InstallSnapshot(G, S, R, 4, Snapshot(5, 2, Membership(), b"ab")), 1))
    requests[2].group_id = G + 1
    assembler = SnapshotAssembler(S, R, 10, io.BytesIO())
    assembler.add(requests[0])
    assembler.add(requests[1])
    with pytest.raises(InvalidBatch, match="group_id"):
        assembler.add(requests[2])


def test_a_damaged_snapshot_stream_is_refused_by_its_checksum():
    requests = list(snapshot_requests(InstallSnapshot(G, S, R, 4, Snapshot(5, 2, Membership(), b"abcd")), 2))
    requests[2].chunk = b"cX"
    with pytest.raises(SnapshotRefused, match="data_crc32") as refused:
        _assembled(requests, 10)
    assert refused.value.reason == "snapshot_damaged"


def test_a_snapshot_stream_cut_short_is_refused():
    requests = list(snapshot_requests(InstallSnapshot(G, S, R, 4, Snapshot(5, 2, Membership(), b"abcd")), 2))
    with pytest.raises(SnapshotRefused, match="2 of the 4 bytes") as refused:
        _assembled(requests[:2], 10)
    assert refused.value.reason == "snapshot_damaged"


@pytest.mark.parametrize("declared, limit", [(11, 10), (4, 10)])
def test_an_oversized_snapshot_stream_is_refused(declared: int, limit: int):
    requests = list(snapshot_requests(InstallSnapshot(G, S, R, 4, Snapshot(5, 2, Membership(), b"abcd")), 4))
    requests[0].header.data_bytes = declared
    requests[1].chunk = b"x" * (declared + 1)  # more than declared, or over the limit
    with pytest.raises(SnapshotRefused) as refused:
        _assembled(requests, limit)
    assert refused.value.reason == "snapshot_too_large"


@pytest.mark.parametrize("entries, field", [
    ([(8, 2)], "entries[0].index: 8, expected 7"),
    ([(7, 2), (9, 2)], "entries[1].index: 9, expected 8"),
    ([(7, 0)], "entries[0].term: 0, expected 1 to 3"),      # below the term of the entry before
    ([(7, 2), (8, 1)], "entries[1].term: 1, expected 2 to 3"),  # terms never go down in a log
    ([(7, 4)], "entries[0].term: 4, expected 1 to 3"),      # past the sender's term
])
def test_appends_whose_entries_do_not_follow_on_are_refused(entries, field):
    message = AppendEntries(G, S, R, 3, 6, 1, [Entry(i, t, EntryKind.EVENTS, b"x") for i, t in entries], 0)
    request = pb.ExchangeRequest.FromString(encode_batch(G, [message]))
    with pytest.raises(InvalidBatch, match=re.escape(f"messages[0].append_entries.{field}")):
        decode_batch(request, S, R)
