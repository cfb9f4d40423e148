"""``cluster.discovery: dns`` against a DNS responder the test runs on 127.0.0.1.

The peers are the StatefulSet's pod names under the headless service; their
records appear only once the pods have addresses, so discovery retries until
this node's and a majority's names resolve. The names (as ``dns://`` targets
of the responder) are what the gRPC peer links dial: three Raft drivers on
127.0.0.1, .2 and .3, all on one cluster port as pods are, elect a leader
through them.
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from eventstream.server.cluster.discovery import DiscoveryError, DnsDiscovery, peer_discovery
from eventstream.server.cluster.transport import GrpcTransport
from eventstream.server.config.load import load_config
from eventstream.server.config.model import ClusterConfig
from eventstream.server.testing.raft_cluster import LocalCluster
from tests.support.dns import Responder
from tests.support.server import free_port

pytestmark = pytest.mark.timeout(120)

SERVICE = "eventstream-headless.streams.svc.cluster.local"


def host(ordinal: int) -> str:
    return f"eventstream-{ordinal}.{SERVICE}"


def settings(responder: Responder, node: str, **more: object) -> ClusterConfig:
    overrides = {"cluster.discovery": "dns", "cluster.node_id": node, "cluster.replicas": 3,
                 "cluster.namespace": "streams", "cluster.dns_server": responder.address, **more}
    return load_config(env={}, overrides=overrides).cluster


async def test_waits_for_this_node_and_a_majority_then_names_every_member(
        responder: Responder, caplog: pytest.LogCaptureFixture) -> None:
    discovery = peer_discovery(settings(responder, "eventstream-1"))
    assert isinstance(discovery, DnsDiscovery)
    caplog.set_level(logging.INFO, "eventstream.server.cluster.discovery")
    started = asyncio.create_task(discovery.start())
    # Pods start before their records exist: asked, refused, asked again.
    await asyncio.to_thread(responder.wait_asked, host(1), 2)
    responder.set(host(0), "192.0.2.10")
    await asyncio.to_thread(responder.wait_asked, host(1), responder.asked(host(1)) + 1)
    assert not started.done(), "this node's own name does not resolve yet"
    responder.set(host(1), "192.0.2.11")  # now this node and eventstream-0: 2 of 3
    peers = await asyncio.wait_for(started, 30)
    await discovery.stop()

    assert peers == {f"eventstream-{n}": f"dns://{responder.address}/{host(n)}:9100" for n in range(3)}
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert retries and "no such name" in retries[0] and host(1) in retries[0]
    done = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("2 of 3 members resolve" in line and f"not yet resolving: {host(2)}" in line
               for line in done), done


async def test_a_pod_beyond_the_voters_waits_for_a_majority_of_them(responder: Responder) -> None:
    for ordinal in (0, 1, 3):
        responder.set(host(ordinal), f"192.0.2.{ordinal + 1}")
    peers = await DnsDiscovery(settings(responder, "eventstream-3")).start()
    assert sorted(peers) == ["eventstream-0", "eventstream-1", "eventstream-2", "eventstream-3"]


async def test_gives_up_after_the_bound_naming_what_is_missing(responder: Responder) -> None:
    responder.set(host(0), "192.0.2.1")
    discovery = DnsDiscovery(settings(responder, "eventstream-0", **{
        "cluster.discovery_timeout_seconds": 0.5}))
    with pytest.raises(DiscoveryError) as raised:
        await discovery.start()
    [problem] = raised.value.problems
    assert "cluster.discovery_timeout_seconds" in problem
    assert f"{host(1)}: no such name" in problem and f"{host(2)}: no such name" in problem
    attempts = int(re.search(r"after (\d+) attempts?", problem)[1])
    assert attempts >= 1 and responder.asked(host(1)) >= attempts, "each attempt asked again"


def test_a_node_id_without_an_ordinal_is_refused(responder: Responder) -> None:
    with pytest.raises(DiscoveryError, match=r"cluster.node_id: 'laptop' is not a StatefulSet pod name"):
        peer_discovery(settings(responder, "laptop"))


async def test_raft_drivers_elect_a_leader_over_the_dns_targets(responder: Responder) -> None:
    port = free_port()
    transports = {}
    for ordinal in range(3):
        responder.set(host(ordinal), f"127.0.0.{ordinal + 1}")
    try:
        peer_maps = {}
        for ordinal in range(3):
            node = f"eventstream-{ordinal}"
            peer_maps[node] = await DnsDiscovery(settings(responder, node, **{"cluster.port": port})).start()
        asked_by_discovery = {n: responder.asked(host(n)) for n in range(3)}
        for ordinal, (node, peers) in enumerate(sorted(peer_maps.items())):
            transport = transports[node] = GrpcTransport(node, "dns-test", peers)
            await transport.start(f"127.0.0.{ordinal + 1}", port)
        group = LocalCluster(transports)
        await group.start()
        try:
            leader = await group.wait_for_leader(timeout=60)
            assert leader.is_leader
            await group.wait_until(lambda: all(
                len(transport.connected_peers()) == 2 for transport in transports.values()))
            # The links resolved the names themselves, through the responder.
            assert all(responder.asked(host(n)) > asked_by_discovery[n] for n in range(3))
        finally:
            await group.stop()
    finally:
        for transport in transports.values():
            await transport.stop()
