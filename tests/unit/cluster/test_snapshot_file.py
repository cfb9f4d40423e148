"""The snapshot file keeps the membership, the added members' addresses included."""

from __future__ import annotations

import struct

from eventstream.server.cluster.entry_raft_log import decode_snapshot, encode_snapshot
from eventstream.server.native import NativeWire
from eventstream.server.raft import Membership, Snapshot

HEAD = struct.Struct("<4sIQQII")  # magic, version, index, term, membership bytes, data bytes


def test_the_membership_and_its_addresses_survive_the_file():
    wire = NativeWire()
    membership = Membership(frozenset({"n1", "n4"}), frozenset({"n5"}),
                            (("n4", "10.0.0.4:9100"), ("n5", "10.0.0.5:9100")))
    snapshot = Snapshot(42, 3, membership, b"state")
    assert decode_snapshot(encode_snapshot(snapshot, wire), wire) == snapshot


def test_a_snapshot_written_before_addresses_existed_still_reads():
    wire = NativeWire()
    document = b'{"voters": ["n1"], "learners": []}'
    body = HEAD.pack(b"ESSN", 1, 7, 2, len(document), 1) + document + b"s"
    old = body + struct.pack("<I", wire.crc32c(body))
    assert decode_snapshot(old, wire) == Snapshot(7, 2, Membership(frozenset({"n1"})), b"s")
