"""The server image, built from deploy/docker/Dockerfile by a private dockerd
(tests/support/docker.py), run the way the chart's StatefulSet runs it: its
user and groups, read-only root, no capabilities, no privilege escalation, its
volumes, environment and limits, the rendered ConfigMap, and no network but
its own loopback. The StatefulSet's own probes are asked from inside the
container's network namespace, the chart's `helm test` script runs in a
second container of the image beside it, and SIGTERM ends it cleanly.

Cold, the base image (debootstrap) and the build take minutes; both are
cached (deploy/README.md, Tests, has the figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.docker import DockerDaemon, ensure_base_image, missing_tools

from .rendering import REPO, SINGLE_NODE, find, helm_template

pytestmark = pytest.mark.timeout(1800)
NAMESPACE = "eventstream"  # what the helm_template renders use
# securityContext fields the translation below understands; a new one in the
# chart fails the test until it is translated too.
POD_SECURITY = {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "fsGroupChangePolicy",
                "seccompProfile"}
CONTAINER_SECURITY = {"allowPrivilegeEscalation", "readOnlyRootFilesystem", "capabilities",
                      "runAsNonRoot", "runAsUser", "runAsGroup"}


@pytest.fixture(scope="module")
def docker() -> Iterator[DockerDaemon]:
    if missing_tools():
        pytest.fail(f"{', '.join(missing_tools())} missing: run tools/install-system-packages.sh image",
                    pytrace=False)
    daemon = DockerDaemon().start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def manifests() -> tuple[dict[str, Any], ...]:
    # One unreplicated node: a lone container under --network none has no peers.
    return helm_template(sets=SINGLE_NODE)


@pytest.fixture(scope="module")
def image(docker: DockerDaemon, manifests: tuple[dict[str, Any], ...]) -> str:
    """The image the chart's pod spec names, built from the Dockerfile."""
    (server,) = find(manifests, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    base = ensure_base_image(docker)
    docker.docker("build", "--network=host", "--file", str(REPO / "deploy/docker/Dockerfile"),
                  "--build-arg", f"PYTHON_IMAGE={base}", "--tag", server["image"], str(REPO),
                  timeout=1500, env={"DOCKER_BUILDKIT": "1"})
    # Keep the data root bounded: earlier builds of the tag and old build cache.
    docker.docker("image", "prune", "--force")
    docker.docker("builder", "prune", "--force", "--keep-storage=3gb")
    return server["image"]


def run_args(pod: dict[str, Any], container: dict[str, Any], mounts: dict[str, list[str]],
             statefulset: str) -> list[str]:
    """`docker run` options doing what the kubelet does with this pod spec.

    Args:
        pod: the pod spec.
        container: one of its containers.
        mounts: volume name -> docker options providing it.
        statefulset: the StatefulSet's name (pod 0 is run).
    """
    security = pod.get("securityContext", {})
    own = container.get("securityContext", {})
    assert set(security) <= POD_SECURITY and set(own) <= CONTAINER_SECURITY, (
        "a securityContext field this test does not translate")
    user, group = own.get("runAsUser", security["runAsUser"]), own.get("runAsGroup", security["runAsGroup"])
    args = ["--user", f"{user}:{group}"]
    if "fsGroup" in security:
        args += ["--group-add", str(security["fsGroup"])]
    if own.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if own.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    for capability in own.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", capability]
    assert security.get("seccompProfile", {}).get("type") in (None, "RuntimeDefault")  # docker's default
    limits = container.get("resources", {}).get("limits", {})
    if "memory" in limits:
        args += ["--memory", limits["memory"].replace("Gi", "g").replace("Mi", "m")]
    if "cpu" in limits:
        cpu = limits["cpu"]
        args += ["--cpus", str(int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu))]
    fields = {"metadata.name": f"{statefulset}-0", "metadata.namespace": NAMESPACE}
    for env in container.get("env", []):
        value = env["value"] if "value" in env else fields[env["valueFrom"]["fieldRef"]["fieldPath"]]
        args += ["--env", f"{env['name']}={value}"]
    for mount in container.get("volumeMounts", []):
        args += mounts[mount["name"]]
    if "command" in container:
        args += ["--entrypoint", container["command"][0]]
    return args


def container_command(container: dict[str, Any]) -> list[str]:
    """What follows the image on the `docker run` line: the rest of command, then args."""
    return [*container.get("command", [])[1:], *container.get("args", [])]


