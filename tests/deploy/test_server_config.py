"""The config.yaml the chart renders is one the real server accepts and runs
with, and the chart's `helm test` script passes against that server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.server import free_port

from .rendering import CI_VALUES, REPO, SINGLE_NODE, ci_values, find, helm_template

try:
    from eventstream.server.config import load_config
except ImportError as error:  # the server package is not installed in this environment
    load_config = None
    IMPORT_ERROR = str(error)
else:
    IMPORT_ERROR = ""

needs_server = pytest.mark.skipif(load_config is None,
                                  reason=f"eventstream.server is not importable: {IMPORT_ERROR}")
SERVER_COMMAND = str(Path(sys.executable).parent / "eventstream-server")


def rendered_config(values: str | None = None, sets: tuple[str, ...] = ()) -> dict[str, Any]:
    files = (ci_values(values),) if values else ()
    (configmap,) = [m for m in helm_template(values_files=files, sets=sets)
                    if m["kind"] == "ConfigMap" and "config.yaml" in m.get("data", {})]
    return yaml.safe_load(configmap["data"]["config.yaml"])


def pod_env(values: str | None = None) -> dict[str, str]:
    """The environment the StatefulSet gives pod 0 (fieldRefs resolved)."""
    overrides = yaml.safe_load(Path(ci_values(values)).read_text()) if values else {}
    pod = f"{overrides.get('fullnameOverride', 'eventstream')}-0"
    return {"POD_NAME": pod, "NODE_ID": pod, "EVENTSTREAM_CLUSTER__NAMESPACE": "eventstream"}


@needs_server
@pytest.mark.parametrize("values", [None, *CI_VALUES])
def test_configmap_loads_with_the_server_loader(tmp_path: Path, values: str | None) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(rendered_config(values)))
    config = load_config(str(path), env=pod_env(values))
    assert config.storage.data_dir == "/var/lib/eventstream"
    assert config.cluster.node_id == pod_env(values)["NODE_ID"]
    assert config.server.host == "0.0.0.0"
    if values is None:
        assert (config.server.grpc_port, config.server.tcp_port, config.server.udp_port,
                config.cluster.port, config.metrics.port) == (9200, 9000, 9001, 9100, 8080)
        assert (config.cluster.enabled, config.cluster.discovery, config.cluster.replicas) == (
            True, "dns", 3)
        assert config.cluster.service == "eventstream-headless"
        assert (config.queues.realtime_capacity, config.queues.batch_capacity) == (16384, 65536)


@needs_server
def test_image_default_config_loads(tmp_path: Path) -> None:
    config = load_config(str(REPO / "deploy" / "docker" / "config.yaml"), env={})
    assert config.storage.data_dir == "/var/lib/eventstream"


def wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    pytest.fail(f"server not healthy after {timeout}s:\n{log.read_text()}")


def start_on_loopback(config: dict[str, Any],
                      tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Run the server with a rendered config, moved to free loopback ports and a
    temporary data directory; once healthy, the process, its gRPC port and its log."""
    grpc_port, http_port = free_port(), free_port()
    config["server"].update(host="127.0.0.1", grpc_port=grpc_port, tcp_port=free_port(),
                            udp_port=free_port(socket.SOCK_DGRAM), drain_grace_seconds=0)
    config["metrics"]["port"] = http_port
    config["cluster"]["port"] = free_port()
    config["storage"]["data_dir"] = str(tmp_path / "data")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([SERVER_COMMAND, "--config", str(path)], stdout=out,
                                   stderr=subprocess.STDOUT, env={**os.environ, **pod_env()})
    try:
        wait_healthy(process, f"http://127.0.0.1:{http_port}/health", log)
    except BaseException:
        terminate(process, 30)
        raise
    return process, grpc_port, log


def terminate(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM the server and wait for its exit code (killed after ``timeout`` seconds)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@needs_server
def test_server_runs_with_the_rendered_config_and_passes_the_helm_test(tmp_path: Path) -> None:
    # One unreplicated node: a lone process has no peers to elect a leader with
    # (tests/integration/test_cluster_dns.py runs three members).
    config = rendered_config(sets=SINGLE_NODE)
    process, grpc_port, log = start_on_loopback(config, tmp_path)
    try:
        # The helm test pod's own command, aimed at this server.
        test_pod = find(helm_template(sets=SINGLE_NODE), "Pod")
        command = test_pod["spec"]["containers"][0]["command"]
        check = subprocess.run([sys.executable, "-c", command[2], f"127.0.0.1:{grpc_port}"],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr + log.read_text()
        assert check.stdout.count("SERVING") == 3, check.stdout
    finally:
        code = terminate(process, config["server"]["drain_timeout_seconds"] + 10)
    assert code == 0, log.read_text()


SECRETS_DIR = "/var/run/secrets/eventstream"


@needs_server
def test_the_rendered_tls_config_serves_the_mounted_certificate_to_the_helm_test(
        tmp_path: Path) -> None:
    from tests.support.certs import Authority, new_token, token_line

    sets = (*SINGLE_NODE, "tls.secretName=es-tls", "tls.tokensSecretName=es-tokens")
    # The Secrets' files, where the pod would have them mounted.
    secrets = tmp_path / "secrets"
    (secrets / "tls").mkdir(parents=True)
    (secrets / "auth").mkdir()
    ca = Authority(tmp_path, "ca")
    served = ca.issue("eventstream", dns=("eventstream.eventstream.svc",), server=True)
    (secrets / "tls" / "tls.crt").write_bytes(served.pem())
    (secrets / "tls" / "tls.key").write_bytes(served.key_pem())
    (secrets / "tls" / "ca.crt").write_bytes(ca.pem())
    (secrets / "auth" / "tokens").write_text(token_line("app", new_token()))
    config = yaml.safe_load(yaml.safe_dump(rendered_config(sets=sets)).replace(
        SECRETS_DIR, str(secrets)))
    assert config["tls"]["enabled"]
    process, grpc_port, log = start_on_loopback(config, tmp_path)
    try:
        container = find(helm_template(sets=sets), "Pod")["spec"]["containers"][0]
        env = {e["name"]: e["value"].replace(SECRETS_DIR, str(secrets)) for e in container["env"]}
        script = container["command"][2]
        target = f"127.0.0.1:{grpc_port}"
        check = subprocess.run([sys.executable, "-c", script, target], capture_output=True,
                               text=True, timeout=60, env={**os.environ, **env})
        assert check.returncode == 0, check.stdout + check.stderr + log.read_text()
        assert check.stdout.count("SERVING") == 3, check.stdout
        # Without the TLS settings the same script cannot reach the port.
        plain = subprocess.run([sys.executable, "-c", script.replace("timeout=10", "timeout=2"),
                                target], capture_output=True, text=True, timeout=60)
        assert plain.returncode == 1, plain.stdout
    finally:
        terminate(process, 30)


def test_helm_test_script_fails_when_nothing_serves() -> None:
    command = find(helm_template(), "Pod")["spec"]["containers"][0]["command"]
    port = free_port()
    check = subprocess.run([sys.executable, "-c", command[2].replace("timeout=10", "timeout=1"),
                            f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 1
    assert "DEADLINE_EXCEEDED" in check.stdout or "UNAVAILABLE" in check.stdout, check.stdout
