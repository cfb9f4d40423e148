"""Start-up, health, metrics, status, cluster status and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from eventstream.server.native import ABI_VERSION
from eventstream.v1 import cluster_pb2, subscribe_pb2
from tests.support.client import Stubs, collect, publish_request, subscribe_request
from tests.support.server import http_get

SERVICES = ["", "eventstream.v1.PublishService", "eventstream.v1.SubscribeService",
            "eventstream.v1.ClusterService"]


def test_health_goes_from_503_to_200_during_start_up(start_server):
    server = start_server({"server": {"warmup_seconds": 1}}, wait=False)
    seen: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not seen or seen[-1] != 200):
        try:
            code = http_get(f"{server.http}/health", timeout=1)[0]
        except OSError:
            continue  # not listening yet
        if not seen or seen[-1] != code:
            seen.append(code)
    assert seen == [503, 200], server.log()
    assert http_get(f"{server.http}/health/ready")[0] == 200
    assert http_get(f"{server.http}/health/live")[0] == 200


async def test_grpc_health_reports_every_service(server):
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in SERVICES:
            response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_metrics_and_status(server):
    stubs = Stubs(server.target)
    await stubs.publish.Publish(publish_request("m/t"))
    await stubs.close()
    code, body = http_get(f"{server.http}/metrics")
    text = body.decode()
    assert code == 200
    for line in ('eventstream_queue_depth{queue="realtime"}', 'eventstream_queue_depth{queue="batch"}',
                 'eventstream_queue_capacity{queue="realtime"} 16384',
                 'eventstream_queue_capacity{queue="batch"} 65536',
                 "# TYPE eventstream_publish_latency_seconds histogram"):
        assert line in text, line
    assert float(re.search(r"^eventstream_numa_nodes (\S+)$", text, re.M).group(1)) >= 1
    # Start-up objects are frozen: the collector's full passes skip them.
    assert float(re.search(r"^eventstream_gc_frozen (\S+)$", text, re.M).group(1)) > 10_000
    pushed = re.search(r'^eventstream_queue_pushes_total\{queue="batch"\} (\S+)$', text, re.M)
    assert pushed and float(pushed.group(1)) >= 1
    assert 'eventstream_queue_full_total{queue="batch"} 0.0' in text
    code, body = http_get(f"{server.http}/status")
    status = json.loads(body)
    assert code == 200
    assert status["node"] == "test-node" and status["role"] == "leader"
    assert set(status["lanes"]) == {"realtime", "batch"}
    assert status["uptime_seconds"] >= 0 and status["version"]
    assert status["native"]["abi_version"] == ABI_VERSION
    assert isinstance(status["native"]["crc32c_hardware"], bool)
    assert status["numa"]["enabled"] is False and status["numa"]["pinned_node"] is None
    assert len(status["numa"]["nodes"]) >= 1 and status["numa"]["nodes"][0]["cpus"]


async def test_cluster_status_is_a_cluster_of_one(server):
    stubs = Stubs(server.target)
    await stubs.publish.Publish(publish_request("c/t"))
    status = await stubs.cluster.GetClusterStatus(cluster_pb2.GetClusterStatusRequest())
    assert (status.node_id, status.role, status.leader_id) == \
        ("test-node", cluster_pb2.ROLE_LEADER, "test-node")
    assert status.commit_index >= 1 and [m.node_id for m in status.members] == ["test-node"]
    await stubs.close()


async def test_sigterm_drains_refuses_new_publishes_ends_streams_and_exits_0(start_server):
    server = start_server({"server": {"drain_grace_seconds": 1.5, "drain_timeout_seconds": 10}})
    stubs = Stubs(server.target)
    subscription = stubs.subscribe.Subscribe(subscribe_request(
        "#", start_from=subscribe_pb2.START_FROM_EARLIEST))
    acks = await asyncio.gather(*(stubs.publish.Publish(publish_request(f"d/{n}")) for n in range(50)))
    assert len(await collect(subscription, 50)) == 50
    server.signal(signal.SIGTERM)
    codes = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and 503 not in codes:
        try:
            codes.append(http_get(f"{server.http}/health", timeout=1)[0])
        except OSError:
            break
        await asyncio.sleep(0.01)
    assert 503 in codes
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.publish.Publish(publish_request("d/late"))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for _ in subscription:
            pass
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await asyncio.to_thread(server.process.wait, 20) == 0
    assert len(acks) == 50
    await stubs.close()


async def test_numa_enabled_pins_the_event_loop_and_says_so(start_server):
    """On a one-node machine: one node reported, the loop pinned to it, serving as usual."""
    server = start_server({"numa": {"enabled": True}})
    stubs = Stubs(server.target)
    await stubs.publish.Publish(publish_request("numa/t"))
    await stubs.close()
    _, body = http_get(f"{server.http}/status")
    numa = json.loads(body)["numa"]
    assert numa["enabled"] is True
    assert numa["pinned_node"] == numa["nodes"][0]["id"]
