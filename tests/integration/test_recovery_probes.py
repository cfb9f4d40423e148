"""The probes during a long log recovery, on a real member of a three-node cluster.

A member restarted on a data dir of many segments, with recovery slowed down
per segment by the test-only ``EVENTSTREAM_TEST_SLOW_RECOVERY_MS`` (so a few
hundred KiB take as long as a big volume would), must answer /health/live
with 200 from the moment its HTTP port listens (phase ``recovering``: the
kubelet must not restart it), must answer /health/ready with 503 until it
has recovered and caught up with what the cluster committed while it was
down, and must not be ready before.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstream.server.storage.entry_recovery import SLOW_RECOVERY_ENV
from eventstream.v1 import publish_pb2
from tests.support.client import Stubs, event
from tests.support.cluster import Cluster
from tests.support.server import http_get

PAUSE_MS = 100
"""Recovery pause per segment: 8 KiB segments, so about 50 segments take 5 s."""
PAYLOAD = b"p" * 1000
BEFORE = (40, 10)
"""Batches and events per batch before the member stops: about 50 segments to recover."""
WHILE_DOWN = (60, 100)
"""...and while it is down: 6 MB it must fetch from the leader, which takes a while."""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path, 3, {"storage": {"partitions": 2, "segment_bytes": 8192}})
    try:
        yield nodes.start()
    finally:
        nodes.stop()


async def publish(target: str, prefix: str, shape: tuple[int, int]) -> None:
    """``shape`` (batches, events per batch) of events with ids, each acknowledged."""
    batches, size = shape
    stubs = Stubs(target)
    try:
        for number in range(batches):
            request = publish_pb2.PublishBatchRequest(events=[
                event(f"recovery/{i % 2}", PAYLOAD, id=f"{prefix}-{number}-{i}")
                for i in range(size)])
            response = await stubs.publish.PublishBatch(request, timeout=20)
            assert len(response.results) == size
    finally:
        await stubs.close()


def probe(url: str) -> tuple[int, str] | None:
    """(status, phase) of a probe path; None when nothing listens."""
    try:
        code, body = http_get(url)
    except OSError:
        return None
    return code, json.loads(body)["phase"]


async def test_a_member_recovering_a_long_log_stays_live_and_is_ready_only_caught_up(
        cluster: Cluster):
    leader = cluster.wait_leader()
    member = next(node for node in cluster.nodes if node != leader)
    await publish(cluster.nodes[leader].target, "before", BEFORE)
    server = cluster.nodes[member]
    assert server.stop() == 0
    segments = len(list((server.workdir / "data").rglob("*.log")))
    assert segments >= 20, segments
    # What the others commit while it is down: it must hold it before it is ready.
    await publish(cluster.nodes[leader].target, "while-down", WHILE_DOWN)
    committed = cluster.status(leader)["cluster"]["commit_index"]

    server.env[SLOW_RECOVERY_ENV] = str(PAUSE_MS)
    server.start(wait=False)
    live: list[tuple[int, str] | None] = []
    ready: list[tuple[int, str] | None] = []
    deadline = time.monotonic() + 120
    while True:
        assert server.process is not None and server.process.poll() is None, server.log()
        live.append(probe(f"{server.http}/health/live"))
        ready.append(probe(f"{server.http}/health/ready"))
        if ready[-1] is not None and ready[-1][0] == 200:
            applied = cluster.status(member)["cluster"]["applied_index"]
            break
        assert time.monotonic() < deadline, (live[-5:], ready[-5:])
        time.sleep(0.05)

    answered = next(i for i, seen in enumerate(live) if seen is not None)
    # Once it listens, liveness never fails, and recovery was seen from outside.
    assert all(seen is not None and seen[0] == 200 for seen in live[answered:]), live[answered:]
    recovering = [i for i, seen in enumerate(live) if seen == (200, "recovering")]
    assert len(recovering) >= 10, live
    assert all(ready[i] == (503, "recovering") for i in recovering), ready
    # Not ready before it applied what the cluster committed while it was down.
    assert applied >= committed, (applied, committed)
    assert "recovery slowed down on purpose" in server.log()
