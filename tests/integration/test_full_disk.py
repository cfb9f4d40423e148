"""A full disk, for real: a small tmpfs under the data dir, filled by the test.

After the first write that fails for lack of space, the node must stop
accepting writes (health NOT_SERVING, publishes UNAVAILABLE naming the
storage failure), keep serving readers, and after a restart hold every
acknowledged event once, at its acknowledged offset, with no offset reused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.ledger import Ledger, check_stored, read_back, sdk_client
from tests.support.server import ServerProcess, http_get, metric
from tests.support.smallfs import PAGE, fill, free_bytes, make_room, small_filesystem

FS_BYTES = 8 * 1024 * 1024
EVENT_BYTES = 1000
SEGMENT_BYTES = 4096
MOST_PUBLISHES = 2000
"""Bound of the loop that fills the disk: far more than the room left ever takes."""


def storage_config(fs: Path, **storage: object) -> dict[str, dict[str, object]]:
    return {"storage": {"data_dir": str(fs / "data"), "partitions": 1, "fsync": "always",
                        "segment_bytes": SEGMENT_BYTES, **storage}}


async def publish_until_refused(server: ServerProcess, ledger: Ledger, prefix: str,
                                batch: int) -> None:
    """Publish batches of ``batch`` events until one fails; fail the test if none does."""
    async with sdk_client(server) as client:
        for number in range(MOST_PUBLISHES):
            ids = [f"{prefix}.{number}.{i}" for i in range(batch)]
            if not await ledger.publish(client, ids, size=EVENT_BYTES):
                return
    pytest.fail(f"{MOST_PUBLISHES} publishes never filled the disk")


async def publish_all(server: ServerProcess, ledger: Ledger, ids: list[str]) -> None:
    """Publish ``ids`` in one batch; every one must be acknowledged."""
    async with sdk_client(server) as client:
        assert await ledger.publish(client, ids, size=EVENT_BYTES), ledger.errors[-1:]


def health_of(server: ServerProcess) -> tuple[int, int, int]:
    """HTTP status of /health and /health/ready, and the overall gRPC health status."""
    with grpc.insecure_channel(server.target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                           timeout=10)
    return (http_get(f"{server.http}/health")[0], http_get(f"{server.http}/health/ready")[0],
            answer.status)


HALTED = (503, 503, health_pb2.HealthCheckResponse.NOT_SERVING)


async def fill_and_recover(server: ServerProcess, fs: Path, ledger: Ledger, batch: int,
                           rounds: int) -> list[str]:
    """``rounds`` times: fill the disk leaving 0, 1, 2... pages, publish until a write
    fails, make room, try 100 more publishes, restart, check every promise.

    The room left moves the failing write through every kind of write of a
    round (record, new segment, index files). Returns what went wrong with
    the node's behaviour after each failure (empty when nothing did).
    """
    wrong: list[str] = []
    for free_pages in range(rounds):
        fill(fs, leave=free_pages * PAGE)
        await publish_until_refused(server, ledger, f"full{free_pages}", batch)
        failure = ledger.errors[-1]
        health = health_of(server)
        make_room(fs)
        # The reproduction: publish again once space is back.
        async with sdk_client(server) as client:
            for number in range(100):
                await ledger.publish(client, [f"after{free_pages}.{number}"], size=EVENT_BYTES)
        afterwards = ledger.errors[-1] if ledger.errors[-1] is not failure else None
        if failure.code != grpc.StatusCode.UNAVAILABLE or "storage" not in failure.message:
            wrong.append(f"pages {free_pages}: the failed publish got {failure}")
        if health != HALTED:
            wrong.append(f"pages {free_pages}: health after the failure was {health}")
        if afterwards is None or afterwards.code != grpc.StatusCode.UNAVAILABLE:
            wrong.append(f"pages {free_pages}: publishes after the failure got {afterwards}")
        server.stop()
        server.start()
        check_stored(ledger, await read_back(server))
    return wrong


async def test_a_full_disk_loses_no_acknowledged_event_and_reuses_no_offset(tmp_path,
                                                                            start_server):
    """Issue item 1: one event per round, so the failing write is sometimes an index file."""
    with small_filesystem(tmp_path / "fs", FS_BYTES) as fs:
        server = start_server(storage_config(fs))
        ledger = Ledger()
        wrong = await fill_and_recover(server, fs, ledger, batch=1, rounds=5)
        # Events in doubt may be published again with the same ids after the restart.
        async with sdk_client(server) as client:
            await ledger.retry_unknown(client)
            assert await ledger.publish(client, [f"last.{i}" for i in range(100)],
                                        size=EVENT_BYTES)
        server.stop()
        server.start()
        verdict = check_stored(ledger, await read_back(server))
        assert not ledger.unknown
        assert verdict.acknowledged > 100
        assert not wrong, wrong


@pytest.mark.parametrize("free_pages", range(6))
async def test_a_full_disk_while_rolling_a_segment_leaves_a_node_that_restarts(
        tmp_path, start_server, free_pages):
    """Issue item 2: rounds of two events, so segments roll in the middle of a round;
    the room left moves the failing write across a roll."""
    with small_filesystem(tmp_path / "fs", FS_BYTES) as fs:
        server = start_server(storage_config(fs))
        ledger = Ledger()
        await publish_all(server, ledger, [f"warm.{i}" for i in range(5)])
        fill(fs, leave=free_pages * PAGE)
        await publish_until_refused(server, ledger, "full", 2)
        server.stop()
        make_room(fs)
        server.start()
        check_stored(ledger, await read_back(server))
        await publish_all(server, ledger, [f"last.{i}" for i in range(30)])
        server.stop()
        server.start()
        check_stored(ledger, await read_back(server))


async def test_a_halted_node_says_why_and_keeps_serving_readers(tmp_path, start_server):
    """Issue item 4: health is not 200 while every publish fails on a full disk."""
    with small_filesystem(tmp_path / "fs", FS_BYTES) as fs:
        server = start_server(storage_config(fs))
        ledger = Ledger()
        await publish_all(server, ledger, [f"before.{i}" for i in range(20)])
        assert health_of(server)[0] == 200
        assert metric(server, "eventstream_storage_failed") == 0
        fill(fs, leave=0)
        await publish_until_refused(server, ledger, "full", 1)
        failure = ledger.errors[-1]
        assert failure.code == grpc.StatusCode.UNAVAILABLE
        assert failure.reason == "STORAGE_FAILED"
        assert "No space left on device" in failure.message
        assert "outcome of this publish is unknown" in failure.message
        assert health_of(server) == HALTED
        status = json.loads(http_get(f"{server.http}/status")[1])
        assert status["writes"]["halted"] is True
        assert "No space left on device" in status["writes"]["reason"]
        assert metric(server, "eventstream_storage_failed", error="ENOSPC") == 1
        # Room again: still no writes until a restart decides what is durable.
        make_room(fs)
        async with sdk_client(server) as client:
            assert not await ledger.publish(client, ["refused"])
        refusal = ledger.errors[-1]
        assert refusal.code == grpc.StatusCode.UNAVAILABLE
        assert refusal.reason == "STORAGE_FAILED"
        assert "until it restarts" in refusal.message
        # Readers keep working.
        check_stored(ledger, await read_back(server))
        assert server.stop() != 0  # a node that stopped accepting writes does not exit 0
        assert "storage failed" in server.log()


async def test_starting_on_a_full_disk_is_one_line_naming_the_path_and_free_space(
        tmp_path, start_server):
    """Issue item 4: no traceback, exit code 2."""
    with small_filesystem(tmp_path / "fs", FS_BYTES) as fs:
        fill(fs, leave=0)
        server = start_server(storage_config(fs), wait=False)
        code = server.wait_exit()
        output = server.log()
        assert code == 2, output
        assert "Traceback" not in output, output
        (line,) = [line for line in output.splitlines() if "storage error" in line]
        assert str(fs / "data") in line
        assert re.search(rf"{free_bytes(fs)} bytes free", line), line
        assert "No space left on device" in line
