"""The real grpcurl binary works through server reflection."""

from __future__ import annotations

import json
import shutil
import subprocess

GRPCURL = shutil.which("grpcurl")


def grpcurl(server, *args: str, data: str | None = None) -> str:
    assert GRPCURL is not None, "grpcurl not on PATH: run `make tools` (make test does)"
    command = [GRPCURL, "-plaintext"]
    if data is not None:
        command += ["-d", data]
    result = subprocess.run([*command, server.target, *args], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_grpcurl_lists_describes_and_publishes(server):
    services = grpcurl(server, "list").split()
    for name in ("eventstream.v1.PublishService", "eventstream.v1.SubscribeService",
                 "eventstream.v1.ClusterService", "grpc.health.v1.Health",
                 "grpc.reflection.v1alpha.ServerReflection"):
        assert name in services
    methods = grpcurl(server, "list", "eventstream.v1.PublishService").split()
    assert methods == ["eventstream.v1.PublishService.Publish",
                       "eventstream.v1.PublishService.PublishBatch",
                       "eventstream.v1.PublishService.PublishStream"]
    assert "rpc Subscribe" in grpcurl(server, "describe", "eventstream.v1.SubscribeService")
    ack = json.loads(grpcurl(server, "eventstream.v1.PublishService/Publish", data=json.dumps(
        {"event": {"topic": "sensors/a", "payload": "aGVsbG8=", "priority": "PRIORITY_HIGH",
                   "headers": {"unit": "C"}}})))["ack"]
    assert ack["durability"] == "DURABILITY_FSYNCED" and ack["id"]
    # A subscription streams until the client stops it: -max-time ends it here.
    result = subprocess.run(
        [GRPCURL, "-plaintext", "-max-time", "2", "-d",
         '{"patterns": ["sensors/#"], "startFrom": "START_FROM_EARLIEST"}',
         server.target, "eventstream.v1.SubscribeService/Subscribe"],
        capture_output=True, text=True, timeout=30)
    assert "DeadlineExceeded" in result.stderr
    delivered = json.loads(result.stdout)["events"][0]
    assert (delivered["topic"], delivered["id"], delivered["headers"]) == ("sensors/a", ack["id"], {"unit": "C"})
    status = json.loads(grpcurl(server, "eventstream.v1.ClusterService/GetClusterStatus", data="{}"))
    assert status["role"] == "ROLE_LEADER"
    health = json.loads(grpcurl(server, "grpc.health.v1.Health/Check", data="{}"))
    assert health["status"] == "SERVING"
