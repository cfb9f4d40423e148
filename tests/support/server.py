"""Start the real ``eventstream-server`` as a subprocess on free loopback ports."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

SERVER_COMMAND = str(Path(sys.executable).parent / "eventstream-server")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


EPHEMERAL_LOW = _ephemeral_low()
"""Where the kernel's ephemeral (outgoing) ports start."""

_handed_out: set[int] = set()
"""Ports :func:`free_port` returned in this process: a cluster takes a dozen
before its first server binds any, and a port picked twice would stop it."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free on 127.0.0.1 a moment ago, below the ephemeral range.

    Not an ephemeral port: while a server is down (killed, restarting), its
    peers and pollers keep connecting to its ports, and a connection to a
    closed loopback port in the ephemeral range can get that very port as its
    own source (a TCP self-connect), so the restarted server could not bind it.
    Never the same port twice in one process.
    """
    for _ in range(200):
        port = random.randrange(10000, EPHEMERAL_LOW)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise AssertionError(f"no free port in 10000-{EPHEMERAL_LOW - 1} after 200 tries")


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body) of a GET; raises OSError when nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def metric(server: ServerProcess, name: str, scrape_timeout: float = 10.0, **labels: str) -> float:
    """Value of one series on the server's /metrics (0 when absent)."""
    _, body = http_get(f"{server.http}/metrics", timeout=scrape_timeout)
    for line in body.decode().splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


def wait_for_metric(server: ServerProcess, name: str, wanted: float, timeout: float = 30.0,
                    **labels: str) -> float:
    """Poll a series until it reaches ``wanted`` or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = metric(server, name, **labels)
        if value >= wanted or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


class ServerProcess:
    """One server process with its own ports and data directory.

    Args:
        workdir: where the config file, data and logs go.
        config: config sections merged over the test defaults.
        args: extra command-line arguments.
    """

    def __init__(self, workdir: Path, config: dict[str, Any] | None = None,
                 args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.tcp_port = free_port()
        self.udp_port = free_port(socket.SOCK_DGRAM)
        sections: dict[str, Any] = {
            "server": {"host": "127.0.0.1", "grpc_port": self.grpc_port,
                       "tcp_port": self.tcp_port, "udp_port": self.udp_port},
            "metrics": {"port": self.http_port},
            "storage": {"data_dir": str(workdir / "data")},
            "cluster": {"node_id": "test-node", "port": free_port()},
        }
        for section, values in (config or {}).items():
            sections.setdefault(section, {}).update(values)
        self.host = sections["server"]["host"]
        """The address every listener binds (127.0.0.1 unless the config says another loopback one)."""
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(sections))
        self.args = args or []
        self.env = {**os.environ, **(env or {})}
        self.log_path = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        """GRPC target."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def http(self) -> str:
        """Base URL of the HTTP listener."""
        return f"http://{self.host}:{self.http_port}"

    def start(self, wait: bool = True) -> ServerProcess:
        """Start the process; with ``wait``, return once /health answers 200."""
        self._log = open(self.log_path, "ab")  # a restart on the same data dir keeps the log
        self.process = subprocess.Popen(
            [SERVER_COMMAND, "--config", str(self.config_path), *self.args],
            stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30.0, path: str = "/health") -> None:
        """Poll ``path`` until 200; fail with the server's log if it exits or times out.

        /health is 200 once the node serves (a cluster member: once it knows a
        leader and has caught up); /health/live as soon as it answers at all.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if http_get(f"{self.http}{path}")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"server not healthy ({path}) after {timeout}s:\n{self.log()}")

    def lost_a_port(self) -> bool:
        """Whether the process exited because a port it was given was taken meanwhile.

        :func:`free_port` checks a port only when it picks it: another process
        (another test run on the machine) can bind it before this server does.
        """
        return (self.process is not None and self.process.poll() == 2
                and "cannot listen" in (log := self.log()) and "in use" in log)

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for a process expected to exit by itself (e.g. refusing to start); its code."""
        assert self.process is not None
        code = self.process.wait(timeout)
        self._log.close()
        return code

    def start_or_exit(self, timeout: float = 30.0) -> int | None:
        """Start; return None once /health answers 200, or the exit code if the process exits."""
        self.start(wait=False)
        assert self.process is not None
        try:
            self.wait_healthy(timeout)
        except AssertionError:
            code = self.process.poll()
            if code is None:
                raise
            self._log.close()
            return code
        return None

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send a signal."""
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL (a crash) and wait for the process to be gone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self._log.close()

    def run_to_exit(self, timeout: float = 30.0) -> tuple[int, str]:
        """Start a server expected to refuse to start; return (exit code, its output)."""
        self.start(wait=False)
        assert self.process is not None
        try:
            code = self.process.wait(timeout)
        finally:
            self.stop()
        return code, self.log()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for exit (SIGKILL after ``timeout``); return the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode
