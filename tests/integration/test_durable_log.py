"""The durable log through the real server: restarts, recovery, replay, retention, de-dup."""

from __future__ import annotations

import asyncio
import json
import random
import re
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from eventstream.server.storage.entry_segment import header_size
from eventstream.v1 import common_pb2, subscribe_pb2
from tests.support.client import Stubs, publish_request, subscribe_request
from tests.support.durable import (
    assert_contiguous,
    by_partition,
    end_offsets,
    payload_of,
    publish_batch,
    publish_rounds,
    read_all,
    read_range,
)
from tests.support.server import http_get, metric

FIRST_SEGMENT = "log/00000000000000000001.log"


def segment_positions(path: Path, partitions: int = 1) -> list[int]:
    """Byte position of every entry of a segment file (each starts with its u32 length)."""
    data = path.read_bytes()
    positions, at = [], header_size(partitions)
    while at < len(data):
        positions.append(at)
        at += 4 + int.from_bytes(data[at:at + 4], "little")
    assert at == len(data)
    return positions


def damage_record(path: Path, number: int) -> int:
    """Flip one bit inside entry ``number`` of a segment (0 is the leader's first, empty one).

    Return the entry's position.
    """
    position = segment_positions(path)[number]
    data = bytearray(path.read_bytes())
    data[position + 40] ^= 0x01
    path.write_bytes(bytes(data))
    return position


async def restart(server) -> Stubs:
    server.stop()
    server.start()
    return Stubs(server.target)


async def test_events_survive_a_restart_and_numbering_continues(start_server):
    server = start_server({"storage": {"partitions": 2}})
    stubs = Stubs(server.target)
    acks = await publish_batch(stubs, [f"a{i}" for i in range(50)], key="k")
    await stubs.close()
    stubs = await restart(server)
    stored = await read_all(server, stubs)
    assert [(e.id, e.partition, e.offset, e.payload) for e in stored] == [
        (a.id, a.partition, a.offset, payload_of(a.id)) for a in acks]
    (more,) = await publish_batch(stubs, ["after"], key="k")
    assert (more.partition, more.offset) == (acks[-1].partition, acks[-1].offset + 1)
    assert more.durability == common_pb2.DURABILITY_FSYNCED
    await stubs.close()


