"""Read replicas found through the real API server: a pod beyond the voters joins as a learner.

The chart is installed with ``cluster.discovery: kubernetes``; the tests play
the kubelet, and real server processes play the pods: one per pod, bound to
the pod's address, finding the others through the headless Service's
EndpointSlices (filled by the real EndpointSlice controller) with a token of
the chart's ServiceAccount. Three voters form the cluster; the StatefulSet
scaled to four gets ``eventstream-3``, whose server joins as a learner by
itself (no ``cluster.join``, no admin call), serves a subscriber and forwards
publishes. Scaled back to three, the pod is deleted and its process gets
SIGTERM, as the kubelet would send it: it leaves the members.

The API server refuses loopback addresses in EndpointSlices, so the pods'
addresses are documentation addresses (192.0.2.0/24, RFC 5737) on the
loopback interface of a private network namespace: the test re-runs itself
inside one (``unshare --net``), with the control plane, the servers and the
test process in it and nothing reachable from outside.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from eventstream.client import Client, Event
from tests.support.cluster import Cluster
from tests.support.cluster_reads import read_all
from tests.support.kube import ControlPlane, Kubelet
from tests.support.server import ServerProcess

from .cluster import endpoint_addresses, install
from .rendering import REPO
from .test_cluster_rbac import service_account_kubeconfig

pytestmark = pytest.mark.timeout(420)

PRIVATE_NETWORK = "EVENTSTREAM_TEST_PRIVATE_NETWORK"
"""Set (to 1) in the test process that runs inside the private network namespace."""
POD_ADDRESSES = [f"192.0.2.{n}" for n in range(1, 11)]
"""What ``Kubelet`` hands out, in order; each is local in the private namespace."""
HEADLESS = "eventstream-headless"
CLUSTER_PORT = 9100  # every pod's, as in the chart: nothing else listens in the namespace


def run_privately(nodeid: str) -> None:
    """Run the test ``nodeid`` again inside a new network namespace; fail with its output if it fails."""
    addresses = " && ".join(f"ip addr add {address}/32 dev lo" for address in POD_ADDRESSES)
    script = f'ip link set lo up && {addresses} && exec "$@"'
    command = ["unshare", "--net", "--", "sh", "-c", script, "sh",
               sys.executable, "-m", "pytest", nodeid, "-x", "-q", "-s", "-p", "no:cacheprovider"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=400,
                            env={**os.environ, PRIVATE_NETWORK: "1"})
    print(result.stdout[-6000:])
    assert result.returncode == 0, f"{result.stdout[-12000:]}\n{result.stderr[-4000:]}"


def pod_address(plane: ControlPlane, namespace: str, pod: str) -> str:
    return plane.get("pod", pod, "-n", namespace)["status"]["podIP"]


def roles(cluster: Cluster, node: str) -> dict[str, str]:
    """Member -> role, as ``node``'s /status shows them."""
    return {member["node_id"]: member["role"] for member in cluster.status(node)["cluster"]["members"]}


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.1)


class Pods:
    """The server processes playing the StatefulSet's pods, one per pod, at the pod's address."""

    def __init__(self, plane: ControlPlane, namespace: str, kubeconfig: Path, workdir: Path) -> None:
        self.plane, self.namespace, self.kubeconfig, self.workdir = plane, namespace, kubeconfig, workdir
        self.servers: dict[str, ServerProcess] = {}

    def start(self, pod: str) -> ServerProcess:
        """Start the pod's server (not waiting for it to be ready)."""
        (self.workdir / pod).mkdir()
        server = ServerProcess(self.workdir / pod, {
            "server": {"host": pod_address(self.plane, self.namespace, pod)},
            "storage": {"partitions": 2},
            "cluster": {"enabled": True, "discovery": "kubernetes", "namespace": self.namespace,
                        "service": HEADLESS, "node_id": pod, "port": CLUSTER_PORT,
                        "replicas": 3, "voters": 3, "kubeconfig": str(self.kubeconfig)}})
        self.servers[pod] = server
        return server.start(wait=False)

    def cluster(self) -> Cluster:
        return Cluster.of(self.servers)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def test_a_pod_beyond_the_voters_joins_as_a_learner_and_leaves_on_scale_in(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if os.environ.get(PRIVATE_NETWORK) != "1":
        run_privately(request.node.nodeid)
        return
    plane: ControlPlane = request.getfixturevalue("control_plane")
    namespace: str = request.getfixturevalue("namespace")
    request.getfixturevalue("nodes")(2, cpu="2", memory="4Gi")
    install(plane, namespace, "cluster.discovery=kubernetes", "persistence.enabled=false")
    kubelet = Kubelet(plane, namespace)
    kubelet.until(lambda: len(endpoint_addresses(plane, namespace, HEADLESS)) == 3,
                  "three pods in the headless service's EndpointSlices")
    token = service_account_kubeconfig(plane, namespace, "eventstream", tmp_path)
    pods = Pods(plane, namespace, token, tmp_path)
    try:
        for ordinal in range(3):
            pods.start(f"eventstream-{ordinal}")
        for server in pods.servers.values():
            server.wait_healthy(120.0)
        cluster = pods.cluster()
        leader = cluster.wait_leader()

        # Scaled out: the fourth pod's server finds the voters and joins by itself.
        plane.kubectl("scale", "statefulset", "eventstream", "--replicas=4", "-n", namespace)
        kubelet.until(lambda: "eventstream-3" in {p["metadata"]["name"] for p in plane.get(
            "pods", "-n", namespace)["items"] if p.get("status", {}).get("podIP")}, "eventstream-3 running")
        assert pod_address(plane, namespace, "eventstream-3") == "192.0.2.4"
        learner = pods.start("eventstream-3")
        learner.wait_healthy(120.0)  # ready: a member that knows the leader and caught up
        cluster = pods.cluster()
        assert roles(cluster, leader)["eventstream-3"] == "learner"
        assert roles(cluster, "eventstream-3")["eventstream-3"] == "learner"

        # It serves a subscriber and forwards publishes to the leader.
        with Client(learner.target) as client:
            acks = [client.publish(Event(f"reads/{n % 2}", b"%d" % n, id=f"read-{n}")) for n in range(20)]
        read = asyncio.run(read_all(learner.target, 20))
        assert sorted(event_id for *_, event_id in read) == sorted(ack.id for ack in acks)

        # Scaled in: the pod is deleted, its process gets SIGTERM and leaves.
        plane.kubectl("scale", "statefulset", "eventstream", "--replicas=3", "-n", namespace)
        wait_for(lambda: plane.get("pod", "eventstream-3", "-n", namespace)["metadata"].get(
            "deletionTimestamp"), "eventstream-3 being deleted")
        assert learner.stop() == 0, learner.log()
        kubelet.until(lambda: len(endpoint_addresses(plane, namespace, HEADLESS)) == 3,
                      "eventstream-3 gone from the EndpointSlices")
        del pods.servers["eventstream-3"]
        cluster = pods.cluster()
        wait_for(lambda: sorted(roles(cluster, cluster.wait_leader())) == [
            "eventstream-0", "eventstream-1", "eventstream-2"], "eventstream-3 removed from the members")
        assert set(roles(cluster, cluster.wait_leader()).values()) == {"leader", "follower"}
    finally:
        pods.stop()
