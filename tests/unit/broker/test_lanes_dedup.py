"""Lanes: all-or-nothing offers, realtime first, batch never starved.
The write path refuses cleanly when it is not running, holds batch-only rounds
back for active realtime publishers while the event loop is saturated, and with a
round in flight holds a further one until enough waits to make it large."""

import asyncio
import time

import pytest

from eventstream.server.broker.lanes import LANES_ENV, FifoLanes, Lanes, Submission, UnderShareLanes, lanes
from eventstream.server.broker.priority import Lane
from eventstream.server.broker.sequencer import Sequencer
from eventstream.server.broker.write_path import WritePath
from eventstream.server.cluster.one_voter import ReplicatedLog, one_voter
from eventstream.server.errors import EventStreamError
from eventstream.server.native import AcceptedEvents, DedupTable, EventEncoder, Limits, NativeWire
from eventstream.server.raft import Config
from eventstream.server.storage.memory_entry_log import MemoryEntryLog


def submission(lane: Lane, count: int, received_ns: int = 0) -> Submission:
    return Submission(lane, AcceptedEvents(b"", b""), count, asyncio.Future(), received_ns)


async def test_offer_is_all_or_nothing_across_lanes():
    lanes = Lanes(10, 10)
    assert lanes.offer([submission(Lane.REALTIME, 5), submission(Lane.BATCH, 11)]) == Lane.BATCH
    assert lanes.depth == {Lane.REALTIME: 0, Lane.BATCH: 0}
    assert lanes.offer([submission(Lane.REALTIME, 10)]) is None
    assert lanes.offer([submission(Lane.REALTIME, 1)]) == Lane.REALTIME
    assert lanes.full_rejections == {Lane.REALTIME: 1, Lane.BATCH: 1}


async def test_realtime_first_but_batch_keeps_its_share():
    lanes = Lanes(10_000, 10_000)
    lanes.offer([submission(Lane.BATCH, 1) for _ in range(100)])
    lanes.offer([submission(Lane.REALTIME, 1) for _ in range(1000)])
    taken = lanes.take(100, 0.25)
    kinds = [s.lane for s in taken]
    assert kinds.count(Lane.REALTIME) == 75 and kinds.count(Lane.BATCH) == 25
    assert kinds[:75] == [Lane.REALTIME] * 75
    # With no batch waiting, realtime gets the whole budget.
    lanes = Lanes(10_000, 10_000)
    lanes.offer([submission(Lane.REALTIME, 1) for _ in range(200)])
    assert len(lanes.take(100, 0.25)) == 100


async def test_a_round_with_realtime_events_takes_only_the_batch_share():
    lanes = Lanes(10_000, 10_000)
    lanes.offer([submission(Lane.BATCH, 1) for _ in range(200)])
    lanes.offer([submission(Lane.REALTIME, 1) for _ in range(3)])
    kinds = [s.lane for s in lanes.take(100, 0.25)]
    assert kinds == [Lane.REALTIME] * 3 + [Lane.BATCH] * 25
    # Without realtime events the round is all batch.
    assert [s.lane for s in lanes.take(100, 0.25)] == [Lane.BATCH] * 100


def events_by_lane(taken: list[Submission]) -> dict[Lane, int]:
    return {lane: sum(s.count for s in taken if s.lane is lane) for lane in Lane}


async def test_batch_keeps_at_least_its_share_when_submissions_do_not_pack():
    # Submissions of 15 events: 25 (the share of 100) holds one whole batch submission, not two.
    for kind, at_least in ((Lanes, True), (UnderShareLanes, False)):
        lanes = kind(10_000, 10_000)
        lanes.offer([submission(Lane.BATCH, 15) for _ in range(20)])
        lanes.offer([submission(Lane.REALTIME, 15) for _ in range(20)])
        taken = lanes.take(100, 0.25)
        counts = events_by_lane(taken)
        assert [s.lane for s in taken] == sorted(s.lane for s in taken)   # realtime first
        share = counts[Lane.BATCH] / (counts[Lane.BATCH] + counts[Lane.REALTIME])
        if at_least:   # two batch submissions (30), realtime the 70 left: four (60)
            assert counts == {Lane.REALTIME: 60, Lane.BATCH: 30} and share >= 0.25
        else:          # the bug the test-only lanes keep: one (15) beside five (75)
            assert counts == {Lane.REALTIME: 75, Lane.BATCH: 15} and share < 0.25


