"""A throw-away Kubernetes control plane on 127.0.0.1 for the deploy tests.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as real
processes from ``.tools/bin`` (``tools/k8s/build.sh`` builds them), each bound
to loopback on free ports, with an admin token, RBAC and a service-account key
pair made with openssl. No kubelet runs: the scheduler places pods on Node
objects the tests create, and the tests play the kubelet's part (``Kubelet``)
by patching a pod's status, which is what the EndpointSlice, StatefulSet and
disruption controllers act on.

Run it by hand with ``python -m tests.support.kube``: it prints a kubeconfig
path and stops everything on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.support.server import free_port

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = REPO / ".tools" / "bin"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# The controllers that need a kubelet are left out: node lifecycle would taint
# every node whose kubelet never reports, and node IPAM has no pod network.
CONTROLLERS = "*,-nodelifecycle,-nodeipam"
SERVICE_CIDR = "10.96.0.0/24"  # addresses written into Service objects only; nothing routes them

T = TypeVar("T")


class ControlPlaneError(RuntimeError):
    """A control-plane process failed to start or stopped early."""


class KubectlError(RuntimeError):
    """A kubectl command failed; the message holds its output."""


def missing_binaries(bin_dir: Path = BIN_DIR) -> list[str]:
    """Names of the control-plane binaries that are not built yet."""
    return [name for name in BINARIES if not (bin_dir / name).is_file()]


def wait_until(condition: Callable[[], T | None], timeout: float, what: str,
               interval: float = 0.2, alive: Callable[[], None] | None = None) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``.

    Args:
        condition: returns the awaited value, or None/False while waiting.
        timeout: seconds before giving up.
        what: what is awaited, for the error message.
        interval: seconds between polls.
        alive: called on every poll; raises when a process the wait depends on died.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        if alive is not None:
            alive()
        try:
            value = condition()
            if value:
                return value
        except (OSError, subprocess.SubprocessError, KubectlError, ValueError, KeyError) as error:
            last_error = error
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached after {timeout:.0f}s"
                               + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager and kube-scheduler.

    Args:
        workdir: keys, kubeconfig, etcd data and the processes' logs go here.
        bin_dir: where the binaries are.
    """

    def __init__(self, workdir: Path, bin_dir: Path = BIN_DIR) -> None:
        self.workdir = workdir
        self.bin_dir = bin_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.admin_token = secrets.token_hex(16)
        self.apiserver_port = free_port()
        self.etcd_port = free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        self.kubeconfig = workdir / "admin.kubeconfig"
        self.ca_file = workdir / "pki" / "apiserver.crt"  # written by the apiserver itself
        self.startup_seconds = 0.0

    # -- life cycle -------------------------------------------------------

    def start(self, timeout: float = 180) -> ControlPlane:
        """Start every process and wait until the API serves and the controllers act."""
        missing = missing_binaries(self.bin_dir)
        if missing:
            raise ControlPlaneError(f"{', '.join(missing)} not built in {self.bin_dir}: "
                                    "run tools/k8s/build.sh")
        started = time.monotonic()
        try:
            self._start_etcd(timeout)
            self._start_apiserver(timeout - (time.monotonic() - started))
            self._start("kube-controller-manager", [
                f"--kubeconfig={self.kubeconfig}", f"--controllers={CONTROLLERS}",
                "--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false",
                f"--service-cluster-ip-range={SERVICE_CIDR}", "--allocate-node-cidrs=false"])
            self._start("kube-scheduler", [
                f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--secure-port=0"])
            # The service-account controller creates "default" in every
            # namespace: proof that the controller manager runs and writes.
            wait_until(lambda: self.kubectl("get", "serviceaccount", "default", "-n", "default",
                                            check=False).returncode == 0,
                       timeout - (time.monotonic() - started), "controller manager acting",
                       alive=self.check_alive)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop every process, newest first (SIGTERM, then SIGKILL after 15 s)."""
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def check_alive(self) -> None:
        """Raise ControlPlaneError naming a process that exited, with its log's end."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise ControlPlaneError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last lines of a process's log."""
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _start(self, name: str, args: list[str]) -> None:
        with open(self.workdir / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen(
                [str(self.bin_dir / name), *args], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.workdir, start_new_session=True)

    def _start_etcd(self, timeout: float) -> None:
        peer = f"http://127.0.0.1:{free_port()}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        self._start("etcd", [
            "--name=control-plane", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=control-plane={peer}",
            # A throw-away store: durability buys nothing and fsync is slow on a shared disk.
            "--unsafe-no-fsync", "--log-level=warn"])

        def healthy() -> bool:
            with urllib.request.urlopen(f"{client}/health", timeout=2) as response:
                return json.load(response).get("health") == "true"
        wait_until(healthy, timeout, "etcd healthy", alive=self.check_alive)

    def _start_apiserver(self, timeout: float) -> None:
        key, public = self.workdir / "sa.key", self.workdir / "sa.pub"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(public)],
                       check=True, capture_output=True)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f"{self.admin_token},admin,admin,system:masters\n")
        self._start("kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}", f"--cert-dir={self.ca_file.parent}",
            f"--token-auth-file={tokens}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={public}", f"--service-account-signing-key-file={key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false",
            # The built-in "kubernetes" Service would point at 127.0.0.1, which
            # Endpoints refuse: nothing in the tests uses it.
            "--endpoint-reconciler-type=none"])
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # only until the apiserver has written its certificate

        def ready() -> bool:
            request = urllib.request.Request(f"{self.server}/readyz",
                                             headers={"Authorization": f"Bearer {self.admin_token}"})
            try:
                with urllib.request.urlopen(request, timeout=2, context=insecure) as response:
                    return response.status == 200
            except urllib.error.HTTPError:
                return False
        wait_until(ready, timeout, "kube-apiserver ready", alive=self.check_alive)
        self.kubeconfig.write_text(yaml.safe_dump(self.kubeconfig_for("admin", self.admin_token)))

    # -- clients ----------------------------------------------------------

    def kubeconfig_for(self, user: str, token: str, namespace: str = "default") -> dict[str, Any]:
        """A kubeconfig that talks to this API server as ``user`` with a bearer token."""
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": user,
            "clusters": [{"name": "control-plane", "cluster": {
                "server": self.server, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "control-plane", "user": user,
                                                    "namespace": namespace}}],
        }

    def env(self) -> dict[str, str]:
        """Environment for kubectl and helm: this cluster, and helm's state kept in the workdir."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig),
                "HELM_CACHE_HOME": str(self.workdir / "helm" / "cache"),
                "HELM_CONFIG_HOME": str(self.workdir / "helm" / "config"),
                "HELM_DATA_HOME": str(self.workdir / "helm" / "data")}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                kubeconfig: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster (as admin unless ``kubeconfig`` is given)."""
        command = [str(self.bin_dir / "kubectl"), *args]
        if kubeconfig is not None:
            command.insert(1, f"--kubeconfig={kubeconfig}")
        result = subprocess.run(command, input=input, capture_output=True, text=True,
                                timeout=timeout, env=self.env())
        if check and result.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout[-2000:]}{result.stderr[-4000:]}")
        return result

    def get(self, *args: str) -> Any:
        """``kubectl get ... -o json``, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, manifests: list[dict[str, Any]] | str, *args: str) -> subprocess.CompletedProcess[str]:
        """Server-side apply of manifests (dicts or YAML text)."""
        text = manifests if isinstance(manifests, str) else yaml.safe_dump_all(manifests)
        return self.kubectl("apply", "--server-side", "-f", "-", *args, input=text)

    # -- the kubelet's part -----------------------------------------------

    def create_node(self, name: str, cpu: str, memory: str, labels: dict[str, str] | None = None) -> None:
        """A Node object with this capacity, Ready and untainted, as a kubelet would report it."""
        node_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", **(labels or {})}
        self.apply([{"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": name, "labels": node_labels}}])
        # The API server taints a new node not-ready; the node lifecycle
        # controller (not running) would lift it once the kubelet reports.
        self.kubectl("patch", "node", name, "--type=json",
                     "-p", json.dumps([{"op": "replace", "path": "/spec/taints", "value": []}]))
        capacity = {"cpu": cpu, "memory": memory, "pods": "110"}
        status = {"capacity": capacity, "allocatable": capacity, "conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "status patched by the tests"}]}
        self.kubectl("patch", "node", name, "--subresource=status", "--type=merge",
                     "-p", json.dumps({"status": status}))

    def mark_pod_running(self, namespace: str, pod: str, ip: str) -> None:
        """Report a scheduled pod as running and ready at ``ip``, as its kubelet would."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conditions = [{"type": kind, "status": "True", "lastTransitionTime": now}
                      for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                  "startTime": now, "conditions": conditions}
        self.kubectl("patch", "pod", pod, "-n", namespace, "--subresource=status", "--type=merge",
                     "-p", json.dumps({"status": status}))


class Kubelet:
    """Plays every node's kubelet for one namespace, one pass at a time.

    A pass reports each scheduled pod as running and ready at an address of its
    own, and finishes the deletion of pods being deleted, as a kubelet does once
    their containers stopped. The addresses are documentation addresses
    (192.0.2.0/24, RFC 5737) that nothing ever connects to: the controllers
    only copy them between objects, and the API server refuses loopback
    addresses in EndpointSlices.
    """

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        self.plane = plane
        self.namespace = namespace
        self.addresses: dict[str, str] = {}  # pod uid -> IP

    def address(self, uid: str) -> str:
        """The pod's address: 192.0.2.1, .2, ... in the order pods are first seen."""
        if uid not in self.addresses:
            if len(self.addresses) >= 254:
                raise ValueError("more than 254 pods in one namespace")
            self.addresses[uid] = f"192.0.2.{len(self.addresses) + 1}"
        return self.addresses[uid]

    def run_once(self) -> list[dict[str, Any]]:
        """One pass over the namespace's pods; returns them as they were seen."""
        pods = self.plane.get("pods", "-n", self.namespace)["items"]
        for pod in pods:
            name, status = pod["metadata"]["name"], pod.get("status", {})
            if pod["metadata"].get("deletionTimestamp"):
                self.plane.kubectl("delete", "pod", name, "-n", self.namespace, "--grace-period=0",
                                   "--force", "--wait=false", check=False)
            elif pod["spec"].get("nodeName") and status.get("phase") != "Running":
                self.plane.mark_pod_running(self.namespace, name, self.address(pod["metadata"]["uid"]))
        return pods

    def until(self, condition: Callable[[], T | None], what: str, timeout: float = 90) -> T:
        """Run passes until ``condition`` holds (see wait_until)."""
        def step() -> T | None:
            self.run_once()
            return condition()
        try:
            return wait_until(step, timeout, what, interval=0.5, alive=self.plane.check_alive)
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{self.describe()}") from None

    def describe(self) -> str:
        """The namespace's workload objects and events, for a failure message."""
        state = self.plane.kubectl("get", "statefulsets,pods,pvc,pdb,endpointslices", "-o", "wide",
                                   "-n", self.namespace, check=False).stdout
        events = self.plane.kubectl("get", "events", "-n", self.namespace,
                                    "--sort-by=.lastTimestamp", check=False).stdout
        return f"{state}\n{events[-4000:]}"


def main() -> None:
    """Start a control plane and keep it until Ctrl-C."""
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="control-plane-"))
    plane = ControlPlane(workdir).start()
    print(f"ready in {plane.startup_seconds:.1f}s; export KUBECONFIG={plane.kubeconfig}", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        plane.stop()


if __name__ == "__main__":
    main()
