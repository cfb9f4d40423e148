"""What a leader sends a follower far behind: its retained entries up to the snapshot, and the snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstream.server.cluster.entry_raft_log import EntryRaftLog
from eventstream.server.cluster.errors import SnapshotUnavailable
from eventstream.server.cluster.snapshot_transfer import TransferRefused, decode_transfer, without_entries
from eventstream.server.raft import Membership, Snapshot
from tests.support.entry_logs import CHECKSUMS, Rounds, disk_config, open_disk

PARTITIONS = 2
MEMBERS = Membership(frozenset({"n1", "n2", "n3"}))


async def _leader(root: Path) -> EntryRaftLog:
    log = open_disk(disk_config(root, PARTITIONS))
    builder = Rounds.following(log)
    for number in range(40):
        builder.add_events(1, {0: 6, 1: 3 + number % 3}, 1000 + number)
        await log.append(builder.finish())
    log.apply(log.last_index())
    leader = EntryRaftLog(log, CHECKSUMS, MEMBERS)
    log.retain_from(log.last_index() - 5)  # a RETENTION entry: dropped with the next snapshot
    await leader.save_snapshot(Snapshot(log.last_index(), 1, MEMBERS, b"application"))
    assert log.first_index() > 1
    return leader


async def test_the_transfer_carries_every_retained_entry_up_to_the_snapshot(tmp_path):
    leader = await _leader(tmp_path)
    log = leader.event_log
    index = log.last_index() - 1
    data = leader.transfer_data(Snapshot(index, 1, MEMBERS, b"application"))
    transfer = decode_transfer(data, PARTITIONS, index, CHECKSUMS)
    batch = log.entries(log.first_index(), index + 1, 1 << 62)
    assert (transfer.first_index, transfer.prev_term, transfer.application) == \
        (log.first_index(), log.term(log.first_index() - 1), b"application")
    assert transfer.start_offsets == [log.start_offset(p) for p in range(PARTITIONS)]
    assert bytes(transfer.entries) == bytes(batch.data[:batch.ends[-1]])
    with pytest.raises(TransferRefused, match="not up to the snapshot's index"):
        decode_transfer(data, PARTITIONS, index + 1, CHECKSUMS)
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 1
    with pytest.raises(TransferRefused, match="damaged"):
        decode_transfer(bytes(damaged), PARTITIONS, index, CHECKSUMS)
    # The test-only bug's transfer starts after the snapshot, with the offsets there.
    bare = decode_transfer(without_entries(data, PARTITIONS, index, CHECKSUMS), PARTITIONS, index,
                           CHECKSUMS)
    assert (bare.first_index, len(bare.entries)) == (index + 1, 0)
    assert bare.start_offsets == [log._next_at(p, index) for p in range(PARTITIONS)]
    log.close()


async def test_a_transfer_the_log_moved_past_or_over_the_limit_is_not_built(tmp_path):
    leader = await _leader(tmp_path)
    log = leader.event_log
    with pytest.raises(SnapshotUnavailable, match="after the snapshot"):
        leader.transfer_data(Snapshot(log.first_index() - 2, 1, MEMBERS, b"old"))
    leader.max_transfer_bytes = 100
    with pytest.raises(SnapshotUnavailable, match="over the limit of 100"):
        leader.transfer_data(Snapshot(log.last_index(), 1, MEMBERS, b"app"))
    log.close()
