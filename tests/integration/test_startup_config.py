"""Configuration errors stop start-up with one line per bad key."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.server import SERVER_COMMAND

CASES = [
    ("queues:\n  realtime_capacity: 10\n  bogus_key: 1\n", "queues.bogus_key"),
    ("queues:\n  batch_capacity: lots\n", "queues.batch_capacity"),
    ("server:\n  grpc_port: 70000\n", "server.grpc_port"),
    ("nonsense:\n  a: 1\n", "nonsense.a"),
]


@pytest.mark.parametrize("text,key", CASES, ids=[key for _, key in CASES])
def test_bad_config_exits_non_zero_naming_the_key(tmp_path, text, key):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    result = subprocess.run([SERVER_COMMAND, "--config", str(path)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and str(path) in lines[0], result.stderr


def test_env_and_flag_errors_name_their_source(tmp_path):
    result = subprocess.run(
        [SERVER_COMMAND, "--config", "/dev/null", "--grpc-port", "0x", "--check-config"],
        capture_output=True, text=True, timeout=30,
        env={"EVENTSTREAM_QUEUES__REALTIME_CAPACITY": "-5", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "env EVENTSTREAM_QUEUES__REALTIME_CAPACITY: queues.realtime_capacity" in result.stderr
    assert "flag server.grpc_port: server.grpc_port" in result.stderr


def test_seed_config_loads_and_env_overrides_apply(tmp_path):
    seed = """
server:
  tcp_port: 9000
  udp_port: 9001
  grpc_port: 9200
queues:
  realtime_capacity: 16384
  batch_capacity: 65536
cluster:
  enabled: true
  discovery: kubernetes
  namespace: eventstream
  service: eventstream-headless
metrics:
  enabled: true
  port: 8080
  path: /metrics
"""
    path = tmp_path / "config.yaml"
    path.write_text(seed)
    result = subprocess.run(
        [SERVER_COMMAND, "--config", str(path), "--check-config"], capture_output=True,
        text=True, timeout=30,
        env={"POD_NAME": "eventstream-1", "EVENTSTREAM_QUEUES__BATCH_CAPACITY": "1000",
             "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "node_id: eventstream-1" in result.stdout
    assert "batch_capacity: 1000" in result.stdout
