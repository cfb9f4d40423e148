"""Realtime events overtake a queued batch flood; order holds within a key and a lane.

A real server with one partition (so offsets are the commit order) takes a flood
of BATCH frames over TCP and meanwhile LOW events of one key over gRPC. Once
the batch lane is deep, HIGH events go over gRPC one at a time. The log, read
back through Subscribe, shows:

* the first realtime event was committed before batch events that the server
  had accepted before it was sent (a first-in-first-out drain commits every
  one of them first, which the test-only FIFO drain shows);
* in each commit round (the events sharing an ingest time) realtime events
  come before batch events, and a round with realtime events carries batch
  events too while more wait (``queues.batch_lane_share``: never starved);
* with both lanes flooded at once (TCP connections sending BATCH and HIGH
  frames in turn), every round that carried realtime events while batch
  events waited gave the batch lane at least ``queues.batch_lane_share`` of
  its events: the guarantee, not a cap (the test-only
  ``EVENTSTREAM_TEST_LANES=under_share`` drain, which packs whole batch
  submissions under the share, fails it);
* events of one key in one lane, and frames of one connection, keep their order.

No time is measured or asserted: the checks count events of one run. The
test-only FIFO drain (``EVENTSTREAM_TEST_LANES=fifo``) proves the first check can
fail.

A flood of TCP batch producers must not take the event loop from realtime
publishers for events that would only wait: while realtime publishers are
active, batch-only connections are read as fast as rounds take their events
(``queues.batch_ingest_mark``). Reading them ahead until the batch lane was
full let a saturating flood delay unary gRPC publishes by seconds before they
reached their lane. Without realtime publishers nobody waits behind the
flood, and it is read at full speed. The server's metrics show both without
timing: with realtime publishers active, reads were paced
(``eventstream_ingest_batch_paced_total``) and at most the mark plus one read
per connection ever waited (``eventstream_queue_waiting_peak``); without
them no read was paced and far more waited, as with the mark off (0).
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
from dataclasses import dataclass

import pytest

from eventstream.client.frames import Priority, encode_frame
from eventstream.v1 import common_pb2, publish_pb2, subscribe_pb2
from tests.support.client import Stubs, collect, event, subscribe_request
from tests.support.server import ServerProcess, http_get, metric

# One partition; a batch lane that holds the whole flood, so the LOW events of the key
# producer are never refused as LANE_FULL, read ahead of the drain (no ingest mark) so the
# lane is deep when the realtime events go: the drain's order is what the scenario checks;
# the durable log with fsync always (the default); reads of 64 KiB, which the sizes below
# (a read against a round's batch share, the pacing bound) are made for.
RECEIVE_BYTES = 64 * 1024
CONFIG = {"storage": {"partitions": 1}, "ingest": {"receive_buffer_bytes": RECEIVE_BYTES},
          "queues": {"batch_capacity": 262_144, "batch_ingest_mark": 0}}
FLOOD_FRAMES = 150_000
KEY_BATCHES, KEY_BATCH_EVENTS = 10, 50    # LOW events of one key, one request after another
REALTIME_EVENTS = 10
DEEP = 20_000                             # batch events queued before the realtime ones go
SEQ = struct.Struct(">Q")
MARK = 4_096                              # queues.batch_ingest_mark of the pacing test
FLOOD_CONNECTIONS = 2
SHARE = 0.25                              # queues.batch_lane_share (the default)
FAIR_CONFIG = {**CONFIG, "queues": {**CONFIG["queues"], "drain_batch_events": 10_000,
                                    "realtime_capacity": 65_536}}
"""The fairness test's: a read of a flood connection (about 3,300 frames, half of them
in each lane's submission) fits the batch share of a round (2,500) once but not twice."""
MIXED_CONNECTIONS, MIXED_FRAMES = 2, 150_000   # the fairness test's floods
REALTIME_PUBLISHERS = 3                   # unary publishers beside the flood of the pacing test
READ_FRAMES = RECEIVE_BYTES // len(encode_frame("flood", SEQ.pack(0), Priority.BATCH)) + 1
"""The most frames one read of a flood connection brings (one receive buffer)."""


@dataclass
class Run:
    """What a scenario published and the log it left."""

    accepted_before_realtime: int
    """Batch events the server had accepted (pushed into the lane) before the first HIGH one."""
    depth_before_realtime: int
    """Batch events waiting in the lane at that moment."""
    log: list[common_pb2.Event]
    """Every event, in offset order."""


