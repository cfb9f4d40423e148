"""SIGTERM of a cluster's leader under clients without retries (real processes).

The leader hands leadership over first (the term moves by one, before the
process exits), keeps acknowledging raw gRPC publishes and acknowledged TCP
frames during ``drain_grace_seconds`` (forwarded to the new leader) and keeps
delivering them to its subscriber, and only then refuses them with UNAVAILABLE
naming the shutdown and ends the subscription. Nothing acknowledged
is lost. ``EVENTSTREAM_TEST_SHUTDOWN_ORDER=refuse_first`` (the single node's
order) makes the same check fail.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from eventstream.client.frames import FrameError, TcpFrameSender
from eventstream.v1 import subscribe_pb2
from tests.support.client import Stubs, collect, publish_request, subscribe_request
from tests.support.cluster import Cluster, running_cluster

CONFIG = {"server": {"drain_grace_seconds": 3, "drain_timeout_seconds": 10}}
MAX_PUBLISHES = 5_000
"""Each publisher's bound (it stops at its first refusal long before)."""


@dataclass
class Observed:
    """What the clients and the watcher saw around the SIGTERM."""

    grpc_acks: list[bytes] = field(default_factory=list)
    grpc_acks_after_sigterm: int = 0
    grpc_refusal: grpc.aio.AioRpcError | None = None
    tcp_acks: int = 0
    tcp_acks_after_sigterm: int = 0
    tcp_refusal: Exception | None = None
    new_leader: str = ""
    new_term: int = 0
    leader_changed_before_exit: bool = False
    refused_before_new_leader: bool = False
    delivered: list[bytes] = field(default_factory=list)
    delivered_at_sigterm: int = 0
    subscription_end: grpc.aio.AioRpcError | None = None


async def publish_until_refused(target: str, sigterm: threading.Event, seen: Observed,
                                new_leader: threading.Event) -> None:
    """Publish one event at a time on a raw stub (no retries) until the first refusal."""
    stubs = Stubs(target)
    try:
        for n in range(MAX_PUBLISHES):
            payload = b"grpc-%d" % n
            try:
                await stubs.publish.Publish(publish_request("sig/grpc", payload), timeout=10)
            except grpc.aio.AioRpcError as error:
                seen.grpc_refusal = error
                seen.refused_before_new_leader |= not new_leader.is_set()
                return
            seen.grpc_acks.append(payload)
            seen.grpc_acks_after_sigterm += sigterm.is_set()
            await asyncio.sleep(0.005)
    finally:
        await stubs.close()


async def subscribe_until_ended(target: str, seen: Observed) -> None:
    """Read the gRPC publisher's topic from the node until its stream ends."""
    stubs = Stubs(target)
    try:
        call = stubs.subscribe.Subscribe(subscribe_request(
            "sig/grpc", start_from=subscribe_pb2.START_FROM_EARLIEST))
        try:
            async for response in call:
                seen.delivered.extend(event.payload for event in response.events)
        except grpc.aio.AioRpcError as error:
            seen.subscription_end = error
    finally:
        await stubs.close()


def send_frames_until_refused(port: int, sigterm: threading.Event, seen: Observed,
                              new_leader: threading.Event) -> None:
    """Send one acknowledged frame at a time on a raw TCP connection until the first refusal."""
    sender = TcpFrameSender("127.0.0.1", port, acked=True, timeout=10)
    try:
        for n in range(MAX_PUBLISHES):
            try:
                sender.send("sig/tcp", b"tcp-%d" % n)
                seen.tcp_acks += len(sender.flush())
            except (FrameError, OSError) as error:
                seen.tcp_refusal = error
                seen.refused_before_new_leader |= not new_leader.is_set()
                return
            seen.tcp_acks_after_sigterm += sigterm.is_set()
            time.sleep(0.005)
    finally:
        try:
            sender.close()
        except (FrameError, OSError):
            pass


def watch_leader(cluster: Cluster, old: str, term: int, seen: Observed,
                 new_leader: threading.Event, deadline: float) -> None:
    """Record the first other node that leads, and whether the old leader still ran then."""
    others = [node for node in cluster.nodes if node != old]
    while time.monotonic() < deadline:
        for node in others:
            try:
                view = cluster.status(node)["cluster"]
            except (OSError, ValueError, KeyError):
                continue
            if view["role"] == "leader":
                seen.new_leader, seen.new_term = node, view["term"]
                seen.leader_changed_before_exit = cluster.nodes[old].process.poll() is None
                new_leader.set()
                return
        time.sleep(0.01)


