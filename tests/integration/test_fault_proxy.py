"""toxiproxy (a real toxiproxy-server) between an SDK client and a real server's gRPC port.

Shows the fault harness of the cluster tests doing what it claims: latency
and bandwidth toxics slow calls down by at least what they add, a partition
makes calls time out with the connection open, and a cut link fails calls
until it is restored, after which the same client publishes again.
Durations are only checked from below (a toxic can only add time).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from eventstream.client import AsyncClient, Event, EventStreamError
from tests.support.cluster_tools import install_cluster_tools
from tests.support.toxiproxy import Toxiproxy, ToxiproxyError

LATENCY_MS = 150


@pytest.fixture
def toxiproxy(tmp_path: Path) -> Iterator[Toxiproxy]:
    install_cluster_tools()
    with Toxiproxy(tmp_path) as proxy:
        yield proxy


async def timed_publish(client: AsyncClient, event: Event, timeout: float = 20) -> float:
    started = time.monotonic()
    await client.publish(event, timeout=timeout)
    return time.monotonic() - started


async def test_latency_and_bandwidth_toxics_slow_calls_by_what_they_add(start_server, toxiproxy):
    server = start_server()
    link = toxiproxy.link("client-server", server.grpc_port)
    assert toxiproxy.version() == "2.5.0"
    async with AsyncClient(link.target, timeout=20) as client:
        await client.publish(Event("toxic/warm", b"x"))

        link.add_latency(LATENCY_MS)  # on the replies
        slowed = [await timed_publish(client, Event("toxic/slow", b"x")) for _ in range(3)]
        assert min(slowed) >= LATENCY_MS / 1000
        assert [(t["type"], t["stream"]) for t in link.toxics()] == [("latency", "downstream")]
        link.heal()
        assert link.toxics() == []

        link.add_bandwidth(64, stream="upstream")  # 128 KiB at 64 KB/s: about 2 s
        assert await timed_publish(client, Event("toxic/big", bytes(128 * 1024))) >= 1.5
        link.heal()
        await client.publish(Event("toxic/after", b"x"))


async def test_a_partitioned_link_times_calls_out_until_healed(start_server, toxiproxy):
    server = start_server()
    link = toxiproxy.link("client-server", server.grpc_port)
    async with AsyncClient(link.target, timeout=20) as client:
        await client.publish(Event("partition/before", b"x"))
        link.partition()
        with pytest.raises(EventStreamError) as failed:
            await client.publish(Event("partition/during", b"x"), timeout=1)
        assert failed.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert link.enabled  # the connection stayed open: the bytes went nowhere
        link.heal()
    # The connection lost bytes mid-stream: a new one works.
    async with AsyncClient(link.target, timeout=20) as client:
        await client.publish(Event("partition/after", b"x"))


async def test_a_cut_link_fails_calls_and_works_again_once_restored(start_server, toxiproxy):
    server = start_server()
    link = toxiproxy.link("client-server", server.grpc_port)
    async with AsyncClient(link.target, timeout=20) as client:
        await client.publish(Event("cut/before", b"x"))
        link.cut()
        assert not link.enabled
        with pytest.raises(EventStreamError) as failed:
            await client.publish(Event("cut/during", b"x"), timeout=2)
        assert failed.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        link.restore()
        assert link.enabled
        # The same client reconnects within its retry budget.
        after = await client.publish(Event("cut/after", b"x", id="after-the-cut"), timeout=30)
        assert after.id == "after-the-cut" and not after.duplicate
    # Straight to the server, the link's state never mattered.
    async with AsyncClient(server.target, timeout=20) as direct:
        await direct.publish(Event("cut/direct", b"x"))


def test_the_api_refuses_what_it_cannot_do(toxiproxy):
    link = toxiproxy.link("a-b", 1)
    with pytest.raises(ToxiproxyError, match="409"):
        toxiproxy.link("a-b", 1)  # the name is taken
    with pytest.raises(ToxiproxyError, match="400"):
        link.add_toxic("no-such-toxic", {})
    toxiproxy.reset()
    assert link.enabled and link.toxics() == []


async def reaches(target: str, timeout: float) -> bool:
    """Whether a publish through ``target`` is acknowledged within ``timeout`` seconds."""
    async with AsyncClient(target, timeout=timeout) as client:
        try:
            await client.publish(Event("mesh/probe", b"x"), timeout=timeout)
        except EventStreamError:
            return False
    return True


# A cut-off link fails whatever the deadline; one that works gets a generous one.
CUT_OFF, WORKS = 1.0, 20.0


async def test_a_mesh_isolates_one_node_and_heals(start_server, toxiproxy):
    # Three real servers stand for three peers; node a "dials" b through links[a, b].
    servers = {name: start_server() for name in ("a", "b", "c")}
    mesh = toxiproxy.mesh({name: server.grpc_port for name, server in servers.items()})
    assert len(mesh.links) == 6 and mesh.nodes == ["a", "b", "c"]
    assert mesh.links["a", "b"].upstream == f"127.0.0.1:{servers['b'].grpc_port}"
    mesh.isolate("b")
    assert {pair for pair, link in mesh.links.items() if link.toxics()} == {
        ("a", "b"), ("b", "a"), ("c", "b"), ("b", "c")}
    assert not await reaches(mesh.address("a", "b"), CUT_OFF)
    assert not await reaches(mesh.address("b", "c"), CUT_OFF)
    assert await reaches(mesh.address("a", "c"), WORKS)
    mesh.heal()
    assert all(not link.toxics() for link in mesh.links.values())
    assert await reaches(mesh.address("a", "b"), WORKS)
    assert await reaches(mesh.address("b", "c"), WORKS)
