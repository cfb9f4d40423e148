"""Configuration errors stop start-up with one line per problem.

Each line names the key and its source: for the file, the line and column of
the key (``config.yaml:3:5:``), as YAML syntax errors do too; unknown keys
close to a known one get a "did you mean"; a section or key written twice is
refused; bounds are printed as written, not in exponent notation. Checked
through the real process, with ``--check-config`` and at start-up alike.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.support.server import SERVER_COMMAND

# (file, the one line's position in the file, words the line must hold)
CASES = {
    "unknown key": ("queues:\n  realtime_capacity: 10\n  bogus_key: 1\n", "3:3",
                    ["unknown key 'queues.bogus_key'"]),
    "wrong type": ("queues:\n  batch_capacity: lots\n", "2:3",
                   ["queues.batch_capacity", "expected an integer", "'lots'"]),
    "out of range": ("server:\n  grpc_port: 70000\n", "2:3",
                     ["server.grpc_port", "between 1 and 65535"]),
    "bound as an integer": ("storage:\n  segment_bytes: 100\n", "2:3",
                            ["storage.segment_bytes", "between 4096 and 1073741824"]),
    "unknown section": ("nonsense:\n  a: 1\n", "1:1",
                        ["unknown section 'nonsense'", "sections: server, queues"]),
    "section near miss": ("storag:\n  data_dir: /tmp/x\n", "1:1",
                          ["unknown section 'storag'", "did you mean 'storage'?"]),
    "key near miss": ("server:\n  host: 127.0.0.1\n  grpcport: 9300\n", "3:3",
                      ["unknown key 'server.grpcport'", "did you mean 'server.grpc_port'?"]),
    "key of another section": ("server:\n  data_dir: /tmp/x\n", "2:3",
                               ["unknown key 'server.data_dir'",
                                "did you mean 'storage.data_dir'?"]),
    "section twice": ("queues:\n  batch_capacity: 10\nserver:\n  host: 127.0.0.1\n"
                      "queues:\n  realtime_capacity: 5\n", "5:1",
                      ["section 'queues' is written twice", "first at line 1"]),
    "key twice": ("queues:\n  batch_capacity: 10\n  batch_capacity: 20\n", "3:3",
                  ["key 'queues.batch_capacity' is written twice", "first at line 2"]),
    "yaml syntax": ("server:\n  grpc_port: [1, 2\n  tcp_port: 3\n", "3:11",
                    ["not valid YAML", "expected ',' or ']'"]),
    "not a mapping": ("- server\n- queues\n", "1:1",
                      ["the top level must be a mapping of sections"]),
}


@pytest.mark.parametrize("check_only", [True, False], ids=["check-config", "start-up"])
@pytest.mark.parametrize("case", CASES)
def test_a_config_problem_is_one_line_with_its_position(tmp_path, case, check_only):
    text, position, words = CASES[case]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    result = subprocess.run([SERVER_COMMAND, "--config", str(path)]
                            + (["--check-config"] if check_only else []),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"eventstream-server: config error: {path}:{position}: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in result.stderr


def test_every_problem_of_a_file_is_reported_each_on_its_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  grpcport: 9300\nstorag:\n  data_dir: x\n"
                    "queues:\n  batch_capacity: -1\n")
    result = subprocess.run([SERVER_COMMAND, "--config", str(path), "--check-config"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    positions = sorted(line.split(f"{path}:")[1].split(":")[0]
                       for line in result.stderr.strip().splitlines())
    assert positions == ["2", "3", "6"], result.stderr


def test_env_and_flag_errors_name_their_source(tmp_path):
    result = subprocess.run(
        [SERVER_COMMAND, "--config", "/dev/null", "--grpc-port", "0x", "--check-config"],
        capture_output=True, text=True, timeout=30,
        env={"EVENTSTREAM_QUEUES__REALTIME_CAPACITY": "-5", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "env EVENTSTREAM_QUEUES__REALTIME_CAPACITY: queues.realtime_capacity" in result.stderr
    assert "flag server.grpc_port: server.grpc_port" in result.stderr


def test_env_and_flag_near_misses_get_a_did_you_mean():
    result = subprocess.run(
        [SERVER_COMMAND, "--config", "/dev/null", "--set", "server.grpcport=1", "--check-config"],
        capture_output=True, text=True, timeout=30,
        env={"EVENTSTREAM_STORAG__DATA_DIR": "x", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "eventstream-server: config error: env EVENTSTREAM_STORAG__DATA_DIR: unknown section "
        "'storag' (did you mean 'storage'?)",
        "eventstream-server: config error: flag server.grpcport: unknown key 'server.grpcport' "
        "(did you mean 'server.grpc_port'?)",
    ]


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
