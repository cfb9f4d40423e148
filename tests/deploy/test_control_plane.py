"""The throw-away control plane itself (tests/support/kube.py): it serves the
version tools/k8s pins, its controllers and scheduler act, it listens on
loopback only, and stopping it leaves no process behind."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.kube import ControlPlane, missing_binaries, wait_until

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def pinned_version() -> str:
    return re.search(r'^KUBE_VERSION="(v[0-9.]+)"', (REPO / "tools/k8s/build.sh").read_text(),
                     re.M).group(1)


def listening(pids: set[int]) -> set[str]:
    """Local addresses the processes listen on (TCP), from ss."""
    table = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3] for line in table.splitlines()
            if {int(p) for p in re.findall(r"pid=(\d+)", line)} & pids}


def test_serves_the_pinned_version_on_loopback_and_stops_completely(tmp_path: Path) -> None:
    if missing_binaries():
        pytest.fail(f"{', '.join(missing_binaries())} not built: run tools/k8s/build.sh", pytrace=False)
    plane = ControlPlane(tmp_path).start()
    try:
        versions = json.loads(plane.kubectl("version", "-o", "json").stdout)
        assert versions["serverVersion"]["gitVersion"] == pinned_version()
        assert versions["clientVersion"]["gitVersion"] == pinned_version()
        processes = dict(plane.processes)
        addresses = listening({p.pid for p in processes.values()})
        assert addresses, "etcd and the API server listen"
        assert {a.rsplit(":", 1)[0] for a in addresses} == {"127.0.0.1"}, addresses
        # The scheduler binds a pod to a Ready node it created from nothing.
        plane.create_node("node-a", cpu="1", memory="1Gi")
        plane.apply([{"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": "probe", "namespace": "default"},
                      "spec": {"containers": [{"name": "c", "image": "example.invalid/none"}]}}])
        wait_until(lambda: plane.get("pod", "probe", "-n", "default")["spec"].get("nodeName") == "node-a",
                   60, "the pod scheduled", alive=plane.check_alive)
    finally:
        plane.stop()
    assert plane.processes == {}
    assert all(p.poll() is not None for p in processes.values())
