"""The same entries applied on two fresh nodes give the same state, byte for byte.

A real server writes a log (keyed and unkeyed events, repeated producer ids,
a consumer group acknowledging part of it); its entries are then appended and
applied on fresh nodes as a follower's would be, cut into appends and apply
steps at random places. Every node ends with byte-identical entries and
partition contents, de-duplication windows and group offsets: the
application's state is a function of the entries alone.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from eventstream.server.broker.applier import EntryApplier
from eventstream.server.broker.group_state import GroupTable
from eventstream.server.cluster.entry_raft_log import entries_of
from eventstream.server.native import DedupTable, NativeWire
from eventstream.server.storage.entries import EntryBatch
from eventstream.server.storage.entry_api import EntryLog
from eventstream.server.storage.memory_entry_log import MemoryEntryLog
from eventstream.v1 import publish_pb2, subscribe_pb2
from tests.support.client import Stubs, event
from tests.support.entry_logs import disk_config, open_disk

from .test_groups import GroupMember, wait_for_metric

PARTITIONS = 4
EARLIEST = subscribe_pb2.START_FROM_EARLIEST
WINDOW_NS = 3600 * 10**9


async def write_a_log(server) -> None:  # type: ignore[no-untyped-def]
    """Traffic that makes every kind of state: events, duplicates, group offsets."""
    stubs = Stubs(server.target)
    rng = random.Random(1)
    for _ in range(30):
        ids = [f"id-{rng.randrange(200)}" if rng.random() < 0.7 else "" for _i in range(20)]
        await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=[
            event(f"det/{i % 3}", b"p%d" % i, id=event_id, key=f"k{rng.randrange(9)}")
            for i, event_id in enumerate(ids)]), timeout=30)
    member = GroupMember(stubs, "det-group", patterns=["det/#"], start_from=EARLIEST,
                         max_in_flight=50)
    while len(member.acked) < 150:
        member.ack(await member.events(1))
    await wait_for_metric(server, "eventstream_group_acks_total", len(member.acked),
                          group="det-group")
    member.kill()
    await stubs.close()


def stored_entries(data_dir: Path) -> EntryBatch:
    """Every entry of a stopped server's log, as its segments hold them."""
    log = open_disk(disk_config(data_dir, PARTITIONS))
    try:
        return log.entries(log.first_index(), log.last_index() + 1, 1 << 40)
    finally:
        log.close()


def cut(batch: EntryBatch, rng: random.Random) -> list[EntryBatch]:
    """The batch's entries as consecutive batches of random sizes (their bytes unchanged)."""
    data, pieces, first = memoryview(batch.data), [], 0
    while first < batch.count:
        last = min(batch.count, first + rng.randint(1, 7))
        pieces.append(EntryBatch.decode(bytes(data[batch.start(first):batch.ends[last - 1]]),
                                        NativeWire(), first_index=batch.first_index + first))
        first = last
    return pieces


async def apply_on_a_fresh_node(event_log: EntryLog, entries: EntryBatch,
                                seed: int) -> EntryApplier:
    """Append and apply ``entries`` as a follower does, in random steps."""
    applier = EntryApplier(event_log, NativeWire(), DedupTable(WINDOW_NS, 100_000),
                           GroupTable(PARTITIONS))
    rng = random.Random(seed)
    pending: list[EntryBatch] = []
    for piece in cut(entries, rng):
        await event_log.append(piece)
        pending.append(piece)
        if rng.random() < 0.5:
            for batch in pending:
                await applier.apply(entries_of(batch))
            pending = []
    for batch in pending:
        await applier.apply(entries_of(batch))
    return applier


def contents(event_log: EntryLog) -> list[list[tuple[bytes, str, int]]]:
    """Every partition's records with their topics and priorities."""
    out = []
    for partition in range(PARTITIONS):
        records, offset = [], event_log.start_offset(partition)
        while offset < event_log.high_watermark(partition):
            chunk = event_log.read(partition, offset, 100)
            records += zip(chunk.records, chunk.topics, chunk.priorities)
            offset += len(chunk.records)
        out.append(records)
    return out


@pytest.mark.parametrize("seed", range(4))
async def test_the_same_entries_give_the_same_state_on_every_node(start_server, tmp_path, seed):
    server = start_server({"storage": {"partitions": PARTITIONS},
                           "dedup": {"window_seconds": WINDOW_NS // 10**9}})
    await write_a_log(server)
    server.stop()  # a clean stop writes the group's last offsets
    entries = stored_entries(server.workdir / "data")
    assert entries.count > 30

    logs = [open_disk(disk_config(tmp_path / name, PARTITIONS)) for name in ("a", "b")]
    logs.append(MemoryEntryLog(PARTITIONS, 1 << 30))
    try:
        appliers = [await apply_on_a_fresh_node(log, entries, seed * 10 + n)
                    for n, log in enumerate(logs)]
        states = [applier.state() for applier in appliers]
        assert states[0] == states[1] == states[2]
        windows = [applier.window.encode() for applier in appliers]
        assert windows[0] == windows[1] == windows[2] and len(appliers[0].window) > 0
        groups = [applier.groups.encode() for applier in appliers]
        assert groups[0] == groups[1] == groups[2]
        assert appliers[0].groups.get("det-group") is not None
        assert sum(appliers[0].groups.records["det-group"].offsets) > 0
        assert contents(logs[0]) == contents(logs[1]) == contents(logs[2])
        assert sum(map(len, contents(logs[0]))) > 0
        # The log itself: the same entries, byte for byte (where segments start depends
        # on how the appends came, which is each node's own business).
        for log in logs:
            assert bytes(log.entries(1, log.last_index() + 1, 1 << 40).data) == bytes(entries.data)
    finally:
        for log in logs:
            log.close()
