"""A history recorded during a leader kill and a partition, checked by porcupine.

Retrying SDK publishers (events with ids) on every node and a reader of
every node run while the leader is SIGKILLed and restarted, and then the
new leader is cut off from its peers (toxiproxy) while a client without
retries publishes to it directly; after healing, complete reads of every
partition from the leader end the history. ``historycheck`` must find it
linearizable as one append-only log per partition. The same run on a build
that acknowledges before replication (the test-only switch) acknowledges
the cut-off leader's publishes, which the majority never had: porcupine must
reject that history.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from eventstream.client import AsyncClient, Event, RetryPolicy
from tests.integration.test_cluster_replication import RETRY
from tests.support.cluster import Cluster
from tests.support.durable import end_offsets
from tests.support.history import HistoryRecorder, check_history
from tests.support.mesh_cluster import mesh_cluster, wait_role

PARTITIONS = 2
MAX_PUBLISHES = 400  # per publisher: they stop earlier, once the faults are over
MAX_READS = 300      # per reader
DIRECT_PUBLISHES = 6  # to the cut-off leader, without retries
CUT_OFF_ROUNDS = 3    # the broken build: until a cut-off leader acknowledged a direct publish
MIN_ACKNOWLEDGED = 160
ONCE = RetryPolicy(max_attempts=1)


async def publisher(recorder: HistoryRecorder, target: str, name: str,
                    stop: asyncio.Event) -> None:
    async with AsyncClient(target, retry=RETRY, timeout=20) as client:
        for i in range(MAX_PUBLISHES):
            if stop.is_set():
                return
            await recorder.publish(client, Event(f"history/{name}", b"%d" % i, key=f"k{i % 7}",
                                                 id=f"{name}-{i}"), client_id=name)


async def reader(recorder: HistoryRecorder, cluster: Cluster, stop: asyncio.Event) -> None:
    """Reads of a random node's applied log: a prefix of the partition (followers may lag)."""
    rng = random.Random(7)
    for _ in range(MAX_READS):
        if stop.is_set():
            return
        server = cluster.nodes[rng.choice(sorted(cluster.nodes))]
        partition = rng.randrange(PARTITIONS)

        async def end(server=server, partition=partition) -> int:
            try:
                return (await asyncio.to_thread(end_offsets, server))[partition]
            except OSError:  # the node is down: an empty read
                return 0
        async with AsyncClient(server.target, retry=ONCE, timeout=5) as client:
            await recorder.read(client, partition, end=end, complete=False, client_id="reader",
                                timeout=10)


def acknowledged(recorder: HistoryRecorder) -> int:
    """Publishes acknowledged so far."""
    return sum(1 for line in recorder.operations
               if line["op"] == "publish" and line["output"]["status"] == "ok")


async def wait_acks(recorder: HistoryRecorder, count: int, timeout: float = 60.0) -> None:
    """Wait until ``count`` more publishes than now were acknowledged."""
    wanted = acknowledged(recorder) + count
    async with asyncio.timeout(timeout):
        while acknowledged(recorder) < wanted:
            await asyncio.sleep(0.02)


def direct_acks(recorder: HistoryRecorder) -> list[dict]:
    """The direct publishes (to a cut-off leader) that were acknowledged."""
    return [line for line in recorder.operations
            if str(line["client"]).startswith("direct") and line["output"]["status"] == "ok"]


async def cut_off_leader(recorder: HistoryRecorder, cluster: Cluster, mesh, round_: int) -> str:
    """Cut the leader off from its peers and publish to it directly, without retries.

    It leads on for about an election timeout, until it misses its quorum: the
    publishes go at once and all together over a connection opened before the
    cut, so they reach it while it still leads even on a busy machine.
    """
    cut_off = await asyncio.to_thread(cluster.wait_leader)
    async with AsyncClient(cluster.nodes[cut_off].target, retry=ONCE, timeout=5) as direct:
        await direct.cluster_status()   # connects (not part of the history)
        await asyncio.to_thread(mesh.isolate, cut_off)
        await asyncio.gather(*(
            recorder.publish(direct, Event("history/direct", b"d", id=f"direct-{round_}-{i}"),
                             client_id=f"direct-{round_}-{i}")
            for i in range(DIRECT_PUBLISHES)))
    await asyncio.to_thread(wait_role, cluster, cut_off, "leader")
    return cut_off


