"""``cluster.discovery: kubernetes`` against a real API server and its controllers.

The chart is installed with kubernetes discovery; the tests play the kubelet
(pods running at 192.0.2.x, which the real EndpointSlice controller publishes
for the headless service) and discovery runs with a token of the chart's
ServiceAccount, so with exactly the chart's RBAC. It finds the pods, and its
watch follows the StatefulSet scaling up and a pod coming back at a new
address. A token without the Role is refused, and the error says what is
missing. EndpointSlices written by the test (a Service without a selector)
show the watch's added, modified and deleted slices, and the real server
process finds its peers through the API server at start-up, with a kubeconfig
and as in a pod (the service account token and CA at the path Kubernetes
mounts them, the API server in KUBERNETES_SERVICE_HOST/PORT).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventstream.server.cluster.discovery import DiscoveryError, peer_discovery
from eventstream.server.config.load import load_config
from eventstream.server.config.model import ClusterConfig
from tests.support.kube import ControlPlane, Kubelet
from tests.support.server import SERVER_COMMAND, ServerProcess

from .cluster import endpoint_addresses, install
from .test_cluster_rbac import service_account_kubeconfig

pytestmark = pytest.mark.timeout(300)

HEADLESS = "eventstream-headless"


def settings(namespace: str, kubeconfig: Path, **more: object) -> ClusterConfig:
    return load_config(env={}, overrides={
        "cluster.discovery": "kubernetes", "cluster.namespace": namespace, "cluster.service": HEADLESS,
        "cluster.node_id": "eventstream-0", "cluster.replicas": 3, "cluster.kubeconfig": str(kubeconfig),
        **more}).cluster


def pod_targets(plane: ControlPlane, namespace: str) -> dict[str, str]:
    """Pod name -> ``podIP:9100`` of the namespace's running pods."""
    pods = plane.get("pods", "-n", namespace)["items"]
    return {pod["metadata"]["name"]: f"{pod['status']['podIP']}:9100" for pod in pods
            if pod.get("status", {}).get("podIP") and not pod["metadata"].get("deletionTimestamp")}


