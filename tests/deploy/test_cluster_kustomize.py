"""Every overlay applied server-side to a real API server, in a fresh namespace,
with the controllers and the scheduler running (tests/support/kube.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.kube import ControlPlane, Kubelet

from .cluster import endpoint_addresses, template
from .rendering import OVERLAYS, ci_values, overlay_variant, run, tool

pytestmark = pytest.mark.timeout(300)

# The cluster each overlay is meant for: nodes (count, size, zones), and the
# class and size of the claim it asks for.
CLUSTERS = {  # nodes, storage class, claim size, pods
    "dev": ({"count": 2, "cpu": "2", "memory": "4Gi"}, "standard", "5Gi", 1),
    "staging": ({"count": 3, "cpu": "4", "memory": "8Gi"}, "standard", "20Gi", 3),
    "production": ({"count": 3, "cpu": "16", "memory": "64Gi", "zones": ["a", "b", "c"]},
                   "fast-ssd", "500Gi", 3),
}


def build(directory: Path) -> str:
    result = run([tool("kustomize"), "build", str(directory)])
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_applies_into_a_fresh_namespace_and_runs(
        overlay: str, control_plane: ControlPlane, namespace: str, nodes: Callable[..., list[str]],
        volumes: Callable[..., None], tmp_path: Path) -> None:
    """The overlays once named a namespace they did not create, and pulled in
    ServiceMonitor and PrometheusRule objects a cluster without the
    prometheus-operator refuses: either failed the whole apply."""
    plane = control_plane
    shape, storage_class, size, pods = CLUSTERS[overlay]
    names = nodes(**shape)
    volumes(namespace, "eventstream", pods, storage_class, size)
    manifests = build(overlay_variant(tmp_path, overlay, namespace=namespace))
    plane.apply(manifests)
    assert plane.get("namespace", namespace)["status"]["phase"] == "Active"

    kubelet = Kubelet(plane, namespace)

    def ready() -> bool:
        status = plane.get("statefulset", "eventstream", "-n", namespace)["status"]
        return status.get("readyReplicas") == pods
    kubelet.until(ready, f"{overlay}: {pods} ready pod(s)")
    claim = plane.get("pvc", "data-eventstream-0", "-n", namespace)
    assert (claim["spec"]["storageClassName"], claim["status"]["phase"]) == (storage_class, "Bound")
    pod = plane.get("pod", "eventstream-0", "-n", namespace)
    assert pod["spec"]["nodeName"] in names
    members = [plane.get("pod", f"eventstream-{n}", "-n", namespace) for n in range(pods)]
    addresses = {member["status"]["podIP"]: True for member in members}
    assert kubelet.until(lambda: endpoint_addresses(plane, namespace, "eventstream") == addresses,
                         "client Service endpoints")
    # Applying the same overlay again changes nothing and conflicts with nothing.
    plane.apply(manifests)
    assert plane.get("pod", "eventstream-0", "-n", namespace)["metadata"]["uid"] == pod["metadata"]["uid"]


def test_overlay_with_monitoring_applies_where_the_crds_are_served(
        control_plane: ControlPlane, namespace: str, monitoring_crds: None, tmp_path: Path) -> None:
    plane = control_plane
    plane.apply(build(overlay_variant(tmp_path, "production", namespace=namespace, monitoring=True)))
    assert plane.get("servicemonitor", "eventstream", "-n", namespace)["spec"]["selector"]
    assert plane.get("prometheusrule", "eventstream", "-n", namespace)["spec"]["groups"]


def test_a_release_moves_from_the_chart_to_its_overlay(
        control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    """The base's labels once went into the StatefulSet's claim template, which
    the API server never lets change: the overlay could not take over a
    StatefulSet the chart had created (nor be relabelled later)."""
    plane = control_plane
    chart = template(plane, namespace, "--values", ci_values("dev-values.yaml"), "--skip-tests")
    plane.kubectl("create", "namespace", namespace)
    plane.kubectl("apply", "--server-side", "--field-manager=helm", "-f", "-", input=chart)
    overlay = build(overlay_variant(tmp_path, "dev", namespace=namespace))
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=overlay)
    statefulset = plane.get("statefulset", "eventstream", "-n", namespace)
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "kustomize"