def http_status(pid: int, port: int, path: str) -> int | None:
    """Status of GET http://127.0.0.1:<port><path> inside the network namespace of
    ``pid`` (as the kubelet probes the pod's address); None when nothing answers."""
    probe = ("import sys, urllib.request, urllib.error\n"
             "try:\n"
             f"    print(urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=2).status)\n"
             "except urllib.error.HTTPError as error:\n"
             "    print(error.code)\n"
             "except OSError:\n"
             "    print(0)\n")
    result = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", probe],
                            capture_output=True, text=True, timeout=30)
    status = int(result.stdout.strip() or 0) if result.returncode == 0 else 0
    return status or None


def wait_for_status(pid: int, probe: dict[str, Any], wanted: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (status := http_status(pid, probe["httpGet"]["port"], probe["httpGet"]["path"])) != wanted:
        assert time.monotonic() < deadline, f"{probe['httpGet']} answered {status}, not {wanted}"
        time.sleep(0.1)


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def test_image_runs_as_the_statefulset_runs_it(docker: DockerDaemon, image: str,
                                                manifests: tuple[dict[str, Any], ...],
                                                tmp_path: Path) -> None:
    statefulset = find(manifests, "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    # The ConfigMap as the kubelet projects it, and a claim as fsGroup leaves
    # it: owned by root, group-writable for the pod's fsGroup.
    config_dir = tmp_path / "config"
    config_dir.mkdir(mode=0o755)
    configmap = find(manifests, "ConfigMap", "eventstream-config")
    (config_dir / "config.yaml").write_text(configmap["data"]["config.yaml"])
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.chown(data_dir, 0, pod["securityContext"]["fsGroup"])
    data_dir.chmod(0o2770)
    tmp_size = next(v["emptyDir"]["sizeLimit"] for v in pod["volumes"] if v["name"] == "tmp")
    mounts = {"config": ["--volume", f"{config_dir}:/etc/eventstream:ro"],
              "data": ["--volume", f"{data_dir}:/var/lib/eventstream"],
              "tmp": ["--tmpfs", f"/tmp:size={tmp_size.replace('Mi', 'm')}"]}
    name = f"eventstream-{uuid.uuid4().hex[:8]}"
    docker.docker("run", "--detach", "--name", name, "--network", "none",
                  *run_args(pod, server, mounts, statefulset["metadata"]["name"]),
                  image, *container_command(server))
    try:
        pid = json.loads(docker.docker("inspect", name).stdout)[0]["State"]["Pid"]
        wait_for_status(pid, server["startupProbe"], 200, timeout=60)
        wait_for_status(pid, server["readinessProbe"], 200, timeout=60)
        wait_for_status(pid, server["livenessProbe"], 200, timeout=5)
        status = proc_status(pid)
        assert status["Uid"].split()[0] == "10001" and status["Gid"].split()[0] == "10001"
        assert "10001" in status["Groups"].split()
        assert status["CapEff"] == "0000000000000000" and status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2", "docker's default seccomp profile"

        # The chart's helm test pod, run beside the server as the pod spec says.
        test_pod = find(manifests, "Pod")["spec"]
        (check,) = test_pod["containers"]
        grpc_port = {p["name"]: p["containerPort"] for p in server["ports"]}["grpc"]
        command = container_command(check)
        targets = [a for a in command if a.endswith(f":{grpc_port}")]
        assert targets, "the test script is given the gRPC port"
        # The Service and pod names resolve to the server's address in a
        # cluster; here it shares the network namespace: 127.0.0.1.
        checked = docker.docker(
            "run", "--rm", "--network", f"container:{name}",
            *run_args(test_pod, check, {}, statefulset["metadata"]["name"]), image,
            *[a for a in command if a not in targets], f"127.0.0.1:{grpc_port}",
            check=False, timeout=120)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.count("SERVING") == 3, checked.stdout

        # SIGTERM: readiness fails at once (the Services stop routing), liveness
        # holds through the drain, and the server exits 0 within the grace period.
        docker.docker("kill", "--signal", "TERM", name)
        config = yaml.safe_load(configmap["data"]["config.yaml"])
        wait_for_status(pid, server["readinessProbe"], 503, timeout=config["server"]["drain_grace_seconds"])
        assert http_status(pid, server["livenessProbe"]["httpGet"]["port"],
                           server["livenessProbe"]["httpGet"]["path"]) == 200
        waited = docker.docker("wait", name, timeout=pod["terminationGracePeriodSeconds"] + 15)
        logs = docker.docker("logs", name)
        assert waited.stdout.strip() == "0", logs.stdout + logs.stderr
        assert "Traceback" not in logs.stdout + logs.stderr
        assert list((data_dir).iterdir()), "the server wrote its log to the claim"
    finally:
        docker.docker("rm", "--force", "--volumes", name, check=False)