async def sigterm_leader_under_load(cluster: Cluster) -> tuple[Observed, int, int]:
    """SIGTERM the leader while both clients publish to it; returns what was seen, the old term
    and the exit code."""
    leader = cluster.wait_leader()
    term = cluster.status(leader)["cluster"]["term"]
    server = cluster.nodes[leader]
    seen, sigterm, new_leader = Observed(), threading.Event(), threading.Event()
    grpc_task = asyncio.ensure_future(publish_until_refused(server.target, sigterm, seen,
                                                            new_leader))
    tcp_task = asyncio.ensure_future(asyncio.to_thread(
        send_frames_until_refused, server.tcp_port, sigterm, seen, new_leader))
    subscriber = asyncio.ensure_future(subscribe_until_ended(server.target, seen))
    deadline = time.monotonic() + 30
    while min(len(seen.grpc_acks), len(seen.delivered), seen.tcp_acks) < 20 \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    watcher = asyncio.ensure_future(asyncio.to_thread(
        watch_leader, cluster, leader, term, seen, new_leader, time.monotonic() + 30))
    server.signal(signal.SIGTERM)
    sigterm.set()
    seen.delivered_at_sigterm = len(seen.delivered)
    async with asyncio.timeout(60):
        await asyncio.gather(grpc_task, tcp_task, watcher, subscriber)
        code = await asyncio.to_thread(server.wait_exit, 30)
    return seen, term, code


async def read_back(target: str, pattern: str, count: int) -> list[bytes]:
    """The payloads of the first ``count`` events of ``pattern`` on a node."""
    stubs = Stubs(target)
    try:
        call = stubs.subscribe.Subscribe(subscribe_request(
            pattern, start_from=subscribe_pb2.START_FROM_EARLIEST))
        async with asyncio.timeout(30):
            events = await collect(call, count)
        call.cancel()
    finally:
        await stubs.close()
    return [event.payload for event in events]


def assert_handed_over_then_refused(seen: Observed, term: int) -> None:
    """The checks of the member's SIGTERM order (the switch's run must fail them)."""
    assert not seen.refused_before_new_leader, "a publish was refused before the hand-over"
    assert seen.new_leader and seen.new_term == term + 1, (seen.new_leader, seen.new_term)
    assert seen.leader_changed_before_exit
    assert seen.grpc_acks_after_sigterm > 0 and seen.tcp_acks_after_sigterm > 0, seen
    assert seen.grpc_refusal is not None
    assert seen.grpc_refusal.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in (seen.grpc_refusal.details() or "")
    # The subscriber on the stopping node saw events published during the grace.
    assert set(seen.grpc_acks[-seen.grpc_acks_after_sigterm:]) & \
        set(seen.delivered[seen.delivered_at_sigterm:]), "no event of the grace delivered"
    assert seen.subscription_end is not None
    assert seen.subscription_end.code() == grpc.StatusCode.UNAVAILABLE


@pytest.fixture
def cluster(tmp_path: Path):
    with running_cluster(tmp_path, 3, CONFIG) as nodes:
        yield nodes


async def test_sigterm_of_the_leader_hands_over_serves_the_grace_then_refuses(cluster: Cluster):
    seen, term, code = await sigterm_leader_under_load(cluster)
    print(f"\ngRPC acks {len(seen.grpc_acks)} ({seen.grpc_acks_after_sigterm} after SIGTERM), "
          f"TCP acks {seen.tcp_acks} ({seen.tcp_acks_after_sigterm} after SIGTERM)")
    assert_handed_over_then_refused(seen, term)
    assert code == 0
    target = cluster.nodes[seen.new_leader].target
    assert sorted(await read_back(target, "sig/grpc", len(seen.grpc_acks))) == \
        sorted(seen.grpc_acks)
    tcp = await read_back(target, "sig/tcp", seen.tcp_acks)
    assert len(set(tcp)) == seen.tcp_acks


async def test_the_old_order_fails_the_check(tmp_path: Path):
    cluster = Cluster(tmp_path, 3, CONFIG, env={"EVENTSTREAM_TEST_SHUTDOWN_ORDER": "refuse_first"})
    try:
        cluster.start()
        seen, term, _ = await sigterm_leader_under_load(cluster)
        with pytest.raises(AssertionError) as failed:
            assert_handed_over_then_refused(seen, term)
        print(f"\nthe old order fails: {failed.value}")
    finally:
        cluster.stop()
