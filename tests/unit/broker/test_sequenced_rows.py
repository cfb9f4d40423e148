"""The node that sequenced an entry applies it from its own rows, with the state a scan gives.

Rounds with repeated producer ids (within a submission, across submissions
and rounds), ids of the server's form, server-assigned ids and keys over
four partitions are sequenced once; one applier takes them with the
sequencer's rows (as the leader does), the other scans every entry (as a
follower without a scanning persist does), a third takes the rows its
persist's checking scan handed over (as a follower does). All must end with
byte-identical state, windows and stored blocks, and only the second may
have scanned.
"""

from __future__ import annotations

import gc
import random
import sys

import pytest

from eventstream.server.broker.applier import EntryApplier
from eventstream.server.broker.group_state import GroupTable
from eventstream.server.broker.lanes import submissions_of
from eventstream.server.broker.sequencer import Sequencer
from eventstream.server.cluster.entry_raft_log import EntryRaftLog, entries_of
from eventstream.server.native import DedupTable, EventEncoder, Limits, NativeWire
from eventstream.server.raft import Entry, Membership, Ready
from eventstream.server.storage.entries import CorruptEntry
from eventstream.server.storage.memory_entry_log import MemoryEntryLog
from eventstream.v1 import common_pb2, publish_pb2

PARTITIONS = 4
WINDOW_NS = 3600 * 10**9
PREFIX = b"0123456789abcdef-"
"""Of the form the server gives its ids (16 hex digits, '-'), which a scan leaves out."""


def request(rng: random.Random, round_number: int) -> bytes:
    """A PublishBatch whose events carry every kind of id."""
    events = []
    for i in range(rng.randint(1, 40)):
        kind = rng.random()
        if kind < 0.5:
            event_id = f"id-{rng.randrange(60)}"            # repeats often
        elif kind < 0.6:
            event_id = f"{rng.randrange(1 << 60):016x}-{rng.randrange(99):x}"  # the server's form
        else:
            event_id = ""                                  # the server assigns one
        events.append(common_pb2.Event(topic=f"rows/{i % 3}", payload=b"p%d" % round_number,
                                       id=event_id, key=f"k{rng.randrange(11)}"))
    return publish_pb2.PublishBatchRequest(events=events).SerializeToString()


def applier_of(event_log: MemoryEntryLog) -> EntryApplier:
    return EntryApplier(event_log, NativeWire(), DedupTable(WINDOW_NS, 150),
                        GroupTable(PARTITIONS))


async def test_applying_with_the_sequencers_rows_gives_the_state_a_scan_gives():
    rng = random.Random(7)
    encoder = EventEncoder(Limits(255, 1024, 255, 255, 8), PREFIX)
    leader_log, follower_log = MemoryEntryLog(PARTITIONS, 1 << 30), MemoryEntryLog(PARTITIONS, 1 << 30)
    leader, follower = applier_of(leader_log), applier_of(follower_log)
    sequencer = Sequencer(encoder, NativeWire(), leader.window, PARTITIONS, 0)
    sequencer.activate(1, [0] * PARTITIONS, 0, [])
    now = 10**18
    for index in range(1, 41):
        taken = []
        for _ in range(rng.randint(1, 4)):
            taken += submissions_of(encoder.accept(request(rng, index), 1))
        round_ = sequencer.sequence(taken, index, 1, now + index)
        for event_log in (leader_log, follower_log):
            await event_log.append(round_.batch)
        leader.expect(index, 1, round_.rows)
        await leader.apply(entries_of(round_.batch))
        await follower.apply(entries_of(round_.batch))
        sequencer.applied(index)
    assert leader.scanned == 0 and follower.scanned == 40
    assert len(follower.window) > 50
    assert leader.window.encode() == follower.window.encode()
    assert leader.state() == follower.state()


def received(entries: list[Entry]) -> Ready:
    """What a follower's driver persists: the entries as the network gave them (bytes)."""
    copies = [Entry(e.index, e.term, e.kind, bytes(e.data)) for e in entries]
    return Ready(None, None, None, copies, True, [], [], [], False)