def flood(port: int, count: int, first: int = 0) -> None:
    """BATCH frames numbered from ``first`` on one connection, fire-and-forget, until the server read all."""
    frame = encode_frame("flood", SEQ.pack(0), Priority.BATCH)
    head = frame[:-SEQ.size]
    data = b"".join(head + SEQ.pack(seq) for seq in range(first, first + count))
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b"", "the server answered the flood with an ERROR"


def batch_lane(server: ServerProcess) -> tuple[int, int]:
    """(events pushed into the batch lane ever, events in it now), from one scrape."""
    _, body = http_get(f"{server.http}/metrics", timeout=10)
    found = dict(re.findall(r'^(eventstream_queue_(?:pushes_total|depth))\{[^}]*queue="batch"[^}]*\} (\S+)$',
                            body.decode(), re.M))
    return int(float(found["eventstream_queue_pushes_total"])), int(float(found["eventstream_queue_depth"]))


async def wait_until_deep(server: ServerProcess, deadline: float, deep: int = DEEP) -> tuple[int, int]:
    """(batch events pushed, batch lane depth) once the lane holds ``deep`` events."""
    loop = asyncio.get_running_loop()
    while True:
        pushed, depth = await asyncio.to_thread(batch_lane, server)
        if depth >= deep:
            return pushed, depth
        assert loop.time() < deadline, f"the batch lane never held {deep} events (last {depth})"
        await asyncio.sleep(0.01)


async def scenario(server: ServerProcess) -> Run:
    """Flood, key producer, realtime events; then the whole log."""
    stubs = Stubs(server.target)
    loop = asyncio.get_running_loop()
    try:
        async def keyed() -> None:
            for batch in range(KEY_BATCHES):
                await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(events=[
                    event("keyed", SEQ.pack(batch * KEY_BATCH_EVENTS + index), key="k",
                          priority=common_pb2.PRIORITY_LOW)
                    for index in range(KEY_BATCH_EVENTS)]), timeout=60)

        flooding = asyncio.create_task(asyncio.to_thread(flood, server.tcp_port, FLOOD_FRAMES))
        producing = asyncio.create_task(keyed())
        pushed, depth = await wait_until_deep(server, loop.time() + 60)
        for index in range(REALTIME_EVENTS):
            await stubs.publish.Publish(publish_pb2.PublishRequest(event=event(
                "realtime", SEQ.pack(index), key="r", priority=common_pb2.PRIORITY_HIGH)), timeout=60)
        await asyncio.wait_for(asyncio.gather(flooding, producing), 120)
        events = await whole_log(stubs, FLOOD_FRAMES + KEY_BATCHES * KEY_BATCH_EVENTS + REALTIME_EVENTS)
    finally:
        await stubs.close()
    return Run(pushed, depth, events)


async def whole_log(stubs: Stubs, total: int) -> list[common_pb2.Event]:
    """The log's ``total`` events, read through Subscribe; offsets (one partition) checked."""
    call = stubs.subscribe.Subscribe(subscribe_request(
        "#", start_from=subscribe_pb2.START_FROM_EARLIEST))
    async with asyncio.timeout(120):
        events = await collect(call, total)
    call.cancel()
    assert [e.offset for e in events] == list(range(total))
    return events


def is_realtime(e: common_pb2.Event) -> bool:
    return e.priority >= common_pb2.PRIORITY_HIGH