async def test_waiting_peak_and_waiting_for_the_mark():
    lanes = Lanes(10_000, 10_000)
    lanes.offer([submission(Lane.BATCH, 10) for _ in range(5)])
    assert lanes.waiting_peak == {Lane.REALTIME: 0, Lane.BATCH: 50}
    assert lanes.realtime_offered < 0
    waiter = asyncio.ensure_future(lanes.wait_waiting_at_most(Lane.BATCH, 20))
    await asyncio.sleep(0)
    lanes.take(20, 0.25)                 # 30 wait: still above the mark
    await asyncio.sleep(0)
    assert not waiter.done()
    lanes.take(10, 0.25)                 # 20 wait
    await asyncio.wait_for(waiter, 1)
    assert lanes.waiting_peak[Lane.BATCH] == 50
    lanes.offer([submission(Lane.REALTIME, 1)])
    assert lanes.realtime_offered > 0


async def test_the_test_only_fifo_lanes_ignore_priorities(monkeypatch):
    monkeypatch.delenv(LANES_ENV, raising=False)
    assert type(lanes(10, 10)) is Lanes
    monkeypatch.setenv(LANES_ENV, "fifo")
    fifo = lanes(100, 100)
    assert isinstance(fifo, FifoLanes)
    fifo.offer([submission(Lane.BATCH, 10, received_ns=1), submission(Lane.BATCH, 10, received_ns=2)])
    fifo.offer([submission(Lane.REALTIME, 1, received_ns=3)])
    assert [s.lane for s in fifo.take(15, 0.25)] == [Lane.BATCH, Lane.BATCH]
    assert [s.lane for s in fifo.take(15, 0.25)] == [Lane.REALTIME]
    assert isinstance(lanes(100, 100), FifoLanes)
    monkeypatch.setenv(LANES_ENV, "under_share")
    assert isinstance(lanes(100, 100), UnderShareLanes)
    monkeypatch.setenv(LANES_ENV, "lifo")
    with pytest.raises(ValueError, match="EVENTSTREAM_TEST_LANES='lifo'"):
        lanes(10, 10)


def write_path_of(lanes: Lanes, batch_yield_seconds: float = 0.0, further_round_events: int = 0,
                  replicated: ReplicatedLog | None = None) -> WritePath:
    """A write path over a memory log of one voter (its drain not started)."""
    log, window = MemoryEntryLog(1, 1 << 20), DedupTable(10**9, 100)
    if replicated is None:
        replicated = one_voter(log, Config("n1"), window, tick_seconds=0.01)
    sequencer = Sequencer(EventEncoder(Limits(255, 1024, 255, 255, 8), b"t-"), NativeWire(),
                          window, 1, log.durability)
    return WritePath(lanes, sequencer, replicated.proposer, log, replicated.applier,
                     NativeWire(), drain_batch_events=10, batch_share=0.25,
                     max_rounds_in_flight=4, further_round_events=further_round_events,
                     batch_yield_seconds=batch_yield_seconds)


async def held(waiting: asyncio.Future[None]) -> bool:
    """Whether ``waiting`` is still pending after 20 turns of the event loop."""
    for _ in range(20):
        await asyncio.sleep(0)
    return not waiting.done()


