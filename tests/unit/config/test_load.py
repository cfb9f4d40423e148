"""The config loader: defaults, file, env, flags, and every problem reported."""

import pytest

from eventstream.server.config import ConfigError, load_config


def test_defaults_run_locally():
    config = load_config("/dev/null", env={})
    assert (config.server.grpc_port, config.metrics.port, config.storage.data_dir) == (9200, 8080, "./data")
    assert config.cluster.node_id  # falls back to the host name


def test_precedence_file_env_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("queues:\n  batch_capacity: 10\n  realtime_capacity: 5\n")
    config = load_config(str(path), env={"EVENTSTREAM_QUEUES__BATCH_CAPACITY": "20", "NODE_ID": "n1"},
                         overrides={"queues.realtime_capacity": "7"})
    assert (config.queues.batch_capacity, config.queues.realtime_capacity) == (20, 7)
    assert config.cluster.node_id == "n1"


def test_all_problems_are_reported_with_their_source(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  grpc_port: 0\n  nope: 1\nlog:\n  level: loud\n")
    with pytest.raises(ConfigError) as error:
        load_config(str(path), env={"EVENTSTREAM_DEDUP__MAX_IDS": "x"})
    problems = error.value.problems
    assert len(problems) == 4
    assert any("server.nope" in p and str(path) in p for p in problems)
    assert any("server.grpc_port" in p and "between 1 and 65535" in p for p in problems)
    assert any("log.level" in p and "one of" in p for p in problems)
    assert any(p.startswith("env EVENTSTREAM_DEDUP__MAX_IDS") for p in problems)


def test_port_clash_is_refused():
    with pytest.raises(ConfigError, match=r"metrics\.port: port 9200 is also server\.grpc_port"):
        load_config("/dev/null", env={}, overrides={"metrics.port": 9200})


def test_ingest_keys_from_env_and_their_bounds():
    config = load_config("/dev/null", env={"EVENTSTREAM_INGEST__MAX_CONNECTIONS": "3",
                                           "EVENTSTREAM_INGEST__IDLE_TIMEOUT_SECONDS": "0"})
    assert (config.ingest.max_connections, config.ingest.idle_timeout_seconds) == (3, 0.0)
    with pytest.raises(ConfigError) as caught:
        load_config("/dev/null", env={"EVENTSTREAM_INGEST__MAX_FRAME_BYTES": str(2**31),
                                      "EVENTSTREAM_INGEST__UDP_RECEIVE_BUFFER_BYTES": "big"})
    problems = "\n".join(caught.value.problems)
    assert "env EVENTSTREAM_INGEST__MAX_FRAME_BYTES: ingest.max_frame_bytes: must be between" in problems
    assert "ingest.udp_receive_buffer_bytes: expected an integer" in problems


def test_storage_keys_have_safe_defaults_and_checked_values():
    storage = load_config("/dev/null", env={}).storage
    assert (storage.engine, storage.fsync, storage.retention_bytes) == ("disk", "always", 0)
    with pytest.raises(ConfigError) as error:
        load_config("/dev/null", env={"EVENTSTREAM_STORAGE__FSYNC": "sometimes",
                                      "EVENTSTREAM_STORAGE__ENGINE": "tape",
                                      "EVENTSTREAM_STORAGE__SEGMENT_BYTES": "100"})
    assert error.value.problems == [
        "env EVENTSTREAM_STORAGE__ENGINE: storage.engine: must be one of disk, memory, got 'tape'",
        "env EVENTSTREAM_STORAGE__FSYNC: storage.fsync: must be one of always, interval, never, "
        "got 'sometimes'",
        "env EVENTSTREAM_STORAGE__SEGMENT_BYTES: storage.segment_bytes: must be between 4096 and "
        "1073741824, got 100",
    ]


def test_the_lanes_pacing_keys_have_defaults_and_checked_values():
    queues = load_config("/dev/null", env={}).queues
    assert (queues.batch_ingest_mark, queues.batch_yield_ms) == (8192, 20.0)
    off = load_config("/dev/null", env={}, overrides={"queues.batch_ingest_mark": "0",
                                                      "queues.batch_yield_ms": "0"}).queues
    assert (off.batch_ingest_mark, off.batch_yield_ms) == (0, 0.0)
    with pytest.raises(ConfigError) as error:
        load_config("/dev/null", env={"EVENTSTREAM_QUEUES__BATCH_INGEST_MARK": "-1",
                                      "EVENTSTREAM_QUEUES__BATCH_YIELD_MS": "1001"})
    problems = "\n".join(error.value.problems)
    assert "env EVENTSTREAM_QUEUES__BATCH_INGEST_MARK: queues.batch_ingest_mark: must be between" in problems
    assert "env EVENTSTREAM_QUEUES__BATCH_YIELD_MS: queues.batch_yield_ms: must be between" in problems
