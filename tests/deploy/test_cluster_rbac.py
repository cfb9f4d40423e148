"""The chart's RBAC against a real API server: the pods' ServiceAccount may read
the namespace's EndpointSlices (what `cluster.discovery: kubernetes` watches)
and nothing else beyond what every authenticated user may do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.support.kube import ControlPlane

from .cluster import install

pytestmark = pytest.mark.timeout(300)

DISCOVERY_GRANT = {("endpointslices.discovery.k8s.io", "[]", "[]", "[get list watch]")}


def service_account_kubeconfig(plane: ControlPlane, namespace: str, account: str,
                               directory: Path) -> Path:
    """A kubeconfig authenticating with a fresh token of the ServiceAccount."""
    token = plane.kubectl("create", "token", account, "-n", namespace, "--duration=10m").stdout.strip()
    path = directory / f"{account}.kubeconfig"
    path.write_text(yaml.safe_dump(plane.kubeconfig_for(
        f"system:serviceaccount:{namespace}:{account}", token, namespace)))
    return path


def granted(plane: ControlPlane, kubeconfig: Path, namespace: str) -> set[tuple[str, ...]]:
    """Rows of `kubectl auth can-i --list` (resources, non-resource URLs, names, verbs)."""
    table = plane.kubectl("auth", "can-i", "--list", "-n", namespace, kubeconfig=kubeconfig).stdout
    header, *rows = table.strip().splitlines()
    assert header.split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    return {tuple(re.split(r"\s{2,}", row.strip())) for row in rows}


def can(plane: ControlPlane, kubeconfig: Path, *question: str) -> bool:
    answer = plane.kubectl("auth", "can-i", *question, kubeconfig=kubeconfig, check=False)
    assert answer.stdout.strip() in ("yes", "no"), answer.stdout + answer.stderr
    return answer.stdout.strip() == "yes"


@pytest.mark.parametrize("discovery, extra", [("kubernetes", DISCOVERY_GRANT), ("dns", set())])
def test_service_account_may_read_endpointslices_and_nothing_more(
        control_plane: ControlPlane, namespace: str, tmp_path: Path, discovery: str,
        extra: set[tuple[str, ...]]) -> None:
    plane = control_plane
    install(plane, namespace, f"cluster.discovery={discovery}")
    pod_spec = plane.get("statefulset", "eventstream", "-n", namespace)["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == "eventstream"
    assert pod_spec["automountServiceAccountToken"] is (discovery == "kubernetes")
    # A ServiceAccount no role is bound to: what every authenticated user may do.
    plane.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    chart = service_account_kubeconfig(plane, namespace, "eventstream", tmp_path)
    nobody = service_account_kubeconfig(plane, namespace, "nobody", tmp_path)
    baseline = granted(plane, nobody, namespace)
    assert baseline, "kubectl auth can-i --list lists the self-review rules for everybody"
    assert granted(plane, chart, namespace) - baseline == extra
    assert baseline - granted(plane, chart, namespace) == set()

    reads = discovery == "kubernetes"
    for verb in ("get", "list", "watch"):
        assert can(plane, chart, verb, "endpointslices.discovery.k8s.io", "-n", namespace) is reads
    refused = [("create", "endpointslices.discovery.k8s.io", "-n", namespace),
               ("delete", "endpointslices.discovery.k8s.io", "-n", namespace),
               ("list", "endpointslices.discovery.k8s.io", "-n", "default"),
               ("list", "endpointslices.discovery.k8s.io", "--all-namespaces"),
               ("list", "endpoints", "-n", namespace),
               ("get", "pods", "-n", namespace),
               ("list", "services", "-n", namespace),
               ("get", "secrets", "-n", namespace),
               ("get", "configmaps", "-n", namespace)]
    assert [q for q in refused if can(plane, chart, *q)] == []
    # And a real request with the token, not only the API's self-review.
    listed = plane.kubectl("get", "endpointslices", "-n", namespace, kubeconfig=chart, check=False)
    assert (listed.returncode == 0) is reads, listed.stderr
    pods = plane.kubectl("get", "pods", "-n", namespace, kubeconfig=chart, check=False)
    assert pods.returncode != 0 and "forbidden" in pods.stderr.lower()