async def test_torn_tail_is_truncated_and_publishing_continues(start_server):
    # Under fsync: interval any bad tail may be writes the OS had not flushed: each is cut.
    # (Under always only a torn last record is: see test_damaged_tail.py.)
    server = start_server({"storage": {"partitions": 1, "fsync": "interval"}})
    stubs = Stubs(server.target)
    acks = await publish_batch(stubs, [f"t{i}" for i in range(10)])
    await stubs.close()
    server.stop()
    segment = server.workdir / "data" / FIRST_SEGMENT
    data = segment.read_bytes()
    positions = segment_positions(segment)
    half_record = data[positions[-1]:(positions[-1] + len(data)) // 2]  # of the last entry
    rng = random.Random(7)
    tails = (half_record, bytes(rng.randrange(256) for _ in range(300)), bytes(100))
    for torn in tails:
        data = segment.read_bytes()  # each start adds its leader's first (empty) entry
        segment.write_bytes(data + torn)
        server.start()
        assert server.log().count(f"tail of {segment} at byte {len(data)}:") == 1
        stubs = Stubs(server.target)
        stored = await read_all(server, stubs)
        assert [e.id for e in stored] == [a.id for a in acks]
        await stubs.close()
        server.stop()
        assert segment.read_bytes().startswith(data)
    server.start()
    stubs = Stubs(server.target)
    (ack,) = await publish_batch(stubs, ["next"])
    assert ack.offset == 10
    await stubs.close()


async def test_corrupt_record_before_the_tail_is_refused_with_file_and_offset(start_server):
    server = start_server({"storage": {"partitions": 1}})
    stubs = Stubs(server.target)
    for number in range(3):
        await publish_batch(stubs, [f"c{number}-{i}" for i in range(10)])
    await stubs.close()
    server.stop()
    segment = server.workdir / "data" / FIRST_SEGMENT
    position = damage_record(segment, 2)
    code, output = server.run_to_exit()
    assert code == 2, output
    assert f"segment {segment} is corrupt at byte {position}: CRC32C mismatch" in output


async def test_other_partition_count_is_refused(start_server):
    server = start_server({"storage": {"partitions": 2}})
    server.stop()
    server.config_path.write_text(server.config_path.read_text().replace(
        "partitions: 2", "partitions: 3"))
    code, output = server.run_to_exit()
    assert code == 2, output
    assert "the data dir has 2 partitions but storage.partitions is 3" in output


async def test_replay_from_a_timestamp_returns_exactly_the_later_events(start_server):
    # Small segments: the seek crosses segments and blocks.
    server = start_server({"storage": {"partitions": 2, "segment_bytes": 4096}})
    stubs = Stubs(server.target)
    acks = await publish_rounds(stubs, "r", 40, 5, keys=3)
    times = sorted({a.ingest_time.ToNanoseconds() for a in acks})
    for restarted in (False, True):   # from the in-memory tail, then from the files
        if restarted:
            await stubs.close()
            stubs = await restart(server)
        for cut in (times[0], times[7], times[len(times) // 2], times[-1], times[-1] + 1):
            expected = [a for a in acks if a.ingest_time.ToNanoseconds() >= cut]
            until = [0, 0]
            for a in expected:
                until[a.partition] = max(until[a.partition], a.offset + 1)
            start = Timestamp()
            start.FromNanoseconds(cut)
            got = await read_range(stubs, subscribe_request(
                "#", start_from=subscribe_pb2.START_FROM_TIME, start_time=start), until)
            assert sorted((e.id, e.partition, e.offset) for e in got) == sorted(
                (a.id, a.partition, a.offset) for a in expected), (restarted, cut)
    await stubs.close()


async def test_catch_up_from_disk_to_live_has_no_gap_and_no_duplicate(start_server):
    # A tiny tail cache: the subscriber reads files first, then the live tail.
    server = start_server({"storage": {"partitions": 3, "segment_bytes": 8192,
                                       "tail_cache_bytes": 16384}})
    stubs = Stubs(server.target)
    await publish_rounds(stubs, "old", 20, 50, keys=20)
    await stubs.close()
    stubs = await restart(server)
    call = stubs.subscribe.Subscribe(subscribe_request(
        "#", start_from=subscribe_pb2.START_FROM_EARLIEST, max_batch_events=100))

    publisher = asyncio.create_task(publish_rounds(stubs, "new", 20, 50, keys=20))
    got = []
    try:
        async with asyncio.timeout(60):
            async for response in call:
                got.extend(response.events)
                if len(got) >= 2000:
                    break
    finally:
        call.cancel()
        await publisher
    assert len(got) == 2000
    assert_contiguous(got)
    assert sum(end_offsets(server)) == 2000
    await stubs.close()


async def test_retention_deletes_whole_old_segments_and_counts_them(start_server):
    server = start_server({"storage": {"partitions": 1, "segment_bytes": 4096,
                                       "retention_bytes": 16384}})
    stubs = Stubs(server.target)
    await publish_rounds(stubs, "ret", 30, 10)
    # Retention is an entry of its own, proposed after the rounds that made it due.
    async with asyncio.timeout(30):
        while metric(server, "eventstream_storage_bytes", partition="0") > 16384:
            await asyncio.sleep(0.05)
    deleted = metric(server, "eventstream_storage_retention_deleted_segments_total",
                     partition="0")
    assert deleted > 0
    assert metric(server, "eventstream_storage_retention_deleted_bytes_total", partition="0") > 0
    files = sorted(p.name for p in (server.workdir / "data" / "log").glob("*.log"))
    assert len(files) == metric(server, "eventstream_storage_segments", partition="0")
    assert int(files[0].split(".")[0]) > 1   # named by the index of their first entry
    status = json.loads(http_get(f"{server.http}/status")[1])["log"]
    first = status["start_offsets"][0]
    assert first > 0
    assert (status["kind"], status["fsync"], status["segments"]) == (
        "disk", "always", len(files))
    assert status["retention_dropped_segments"] == deleted
    # Subscribers from the earliest offset start at the first retained one.
    got = await read_all(server, stubs)
    assert got[0].offset == first
    assert_contiguous(got, {0: first})
    await stubs.close()


async def test_retention_by_age_deletes_sealed_segments(start_server):
    server = start_server({"storage": {"partitions": 1, "segment_bytes": 4096,
                                       "retention_ms": 1}})
    stubs = Stubs(server.target)
    await publish_rounds(stubs, "age", 10, 10)
    more = 0
    async with asyncio.timeout(30):
        while not metric(server, "eventstream_storage_retention_deleted_segments_total",
                         partition="0"):
            await publish_batch(stubs, [f"age-more-{more}"])
            more += 1
    assert metric(server, "eventstream_storage_segments", partition="0") >= 1
    assert metric(server, "eventstream_storage_fsync_duration_seconds_count") > 0
    await stubs.close()


async def test_deduplication_survives_a_crash(start_server):
    server = start_server({"storage": {"partitions": 2}})
    stubs = Stubs(server.target)
    first = await publish_batch(stubs, ["d1", "d2", "d3"], key="k")
    await stubs.close()
    server.kill()
    server.start()
    assert "3 event ids restored" in server.log()
    stubs = Stubs(server.target)
    again = await publish_batch(stubs, ["d2", "d4"], key="k")
    assert again[0].duplicate and (again[0].partition, again[0].offset) == (
        first[1].partition, first[1].offset)
    assert not again[1].duplicate and again[1].offset == first[2].offset + 1
    stored = await read_all(server, stubs)
    assert [e.id for e in stored] == ["d1", "d2", "d3", "d4"]
    await stubs.close()


async def test_memory_engine_still_available(start_server):
    server = start_server({"storage": {"engine": "memory"}})
    stubs = Stubs(server.target)
    response = await stubs.publish.Publish(publish_request("mem/t"))
    assert response.ack.durability == common_pb2.DURABILITY_MEMORY
    assert not (server.workdir / "data").exists()
    await stubs.close()


async def test_interval_and_never_policies_say_written(start_server):
    for policy in ("interval", "never"):
        server = start_server({"storage": {"fsync": policy, "fsync_interval_ms": 50}})
        stubs = Stubs(server.target)
        fsyncs = "eventstream_storage_fsync_duration_seconds_count"
        # Saving the hard state at the election syncs what the log holds before it.
        before = metric(server, fsyncs)
        (ack,) = await publish_batch(stubs, [f"p-{policy}"])
        assert ack.durability == common_pb2.DURABILITY_WRITTEN
        if policy == "interval":  # what was written gets its periodic fsync
            async with asyncio.timeout(30):
                while metric(server, fsyncs) == before:
                    await asyncio.sleep(0.05)
        else:
            assert metric(server, fsyncs) == before
        await stubs.close()
        stubs = await restart(server)
        assert [e.id for e in by_partition(await read_all(server, stubs))[ack.partition]] == [
            f"p-{policy}"]
        await stubs.close()


async def test_damage_in_a_sealed_segment_is_reported_to_readers_as_data_loss(start_server):
    # Sealed segments with good index files are not rescanned at start-up; a read checks
    # each CRC.
    server = start_server({"storage": {"partitions": 1, "segment_bytes": 4096},
                           "dedup": {"window_seconds": 0}})
    stubs = Stubs(server.target)
    await publish_rounds(stubs, "s", 10, 10)
    await stubs.close()
    server.stop()
    segment = server.workdir / "data" / FIRST_SEGMENT
    position = damage_record(segment, 1)
    end = segment_positions(segment)[2]
    server.start()
    stubs = Stubs(server.target)
    call = stubs.subscribe.Subscribe(subscribe_request(
        "#", start_from=subscribe_pb2.START_FROM_EARLIEST))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        async with asyncio.timeout(30):
            async for _ in call:
                pass
    assert failed.value.code() == grpc.StatusCode.DATA_LOSS
    assert "offset 0 cannot be read" in failed.value.details()
    byte = int(re.search(rf"segment {segment} is corrupt at byte (\d+)", server.log()).group(1))
    assert position <= byte < end   # in the damaged entry
    await stubs.close()
    server.stop()


async def test_a_data_dir_in_use_is_refused(start_server):
    first = start_server({"storage": {"partitions": 1}})
    second = start_server({"storage": {"partitions": 1, "data_dir": str(first.workdir / "data")}},
                          wait=False)
    assert second.process is not None
    code = second.process.wait(30)
    assert code == 2, second.log()
    assert "is in use by another server process" in second.log()
