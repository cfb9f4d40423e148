"""A port that is in use stops start-up with one clear line, exit code 2.

For each listener (gRPC, HTTP, raw TCP, raw UDP) the real server is started
with its port taken: it must name the port, the flag and the config key that
move it, print no traceback, and say nothing of shutting down or draining (it
never started). The flag it names must be one the server takes. A port taken
between the check and the bind (here: a node started in-process after the
check) gets the same line, and whatever was started is released.
"""

from __future__ import annotations

import logging
import socket
import subprocess

import pytest

from tests.support import server as server_support
from tests.support.server import SERVER_COMMAND, ServerProcess, free_port

LISTENERS = {  # name: (port attribute of ServerProcess, socket kind, flag, config key)
    "grpc": ("grpc_port", socket.SOCK_STREAM, "--grpc-port", "server.grpc_port"),
    "http": ("http_port", socket.SOCK_STREAM, "--http-port", "metrics.port"),
    "tcp": ("tcp_port", socket.SOCK_STREAM, "--tcp-port", "server.tcp_port"),
    "udp": ("udp_port", socket.SOCK_DGRAM, "--udp-port", "server.udp_port"),
}
QUIET_AFTER_A_FAILED_START = ("Traceback", "shutting down", "drained", "stopped", "RuntimeError")


def occupy(port: int, kind: int) -> socket.socket:
    """Take ``port`` on 127.0.0.1 as another program would."""
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", port))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    return sock


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_port_in_use_is_named_with_what_moves_it(tmp_path, listener):
    attribute, kind, flag, key = LISTENERS[listener]
    server = ServerProcess(tmp_path)
    port = getattr(server, attribute)
    with occupy(port, kind):
        code, output = server.run_to_exit()
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("eventstream-server: cannot listen: ")
    for word in (str(port), "in use", flag, key):
        assert word in lines[0], (word, output)
    for word in QUIET_AFTER_A_FAILED_START:
        assert word not in output, (word, output)
    advice = subprocess.run([SERVER_COMMAND, "--config", str(server.config_path), flag,
                             str(free_port(kind)), "--check-config"],
                            capture_output=True, text=True, timeout=60)
    assert advice.returncode == 0, advice.stderr


def test_every_port_in_use_is_reported_at_once(tmp_path):
    server = ServerProcess(tmp_path)
    held = [occupy(getattr(server, attribute), kind)
            for attribute, kind, _, _ in LISTENERS.values()]
    try:
        code, output = server.run_to_exit()
    finally:
        for sock in held:
            sock.close()
    assert code == 2
    assert [line.split(":")[2].strip() for line in output.strip().splitlines()] == [
        "gRPC", "HTTP", "TCP frames", "UDP frames"]


async def test_a_port_taken_after_the_check_is_told_the_same_and_the_rest_released(
        tmp_path, caplog):
    from eventstream.server.app import Node
    from eventstream.server.config import load_config
    from eventstream.server.listeners import ListenError

    ports = {name: free_port(kind) for name, (_, kind, _, _) in LISTENERS.items()}
    config = load_config("/dev/null", env={}, overrides={
        "server.host": "127.0.0.1", "server.grpc_port": ports["grpc"],
        "metrics.port": ports["http"], "server.tcp_port": ports["tcp"],
        "server.udp_port": ports["udp"], "cluster.port": free_port(),
        "storage.data_dir": str(tmp_path / "data")})
    caplog.set_level(logging.INFO)
    node = Node(config)
    with occupy(ports["udp"], socket.SOCK_DGRAM):  # the last listener: the others started
        with pytest.raises(ListenError) as error:
            await node.run()
    [problem] = error.value.problems
    assert str(ports["udp"]) in problem and "--udp-port" in problem
    logged = caplog.text
    for word in QUIET_AFTER_A_FAILED_START:
        assert word not in logged, (word, logged)
    for name, (_, kind, _, _) in LISTENERS.items():  # every listener let its port go
        occupy(ports[name], kind).close()


def test_a_test_server_whose_port_was_taken_starts_again_on_new_ports(start_server, monkeypatch):
    """free_port checks a port when it picks it; another process can bind it
    before the server does. The start_server fixture then starts it again on
    new ports instead of failing the test."""
    taken = occupy(free_port(), socket.SOCK_STREAM)
    picks = iter([taken.getsockname()[1]])
    real_free_port = server_support.free_port
    monkeypatch.setattr(server_support, "free_port",
                        lambda kind=socket.SOCK_STREAM: next(picks, None) or real_free_port(kind))
    with taken:
        server = start_server()
        assert server.grpc_port != taken.getsockname()[1]
        assert server.workdir.name == "server-1-retry-1"
    lost = server.workdir.parent / "server-1" / "server.log"
    assert "in use" in lost.read_text()   # the first start did lose its port