async def test_a_further_round_waits_until_enough_events_wait_while_one_is_in_flight():
    lanes = Lanes(100, 100)
    replicated = one_voter(MemoryEntryLog(1, 1 << 20), Config("n1"), DedupTable(10**9, 100),
                           tick_seconds=0.01)
    await replicated.lead(10)
    write_path = write_path_of(lanes, further_round_events=5, replicated=replicated)
    in_flight = write_path._pending
    try:
        # Nothing in flight: a round goes out at once, however little waits.
        lanes.offer([submission(Lane.BATCH, 1)])
        await asyncio.wait_for(write_path._wait_for_room(), 5)
        # A round in flight: held while fewer than 5 events wait, woken by the offer that makes 5.
        in_flight.append(None)  # type: ignore[arg-type]
        waiting = asyncio.ensure_future(write_path._wait_for_room())
        assert await held(waiting)
        lanes.offer([submission(Lane.BATCH, 3)])
        assert await held(waiting)
        lanes.offer([submission(Lane.BATCH, 1)])
        await asyncio.wait_for(waiting, 5)
        # A realtime event is not held for a larger round.
        lanes.take(100, 0.25)
        waiting = asyncio.ensure_future(write_path._wait_for_room())
        assert await held(waiting)
        lanes.offer([submission(Lane.REALTIME, 1)])
        await asyncio.wait_for(waiting, 5)
        # The bound on rounds in flight holds whatever waits.
        in_flight.extend([None] * 3)  # type: ignore[list-item]
        lanes.offer([submission(Lane.BATCH, 50)])
        waiting = asyncio.ensure_future(write_path._wait_for_room())
        assert await held(waiting)
        in_flight.clear()
        write_path._room.set()
        await asyncio.wait_for(waiting, 5)
    finally:
        in_flight.clear()
        await replicated.stop()


async def hog(stop: asyncio.Event) -> None:
    """Keep the event loop saturated: 5 ms of CPU per turn, until ``stop`` (at most 10,000 turns)."""
    for _ in range(10_000):
        if stop.is_set():
            return
        until = time.thread_time() + 0.005
        while time.thread_time() < until:
            pass
        await asyncio.sleep(0)


async def test_batch_rounds_yield_to_active_realtime_publishers_on_a_saturated_loop():
    lanes = Lanes(100, 100)
    write_path = write_path_of(lanes, batch_yield_seconds=60.0)
    lanes.offer([submission(Lane.BATCH, 5)])
    stop = asyncio.Event()
    hogging = asyncio.ensure_future(hog(stop))
    try:
        # No realtime publisher in the last second: no hold, however busy the loop.
        await asyncio.wait_for(write_path._yield_to_realtime(), 5)
        assert write_path.yielded_seconds == 0
        # Realtime publishers active, none waiting: held while the loop is saturated,
        # until a realtime event arrives (long before the 60 s bound).
        lanes.offer([submission(Lane.REALTIME, 1)])
        lanes.take(1, 0.25)
        holding = asyncio.ensure_future(write_path._yield_to_realtime())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not holding.done()
        lanes.offer([submission(Lane.REALTIME, 1)])
        await asyncio.wait_for(holding, 5)
        assert write_path.yielded_seconds > 0
        # A realtime event waiting: no hold.
        held = write_path.yielded_seconds
        await asyncio.wait_for(write_path._yield_to_realtime(), 5)
        assert write_path.yielded_seconds == held
    finally:
        stop.set()
        await hogging
    # The loop idle again: the hold ends at the first probe.
    lanes.take(10, 0.25)
    await asyncio.wait_for(write_path._yield_to_realtime(), 5)


async def test_a_stopped_write_path_refuses_without_stranding_events():
    lanes = Lanes(10, 10)
    write_path = write_path_of(lanes)
    with pytest.raises(EventStreamError) as error:
        write_path.submit([submission(Lane.BATCH, 3)])
    assert error.value.reason == "COMMIT_FAILED"
    assert lanes.depth == {Lane.REALTIME: 0, Lane.BATCH: 0}