async def record_faults(recorder: HistoryRecorder, cluster: Cluster, mesh, broken: bool) -> str:
    """Kill and restart the leader, then cut off the next one; return the cut-off node."""
    await wait_acks(recorder, 40)
    first = await asyncio.to_thread(cluster.wait_leader)
    await asyncio.to_thread(cluster.nodes[first].kill)
    await asyncio.to_thread(cluster.wait_leader, 30.0, [n for n in cluster.nodes if n != first])
    await wait_acks(recorder, 20)
    code = await asyncio.to_thread(cluster.nodes[first].start_or_exit, 60.0)
    if code is not None:
        # Only the broken build may damage its own restart (it reports entries
        # applied before they are durable); the history is still checked.
        assert broken, f"{first} did not restart (exit {code}):\n{cluster.nodes[first].log()}"
        print(f"\nthe broken build's {first} refused to restart (exit {code})")
    await wait_acks(recorder, 20)

    for round_ in range(CUT_OFF_ROUNDS):
        cut_off = await cut_off_leader(recorder, cluster, mesh, round_)
        majority = [node for node in cluster.running() if node != cut_off]
        if len(majority) == 2:  # (one node short only when the broken build did not restart)
            await asyncio.to_thread(cluster.wait_leader, 30.0, majority)
            await wait_acks(recorder, 20)
        await asyncio.to_thread(mesh.heal)
        await wait_acks(recorder, 20)
        # The broken build must have acknowledged what the cut-off leader alone
        # held; a round whose leader stepped down before any direct publish
        # reached it showed nothing: cut off the next leader.
        if not broken or direct_acks(recorder):
            break
        print(f"\nround {round_}: {cut_off} stepped down before a direct publish reached it")
    # Enough history for the check, however few the publishers got in meanwhile.
    await wait_acks(recorder, max(0, MIN_ACKNOWLEDGED - acknowledged(recorder)))
    return cut_off


@pytest.mark.timeout(300)
@pytest.mark.parametrize("broken", [False, True], ids=["correct", "acks-before-replication"])
async def test_history_during_a_leader_kill_and_a_partition(tmp_path: Path, broken: bool):
    env = {"EVENTSTREAM_TEST_ACK_ON_APPEND": "1"} if broken else {}
    with mesh_cluster(tmp_path, env, PARTITIONS) as (cluster, mesh):
        recorder = HistoryRecorder()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(publisher(recorder, server.target, f"pub-{node}", stop))
                 for node, server in cluster.nodes.items()]
        tasks.append(asyncio.create_task(reader(recorder, cluster, stop)))
        try:
            async with asyncio.timeout(180):
                await record_faults(recorder, cluster, mesh, broken)
        finally:
            stop.set()
            async with asyncio.timeout(60):
                await asyncio.gather(*tasks)

        # The whole of every partition, read from the leader once every publisher returned.
        leader = await asyncio.to_thread(cluster.wait_leader)
        server = cluster.nodes[leader]
        async with AsyncClient(server.target, timeout=20) as client:
            for partition in range(PARTITIONS):
                await recorder.read(client, partition, end=end_offsets(server)[partition],
                                    client_id="final", timeout=30)

    verdict = check_history(recorder, tmp_path, timeout=120)
    report = verdict.report
    print(f"\n{'broken' if broken else 'correct'} build: {report}")
    assert report["partitions"] == list(range(PARTITIONS))
    assert report["publishes_acknowledged"] >= MIN_ACKNOWLEDGED and report["reads"] > PARTITIONS
    # Only the broken build acknowledges what the cut-off leader alone holds.
    direct_acked = direct_acks(recorder)
    if broken:
        assert direct_acked
        assert not verdict.ok, report
        assert verdict.html is not None and verdict.html.is_file()
    else:
        assert verdict.ok, (verdict.problems, verdict.html)
        assert direct_acked == [] and recorder.pending == 0