def problems(run: Run) -> list[str]:
    """Every broken promise of the lanes found in the log; empty when all hold."""
    found: list[str] = []
    log = run.log
    # 1. Overtaking: batch events are committed in the order the lane took them in, so the
    # first `accepted_before_realtime` batch events of the log are those accepted before the
    # first realtime event was sent.
    first = next(i for i, e in enumerate(log) if is_realtime(e))
    batch_before = sum(1 for e in log[:first] if not is_realtime(e))
    overtaken = max(run.accepted_before_realtime - batch_before, 0)
    print(f"the first realtime event overtook {overtaken} of the {run.accepted_before_realtime} "
          f"batch events accepted before it was sent ({run.depth_before_realtime} then waiting)")
    if not overtaken:
        found.append(f"the first realtime event overtook no batch event: {batch_before} batch events "
                     f"were committed before it, {run.accepted_before_realtime} had been accepted "
                     f"before it was sent ({run.depth_before_realtime} of them waiting)")
    # 2. Rounds: the events of one commit share an ingest time. Realtime events come first in
    # theirs; and a round with realtime events takes batch events too when some of those
    # accepted before the first realtime event (so waiting since) are committed after it.
    batch_offsets = [e.offset for e in log if not is_realtime(e)]
    last_accepted = batch_offsets[min(run.accepted_before_realtime, len(batch_offsets)) - 1]
    for events in rounds_of(log):
        lanes = [is_realtime(e) for e in events]
        if True not in lanes:
            continue
        where = f"the round of offsets {events[0].offset}..{events[-1].offset}"
        if lanes != sorted(lanes, reverse=True):
            found.append(f"{where} has batch events before realtime ones")
        if False not in lanes and events[-1].offset < last_accepted:
            found.append(f"{where} took no batch event while older ones waited")
    # 3. Order within a key and lane, and within a connection and lane.
    for name, select in (("key k, batch lane", lambda e: e.key == "k"),
                         ("key r, realtime lane", lambda e: e.key == "r"),
                         ("the flood's connection, batch lane", lambda e: e.topic == "flood")):
        sequence = [SEQ.unpack(e.payload)[0] for e in log if select(e)]
        if sequence != sorted(sequence) or len(set(sequence)) != len(sequence):
            found.append(f"{name}: out of order")
    return found


async def test_realtime_events_overtake_a_queued_flood_and_order_holds(start_server):
    server = start_server(CONFIG)
    run = await scenario(server)
    assert problems(run) == []
    assert run.depth_before_realtime >= DEEP
    # Every frame went through the batch lane, every HIGH event through the realtime one.
    assert metric(server, "eventstream_queue_pops_total", queue="realtime") == REALTIME_EVENTS


def rounds_of(log: list[common_pb2.Event]) -> list[list[common_pb2.Event]]:
    """The commit rounds of a log in offset order: runs of events sharing an ingest time."""
    rounds: list[list[common_pb2.Event]] = []
    for e in log:
        if rounds and rounds[-1][0].ingest_time == e.ingest_time:
            rounds[-1].append(e)
        else:
            rounds.append([e])
    return rounds


def mixed_flood(port: int, topic: str) -> None:
    """MIXED_FRAMES frames numbered in sending order on one connection, BATCH and HIGH in turn."""
    data = b"".join(encode_frame(topic, SEQ.pack(seq), Priority.BATCH if seq % 2 else Priority.HIGH)
                    for seq in range(MIXED_FRAMES))
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b"", "the server answered the flood with an ERROR"


async def both_lanes_flooded(server: ServerProcess) -> list[common_pb2.Event]:
    """MIXED_CONNECTIONS connections flooding both lanes at once; then the whole log."""
    await asyncio.wait_for(asyncio.gather(*(
        asyncio.to_thread(mixed_flood, server.tcp_port, f"mixed/{index}")
        for index in range(MIXED_CONNECTIONS))), 120)
    stubs = Stubs(server.target)
    try:
        return await whole_log(stubs, MIXED_CONNECTIONS * MIXED_FRAMES)
    finally:
        await stubs.close()


def rounds_while_batch_waited(log: list[common_pb2.Event]) -> list[tuple[int, int]]:
    """(batch, realtime) events of each round that carried realtime events while batch ones waited.

    A connection is read in order, and a read queues its frames of both lanes
    at once: when a round holds a connection's realtime frame, every earlier
    frame of that connection had been accepted before the round was formed.
    A batch one among them committed in a later round waited meanwhile.
    """
    batch_seen: dict[str, list[tuple[int, int]]] = {}   # topic: (number, offset) of its batch frames
    for e in log:
        if not is_realtime(e):
            batch_seen.setdefault(e.topic, []).append((SEQ.unpack(e.payload)[0], e.offset))
    found = []
    for events in rounds_of(log):
        realtime = [e for e in events if is_realtime(e)]
        last = events[-1].offset
        newest = {}
        for e in realtime:
            newest[e.topic] = max(newest.get(e.topic, 0), SEQ.unpack(e.payload)[0])
        if any(number < newest[topic] and offset > last
               for topic in newest for number, offset in batch_seen.get(topic, [])):
            found.append((len(events) - len(realtime), len(realtime)))
    return found


