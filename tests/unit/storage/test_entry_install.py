"""Installing a leader's entries and snapshot over a follower's whole log (``DiskEntryLog.install``).

The follower's log must end up holding exactly the leader's retained
entries, starting at the leader's first index, with the same records per
partition; a crash at any file operation of the install leaves either the
old log or the new one (checked by failing each rename and directory sync of
the install through the FileOps fault seam, then reopening).
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from eventstream.server.storage.entry_api import LogHalted
from eventstream.server.storage.entry_install import COMMITTED_DIR, STAGING_DIR
from eventstream.server.storage.entry_log import DiskEntryLog
from eventstream.server.storage.fileops import Fault, FaultyFileOps
from tests.support.entry_logs import CHECKSUMS, Rounds, disk_config, open_disk

PARTITIONS = 3


async def _filled(root: Path, rounds: int, seed_term: int = 1) -> DiskEntryLog:
    log = open_disk(disk_config(root, PARTITIONS))
    builder = Rounds.following(log)
    for number in range(rounds):
        builder.add_events(seed_term, {p: 5 + (number + p) % 4 for p in range(PARTITIONS)}, 1000 + number)
        await log.append(builder.finish())
    log.apply(log.last_index())
    return log


def _records(log: DiskEntryLog, partition: int) -> list[bytes]:
    out: list[bytes] = []
    offset = log.start_offset(partition)
    while offset < log.high_watermark(partition):
        result = log.read(partition, offset, 1000)
        assert result.first_offset == offset and result.records
        out += [bytes(record) for record in result.records]
        offset += len(result.records)
    return out


def _transfer(leader: DiskEntryLog, last: int) -> dict[str, object]:
    first = leader.first_index()
    batch = leader.entries(first, last + 1, 1 << 62)
    return {"first_index": first, "prev_term": leader.term(first - 1),
            "start_offsets": [leader.start_offset(p) for p in range(PARTITIONS)],
            "entries": bytes(batch.data[:batch.ends[-1]]), "snapshot": b"the snapshot"}


async def _leader_after_retention(root: Path) -> DiskEntryLog:
    leader = await _filled(root, 60)
    leader.drop_before(leader.last_index() - 5)
    assert leader.first_index() > 1, "the test needs a leader that dropped segments"
    return leader


async def test_the_follower_holds_the_leaders_retained_entries_after_an_install(tmp_path):
    leader = await _leader_after_retention(tmp_path / "leader")
    follower = await _filled(tmp_path / "follower", 4, seed_term=1)
    last = leader.last_index() - 2
    await follower.install(**_transfer(leader, last))  # type: ignore[arg-type]
    assert (follower.first_index(), follower.last_index()) == (leader.first_index(), last)
    assert follower.snapshot() == b"the snapshot"
    assert follower.term(last) == leader.term(last)
    follower.apply(last)
    for partition in range(PARTITIONS):
        assert follower.start_offset(partition) == leader.start_offset(partition)
        assert _records(follower, partition) == _records(leader, partition)[
            :len(_records(follower, partition))]
        assert follower.high_watermark(partition) == leader._next_at(partition, last)
    # It goes on from there as any log does, and reopens the same.
    builder = Rounds.following(follower)
    builder.add_events(2, {0: 3}, 5000)
    await follower.append(builder.finish())
    follower.close()
    reopened = open_disk(disk_config(tmp_path / "follower", PARTITIONS))
    assert (reopened.first_index(), reopened.last_index()) == (leader.first_index(), last + 1)
    assert reopened.snapshot() == b"the snapshot"
    reopened.close()
    leader.close()


async def test_an_install_of_no_entries_starts_the_log_after_the_snapshot(tmp_path):
    leader = await _leader_after_retention(tmp_path / "leader")
    follower = await _filled(tmp_path / "follower", 2)
    first = leader.first_index()
    await follower.install(first_index=first, prev_term=leader.term(first - 1),
                           start_offsets=[leader.start_offset(p) for p in range(PARTITIONS)],
                           entries=b"", snapshot=b"s")
    assert (follower.first_index(), follower.last_index()) == (first, first - 1)
    assert [follower.next_offset(p) for p in range(PARTITIONS)] == \
        [leader.start_offset(p) for p in range(PARTITIONS)]
    follower.close()
    leader.close()


# Every rename and directory sync the install makes, by the path they name: the
# commit point is the rename to COMMITTED_DIR; a fault before it leaves the old
# log, at or after it (completed at the next start) the new one.
FAULTS = [
    (Fault("rename", path=f"{STAGING_DIR}/snapshot"), "old"),
    (Fault("fsync_dir", path=f"{STAGING_DIR}/log"), "old"),
    (Fault("rename", path=COMMITTED_DIR), "old"),
    (Fault("rename", path="log.old"), "new"),
    (Fault("fsync_dir", nth=4, path="follower"), "new"),  # the root, after the commit point
    (Fault("rename", path="follower/snapshot"), "new"),
]


async def _crash_during_install(root: Path, leader: DiskEntryLog, fault: Fault,
                                bugs: frozenset[str] = frozenset()) -> tuple[object, object]:
    """Install over a log of 4 rounds with ``fault`` armed; (the log's state before, after reopening)."""
    old = await _filled(root, 4)
    await old.save_snapshot(b"old snapshot", old.last_index())
    before = _state(old)
    old.close()
    fault.error = errno.EIO
    ops = FaultyFileOps([])
    follower = DiskEntryLog(disk_config(root, PARTITIONS), CHECKSUMS, ops=ops, test_bugs=bugs)
    ops.faults.append(fault)  # armed once open: the install's calls are the ones counted
    with pytest.raises((LogHalted, OSError)):
        await follower.install(**_transfer(leader, leader.last_index() - 2))  # type: ignore[arg-type]
    assert fault.seen >= fault.nth, "the fault did not fire"
    assert follower.halted is not None
    follower.close()
    reopened = open_disk(disk_config(root, PARTITIONS))
    try:
        assert not (root / STAGING_DIR).exists() and not (root / COMMITTED_DIR).exists()
        return before, _state(reopened)
    finally:
        reopened.close()


def _state(log: DiskEntryLog) -> tuple[object, ...]:
    log.apply(log.last_index())
    return (log.first_index(), log.last_index(), log.snapshot(),
            [_records(log, p) for p in range(PARTITIONS)])


@pytest.mark.parametrize("fault, outcome", FAULTS, ids=[f"{f.op}-{f.path}" for f, _ in FAULTS])
async def test_a_crash_during_an_install_leaves_the_old_log_or_the_new_one(tmp_path, fault, outcome):
    leader = await _leader_after_retention(tmp_path / "leader")
    before, after = await _crash_during_install(tmp_path / "follower", leader, fault)
    if outcome == "old":
        assert after == before
    else:
        assert after[:3] == (leader.first_index(), leader.last_index() - 2, b"the snapshot")
    leader.close()


async def test_the_crash_check_sees_an_install_that_moves_the_old_log_first(tmp_path):
    leader = await _leader_after_retention(tmp_path / "leader")
    before, after = await _crash_during_install(tmp_path / "follower", leader,
                                                Fault("rename", path=COMMITTED_DIR),
                                                frozenset({"install_old_log_first"}))
    assert after != before and after[1] < leader.first_index()  # neither log: the old one is gone
    leader.close()
