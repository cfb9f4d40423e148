"""The gRPC health service of a replicated member follows its readiness.

Three real server processes on 127.0.0.1: a member that knows no leader
reports NOT_SERVING for the server ("") and every public service, as its
/health/ready does, and SERVING again once a leader is back. Checked through
the ``grpc.health.v1.Health`` service with the Python stub (Check and Watch)
and with grpcurl, as an operator or a probe would ask.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from eventstream.server.rpc.server import PUBLIC_SERVICES
from tests.support.cluster import Cluster
from tests.support.server import http_get

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
NAMES = ["", *PUBLIC_SERVICES]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path, 3)
    try:
        yield nodes.start()
    finally:
        nodes.stop()


async def statuses(target: str) -> dict[str, int]:
    """Service name -> the status its Check answers."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return {name: (await stub.Check(health_pb2.HealthCheckRequest(service=name),
                                        timeout=5)).status for name in NAMES}


def grpcurl_status(target: str) -> str:
    """The server's ("") status as grpcurl prints it."""
    assert shutil.which("grpcurl"), "grpcurl not on PATH: run `make tools` (make test does)"
    done = subprocess.run(["grpcurl", "-plaintext", "-d", "{}", target,
                           "grpc.health.v1.Health/Check"],
                          capture_output=True, text=True, timeout=30, check=True)
    return str(json.loads(done.stdout)["status"])


async def wait_all(target: str, wanted: int, timeout: float = 30.0) -> None:
    """Wait until every name reports ``wanted``."""
    deadline = time.monotonic() + timeout
    while (seen := await statuses(target)) != dict.fromkeys(NAMES, wanted):
        assert time.monotonic() < deadline, f"still {seen} after {timeout}s"
        await asyncio.sleep(0.05)


def readiness(url: str) -> tuple[int, str]:
    """(HTTP status, phase) of /health/ready."""
    code, body = http_get(f"{url}/health/ready")
    return code, json.loads(body)["phase"]


async def watched(target: str, into: list[int]) -> None:
    """Record every status a Watch of the server ("") pushes, until cancelled."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        async for response in call:
            into.append(response.status)


async def test_a_member_without_a_leader_is_not_serving_until_one_is_back(cluster: Cluster):
    leader = cluster.wait_leader()
    survivor = next(node for node in cluster.nodes if node != leader)
    server = cluster.nodes[survivor]
    for node in cluster.nodes.values():
        await wait_all(node.target, SERVING)
    assert readiness(server.http)[0] == 200
    assert grpcurl_status(server.target) == "SERVING"

    pushed: list[int] = []
    watch = asyncio.create_task(watched(server.target, pushed))
    try:
        others = [node for node in cluster.nodes if node != survivor]
        for node in others:  # the lone survivor: no majority, so no leader
            cluster.nodes[node].kill()
        await wait_all(server.target, NOT_SERVING)
        assert readiness(server.http) == (503, "no leader known")
        assert grpcurl_status(server.target) == "NOT_SERVING"

        for node in others:
            cluster.nodes[node].start(wait=False)
        await wait_all(server.target, SERVING)
        assert readiness(server.http)[0] == 200
        assert grpcurl_status(server.target) == "SERVING"
        # A Watch was told both changes, in order, as they happened.
        deadline = time.monotonic() + 10
        while pushed[-1:] != [SERVING]:
            assert time.monotonic() < deadline, pushed
            await asyncio.sleep(0.05)
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    assert pushed[0] == SERVING and NOT_SERVING in pushed, pushed
    assert pushed.index(NOT_SERVING) < len(pushed) - 1