def receiving(partitions: int = PARTITIONS) -> tuple[EntryRaftLog, EntryApplier]:
    """A follower's log port and applier, wired as a node wires them."""
    event_log = MemoryEntryLog(partitions, 1 << 30)
    applier = applier_of(event_log)
    raft_log = EntryRaftLog(event_log, NativeWire(), Membership(frozenset({"n1", "n2"})))
    raft_log.scanner, raft_log.on_scanned = NativeWire(), applier.expect_scanned
    return raft_log, applier


async def test_a_follower_applies_from_its_persists_scan_with_the_state_a_scan_gives():
    rng = random.Random(11)
    encoder = EventEncoder(Limits(255, 1024, 255, 255, 8), PREFIX)
    leader_log = MemoryEntryLog(PARTITIONS, 1 << 30)
    leader = applier_of(leader_log)
    raft_log, follower = receiving()
    sequencer = Sequencer(encoder, NativeWire(), leader.window, PARTITIONS, 0)
    sequencer.activate(1, [0] * PARTITIONS, 0, [])
    for index in range(1, 31):
        taken = []
        for _ in range(rng.randint(1, 4)):
            taken += submissions_of(encoder.accept(request(rng, index), 1))
        round_ = sequencer.sequence(taken, index, 1, 10**18 + index)
        await leader_log.append(round_.batch)
        leader.expect(index, 1, round_.rows)
        await leader.apply(entries_of(round_.batch))
        sequencer.applied(index)
        await raft_log.persist(received(entries_of(round_.batch)))
        await follower.apply(raft_log.storage.entries(index, index + 1))
    assert follower.scanned == 0
    assert len(follower.window) > 50
    assert leader.state() == follower.state()
    stored, expected = raft_log.event_log.entries(1, 31, 1 << 62), leader_log.entries(1, 31, 1 << 62)
    assert bytes(stored.data) == bytes(expected.data)
    assert list(stored.blocks) == list(expected.blocks)


@pytest.mark.parametrize("scanning", [True, False])
async def test_a_follower_refuses_a_payload_damaged_in_a_record(scanning):
    encoder = EventEncoder(Limits(255, 1024, 255, 255, 8), PREFIX)
    raft_log, _ = receiving()
    if not scanning:
        raft_log.scanner = None
    sequencer = Sequencer(encoder, NativeWire(), applier_of(MemoryEntryLog(PARTITIONS, 1 << 30)).window,
                          PARTITIONS, 0)
    sequencer.activate(1, [0] * PARTITIONS, 0, [])
    round_ = sequencer.sequence(submissions_of(encoder.accept(request(random.Random(5), 1), 1)),
                                1, 1, 10**18)
    (entry,) = entries_of(round_.batch)
    damaged = bytearray(entry.data)
    damaged[-1] ^= 0x20  # the last record's payload: its record CRC no longer matches
    with pytest.raises(CorruptEntry, match="check out"):
        await raft_log.persist(received([Entry(1, 1, entry.kind, bytes(damaged))]))
    assert raft_log.event_log.last_index() == 0
    await raft_log.persist(received([entry]))  # the undamaged entry is taken
    assert raft_log.event_log.last_index() == 1


async def test_rows_of_another_term_are_not_used():
    encoder = EventEncoder(Limits(255, 1024, 255, 255, 8), PREFIX)
    event_log = MemoryEntryLog(PARTITIONS, 1 << 30)
    applier = applier_of(event_log)
    sequencer = Sequencer(encoder, NativeWire(), applier.window, PARTITIONS, 0)
    sequencer.activate(2, [0] * PARTITIONS, 0, [])
    round_ = sequencer.sequence(submissions_of(encoder.accept(request(random.Random(3), 1), 1)),
                                1, 2, 10**18)
    await event_log.append(round_.batch)
    applier.expect(1, 1, round_.rows)   # another term's entry would be at index 1
    await applier.apply(entries_of(round_.batch))
    assert applier.scanned == 1



def unique_ids_request(first: int, count: int) -> bytes:
    return publish_pb2.PublishBatchRequest(events=[
        common_pb2.Event(topic="rows/a", payload=b"p", id=f"order-{n}", key=f"k{n % 7}")
        for n in range(first, first + count)]).SerializeToString()