@pytest.mark.parametrize("drain", ["", "under_share"], ids=["lanes", "test-only-under-share"])
async def test_batch_keeps_its_share_while_both_lanes_are_flooded(start_server, drain):
    server = start_server(FAIR_CONFIG, env={"EVENTSTREAM_TEST_LANES": drain} if drain else None)
    shares = rounds_while_batch_waited(await both_lanes_flooded(server))
    batch, realtime = sum(b for b, _ in shares), sum(r for _, r in shares)
    under = [(b, r) for b, r in shares if b < SHARE * (b + r)]
    print(f"{len(shares)} rounds with realtime events while batch events waited: {batch} batch and "
          f"{realtime} realtime events; {len(under)} rounds under {SHARE:.0%}: {under[:5]}")
    assert len(shares) >= 3, "too few rounds had both lanes flooded to judge"
    if not drain:
        assert under == []
        assert batch >= SHARE * (batch + realtime)
    else:   # the checker can fail: whole submissions packed under the share leave batch under it
        assert under
        assert "EVENTSTREAM_TEST_LANES=under_share is set" in server.log()


async def test_the_checks_fail_on_a_drain_that_ignores_priorities(start_server):
    server = start_server(CONFIG, env={"EVENTSTREAM_TEST_LANES": "fifo"})
    run = await scenario(server)
    found = problems(run)
    assert any("overtook no batch event" in problem for problem in found), found
    assert not any("out of order" in problem for problem in found), found   # FIFO keeps order
    assert "EVENTSTREAM_TEST_LANES=fifo is set" in server.log()


@dataclass
class Paced:
    """What a flood left in the server's metrics."""

    waiting_peak: int
    """The most batch events that ever waited for the drain."""
    paced_reads: int
    """Reads of the flood's connections that waited for the batch mark."""
    realtime_sent: int
    """HIGH events published meanwhile."""


async def flood_beside(server: ServerProcess, realtime: bool) -> Paced:
    """Flood from FLOOD_CONNECTIONS at once, with realtime publishers active all along or none."""
    share = FLOOD_FRAMES // FLOOD_CONNECTIONS
    stubs = Stubs(server.target)
    done = asyncio.Event()
    sent = 0

    async def publish_realtime() -> None:
        # One unary publish after another, so a realtime event arrives every few milliseconds
        # (bounded in count; the flood's end stops it).
        nonlocal sent
        for index in range(FLOOD_FRAMES):
            if done.is_set():
                return
            await stubs.publish.Publish(publish_pb2.PublishRequest(event=event(
                "realtime", SEQ.pack(index), key="r", priority=common_pb2.PRIORITY_HIGH)), timeout=60)
            sent += 1

    try:
        publishers = []
        if realtime:   # active before the flood's first read
            await stubs.publish.Publish(publish_pb2.PublishRequest(event=event(
                "realtime", b"first", priority=common_pb2.PRIORITY_HIGH)), timeout=60)
            sent += 1
            publishers = [asyncio.create_task(publish_realtime()) for _ in range(REALTIME_PUBLISHERS)]
        await asyncio.wait_for(asyncio.gather(*(
            asyncio.to_thread(flood, server.tcp_port, share, index * share)
            for index in range(FLOOD_CONNECTIONS))), 120)
        done.set()
        await asyncio.wait_for(asyncio.gather(*publishers), 60)
    finally:
        done.set()
        await stubs.close()
    return Paced(int(metric(server, "eventstream_queue_waiting_peak", queue="batch")),
                 int(metric(server, "eventstream_ingest_batch_paced_total", transport="tcp")), sent)


@pytest.mark.parametrize(("mark", "realtime"), [(MARK, True), (MARK, False), (0, True)],
                         ids=["realtime-paced", "no-realtime-full-speed", "mark-off"])
async def test_tcp_batch_producers_are_paced_only_while_realtime_publishers_are_active(
        start_server, mark, realtime):
    server = start_server({**CONFIG, "queues": {**CONFIG["queues"], "batch_ingest_mark": mark}})
    run = await flood_beside(server, realtime)
    bound = MARK + FLOOD_CONNECTIONS * READ_FRAMES
    print(f"batch_ingest_mark {mark}, {run.realtime_sent} realtime events: {run.paced_reads} "
          f"reads paced, at most {run.waiting_peak} batch events waited (bound {bound})")
    if mark and realtime:
        assert run.paced_reads > 0
        assert 0 < run.waiting_peak <= bound
    else:   # nobody to yield to, or the mark off: read ahead of the drain, far more wait
        assert run.paced_reads == 0
        assert run.waiting_peak > bound