def own_connections_to(port: int) -> list[str]:
    """This process's TCP sockets connected to 127.0.0.1:``port`` (local ``ip:port`` each)."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue   # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if inode in inodes and remote == f"0100007F:{port:04X}":
            found.append(local)
    return found


async def next_map(changes: asyncio.Queue[dict[str, str]], wanted: Callable[[dict[str, str]], bool],
                   kubelet: Kubelet, what: str) -> dict[str, str]:
    """The first peer map from the watch that is ``wanted``, playing the kubelet meanwhile."""
    async with asyncio.timeout(120):
        while True:
            await asyncio.to_thread(kubelet.run_once)
            try:
                peers = await asyncio.wait_for(changes.get(), 0.5)
            except TimeoutError:
                continue
            if wanted(peers):
                return peers


async def test_finds_the_pods_and_follows_scaling_and_a_moved_pod(
        control_plane: ControlPlane, namespace: str, nodes: Callable[..., list[str]],
        tmp_path: Path) -> None:
    plane = control_plane
    nodes(2, cpu="2", memory="4Gi")
    install(plane, namespace, "cluster.discovery=kubernetes", "replicas=3",
            "persistence.enabled=false")
    kubelet = Kubelet(plane, namespace)
    await asyncio.to_thread(kubelet.until, lambda: len(endpoint_addresses(plane, namespace, HEADLESS)) == 3,
                            "three pods in the headless service's EndpointSlices")
    token = service_account_kubeconfig(plane, namespace, "eventstream", tmp_path)
    changes: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def changed(peers) -> None:
        changes.put_nowait(dict(peers))

    discovery = peer_discovery(settings(namespace, token))
    try:
        peers = await discovery.start(on_change=changed)
        assert peers == pod_targets(plane, namespace)
        assert sorted(peers) == ["eventstream-0", "eventstream-1", "eventstream-2"]
        assert all(target.startswith("192.0.2.") for target in peers.values())

        # Scaled up: the fourth pod appears through the watch.
        await asyncio.to_thread(plane.kubectl, "scale", "statefulset", "eventstream", "--replicas=4",
                                "-n", namespace)
        scaled = await next_map(changes, lambda p: "eventstream-3" in p, kubelet, "eventstream-3 seen")
        assert scaled == pod_targets(plane, namespace)

        # A pod replaced (new uid, new address): the watch follows it.
        before = scaled["eventstream-1"]
        await asyncio.to_thread(plane.kubectl, "delete", "pod", "eventstream-1", "-n", namespace,
                                "--wait=false")
        moved = await next_map(changes, lambda p: p.get("eventstream-1", before) != before, kubelet,
                               "eventstream-1 at a new address")
        assert moved["eventstream-1"] == pod_targets(plane, namespace)["eventstream-1"] != before
        assert len(moved) == 4
    finally:
        await discovery.stop()


def endpoint_slice(name: str, service: str, *endpoints: dict[str, object]) -> dict[str, object]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service,
                                                  "endpointslice.kubernetes.io/managed-by": "tests"}},
            "addressType": "IPv4", "ports": [{"name": "cluster", "port": 9100, "protocol": "TCP"}],
            "endpoints": list(endpoints)}


def endpoint(pod: str, address: str, by_hostname: bool = False) -> dict[str, object]:
    if by_hostname:
        return {"addresses": [address], "hostname": pod}
    return {"addresses": [address], "targetRef": {"kind": "Pod", "name": pod}}


async def test_the_watch_follows_slices_added_changed_and_deleted(
        control_plane: ControlPlane, namespace: str) -> None:
    plane = control_plane

    def apply(*manifests: dict[str, object]) -> None:
        plane.apply([{**m, "metadata": {**m["metadata"], "namespace": namespace}}
                     for m in manifests])

    plane.kubectl("create", "namespace", namespace)
    apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": HEADLESS},
           "spec": {"clusterIP": "None", "ports": [{"name": "cluster", "port": 9100}]}})
    apply(endpoint_slice("a", HEADLESS, endpoint("eventstream-0", "192.0.2.1"),
                         endpoint("eventstream-1", "192.0.2.2")),
          endpoint_slice("other", "another-service", endpoint("eventstream-9", "192.0.2.9")))
    changes: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def changed(peers) -> None:
        changes.put_nowait(dict(peers))

    async def expect(peers: dict[str, str]) -> None:
        async with asyncio.timeout(60):
            while await changes.get() != peers:
                pass

    discovery = peer_discovery(settings(namespace, plane.kubeconfig))
    try:
        assert await discovery.start(on_change=changed) == {
            "eventstream-0": "192.0.2.1:9100", "eventstream-1": "192.0.2.2:9100"}
        await asyncio.to_thread(apply, endpoint_slice("b", HEADLESS, endpoint(
            "eventstream-2", "192.0.2.3", by_hostname=True)))
        await expect({"eventstream-0": "192.0.2.1:9100", "eventstream-1": "192.0.2.2:9100",
                      "eventstream-2": "192.0.2.3:9100"})
        await asyncio.to_thread(apply, endpoint_slice("a", HEADLESS, endpoint("eventstream-0", "192.0.2.1"),
                                                      endpoint("eventstream-1", "192.0.2.12")))
        await expect({"eventstream-0": "192.0.2.1:9100", "eventstream-1": "192.0.2.12:9100",
                      "eventstream-2": "192.0.2.3:9100"})
        await asyncio.to_thread(plane.kubectl, "delete", "endpointslice", "b", "-n", namespace)
        await expect({"eventstream-0": "192.0.2.1:9100", "eventstream-1": "192.0.2.12:9100"})
    finally:
        await discovery.stop()
    # Stopped means its connections are closed: one still shutting down TLS when
    # the event loop ends is left open (an unclosed-transport warning, later).
    assert own_connections_to(plane.apiserver_port) == []


class PodServer(ServerProcess):
    """The server as a pod runs it: a service account token and CA at the
    standard path (a tmpfs over /run in a mount namespace of its own, so the
    host's /run is untouched) and the API server in KUBERNETES_SERVICE_*."""

    def __init__(self, workdir: Path, config: dict[str, Any], secrets: Path, plane: ControlPlane) -> None:
        super().__init__(workdir, config, env={"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                                               "KUBERNETES_SERVICE_PORT": str(plane.apiserver_port)})
        self.secrets = secrets

    def start(self, wait: bool = True) -> ServerProcess:
        """Start inside the mount namespace; with ``wait``, until /health answers 200."""
        script = ('mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io && '
                  'cp -r "$0" /run/secrets/kubernetes.io/serviceaccount && exec "$@"')
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(self.secrets),
             SERVER_COMMAND, "--config", str(self.config_path)],
            stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_healthy()
        return self


@pytest.mark.parametrize("credentials", ["kubeconfig", "service account"])
def test_the_server_finds_its_peers_through_the_api_at_start(
        control_plane: ControlPlane, namespace: str, nodes: Callable[..., list[str]],
        start_server: Callable[..., ServerProcess], tmp_path: Path, credentials: str) -> None:
    plane = control_plane
    nodes(1, cpu="2", memory="4Gi")
    install(plane, namespace, "cluster.discovery=kubernetes", "persistence.enabled=false")
    kubelet = Kubelet(plane, namespace)
    kubelet.until(lambda: endpoint_addresses(plane, namespace, HEADLESS), "the pod published")
    cluster = {"enabled": True, "discovery": "kubernetes", "namespace": namespace, "service": HEADLESS,
               "node_id": "eventstream-0"}
    if credentials == "kubeconfig":
        token = service_account_kubeconfig(plane, namespace, "eventstream", tmp_path)
        server = start_server({"cluster": {**cluster, "kubeconfig": str(token)}})
    else:  # what the pod mounts: its ServiceAccount's token and the cluster's CA
        secrets = tmp_path / "serviceaccount"
        secrets.mkdir()
        (secrets / "token").write_text(plane.kubectl(
            "create", "token", "eventstream", "-n", namespace, "--duration=10m").stdout.strip())
        (secrets / "ca.crt").write_bytes(plane.ca_file.read_bytes())
        (secrets / "namespace").write_text(namespace)
        workdir = tmp_path / "pod"
        workdir.mkdir()
        server = PodServer(workdir, {"cluster": cluster}, secrets, plane)
        try:
            server.start()
        finally:
            server.stop()
    address = plane.get("pod", "eventstream-0", "-n", namespace)["status"]["podIP"]
    # The pod's address with this node's cluster.port (a free port here, 9100 in a pod).
    assert f"peers: eventstream-0={address}:" in server.log()


async def test_a_token_without_the_role_is_refused_with_what_is_missing(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    plane = control_plane
    install(plane, namespace, "cluster.discovery=dns")  # no Role: dns discovery needs none
    token = service_account_kubeconfig(plane, namespace, "eventstream", tmp_path)
    discovery = peer_discovery(settings(namespace, token, **{"cluster.discovery_timeout_seconds": 1}))
    with pytest.raises(DiscoveryError) as raised:
        await discovery.start()
    [problem] = raised.value.problems
    assert "403 Forbidden" in problem
    assert "needs get, list and watch on endpointslices" in problem
    assert "cluster.discovery_timeout_seconds" in problem