def allocated_blocks() -> int:
    gc.collect()
    return sys.getallocatedblocks()


async def test_no_python_object_per_id_is_kept_in_flight_or_in_the_window():
    """A round of 1,000 new ids leaves fewer than 1 Python object per 10 ids behind.

    The ids live in the native table: after sequencing (in flight) and after
    applying (in the window) the Python heap holds no object per id.
    """
    encoder = EventEncoder(Limits(255, 1024, 255, 255, 8), PREFIX)
    event_log = MemoryEntryLog(PARTITIONS, 1 << 30)
    applier = applier_of(event_log)
    applier.window = DedupTable(WINDOW_NS, 100_000)
    sequencer = Sequencer(encoder, NativeWire(), applier.window, PARTITIONS, 0)
    sequencer.activate(1, [0] * PARTITIONS, 0, [])
    rounds = []

    async def one_round(index: int) -> tuple[int, int]:
        before = allocated_blocks()
        taken = submissions_of(encoder.accept(unique_ids_request(1000 * index, 1000), 1))
        round_ = sequencer.sequence(taken, index, 1, 10**18 + index)
        await event_log.append(round_.batch)
        applier.expect(index, 1, round_.rows)
        rounds.append(round_)  # what a publisher would wait on: kept in both counts
        held = allocated_blocks() - before
        await applier.apply(entries_of(round_.batch))
        sequencer.applied(index)
        return held, allocated_blocks() - before

    await one_round(1)  # buffers and caches of a first round
    in_flight, applied = await one_round(2)
    assert sequencer.in_flight_ids == 0 and len(applier.window) == 2000
    assert in_flight < 100, f"{in_flight} Python objects held for 1,000 ids in flight"
    assert applied < 100, f"{applied} Python objects held for 1,000 ids in the window"


def ids_request(names: list[str]) -> bytes:
    return publish_pb2.PublishBatchRequest(events=[
        common_pb2.Event(topic="rows/a", payload=b"p", id=name, key=name)
        for name in names]).SerializeToString()


async def test_a_new_term_holds_the_ids_of_entries_appended_and_not_applied():
    """After a leadership change, ids of entries appended but not applied are duplicates.

    They are taken from a scan of those entries (as the write path lists them
    when it activates the sequencer), answered with their first place, and
    leave the flight once applied.
    """
    encoder = EventEncoder(Limits(255, 1024, 255, 255, 8), PREFIX)
    event_log = MemoryEntryLog(PARTITIONS, 1 << 30)
    applier = applier_of(event_log)
    sequencer = Sequencer(encoder, NativeWire(), applier.window, PARTITIONS, 0)
    sequencer.activate(1, [0] * PARTITIONS, 0, [])
    entries = []
    for index, names in enumerate((["a", "b"], ["c", "d"], ["e"]), start=1):
        round_ = sequencer.sequence(submissions_of(encoder.accept(ids_request(names), 1)),
                                    index, 1, 10**18 + index)
        await event_log.append(round_.batch)
        entries += entries_of(round_.batch)
    await applier.apply(entries[:1])
    sequencer.applied(1)
    unapplied = []
    for entry in entries[1:]:
        scan = NativeWire().entry_scan(entry.data, PARTITIONS)
        time_ns = scan.runs()[-1][3]
        unapplied += [(entry.index, event_id, partition, offset, time_ns)
                      for event_id, partition, offset in scan.ids()]
    sequencer.activate(2, [event_log.next_offset(p) for p in range(PARTITIONS)],
                       10**18 + 3, unapplied)
    assert sequencer.in_flight_ids == 3
    round_ = sequencer.sequence(submissions_of(encoder.accept(ids_request(["a", "d", "e", "f"]), 1)),
                                4, 2, 10**18 + 4)
    assert round_.results[0].duplicates == 3  # a in the window, d and e in flight
    await applier.apply(entries[1:])
    sequencer.applied(3)
    assert sequencer.in_flight_ids == 1  # f, of the round not applied yet
    assert applier.window.lookup(b"d", 10**18 + 4) == next(
        (partition, offset, time_ns) for _, event_id, partition, offset, time_ns in unapplied
        if event_id == b"d")
