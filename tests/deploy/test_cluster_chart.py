"""The chart installed and upgraded with helm on a real API server, with the
controllers and the scheduler running (tests/support/kube.py): what they
create from it, and what the API server refuses that a render lets through."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.kube import ControlPlane, Kubelet

from .cluster import DEFAULT_STORAGE_CLASS, endpoint_addresses, install, items, template
from .rendering import SINGLE_NODE, load_all

pytestmark = pytest.mark.timeout(300)

SMALL_NODE = {"cpu": "2", "memory": "4Gi"}  # a kind or minikube node


def statefulset(plane: ControlPlane, namespace: str) -> dict[str, Any]:
    return plane.get("statefulset", "eventstream", "-n", namespace)


def rolled_out(plane: ControlPlane, namespace: str, replicas: int,
               replacing: str | None = None) -> dict[str, Any] | None:
    """The StatefulSet once ``replicas`` pods of its newest revision are ready
    (a revision other than ``replacing``, when given)."""
    current = statefulset(plane, namespace)
    status = current["status"]
    if (status.get("observedGeneration") == current["metadata"]["generation"]
            and status.get("readyReplicas") == replicas == status.get("updatedReplicas")
            and status.get("currentRevision") == status.get("updateRevision") != replacing):
        return current
    return None


def settled_budget(plane: ControlPlane, namespace: str, healthy: int) -> dict[str, Any] | None:
    """The disruption budget once its controller counted ``healthy`` pods for its generation."""
    budget = plane.get("pdb", "eventstream", "-n", namespace)
    status = budget.get("status", {})
    return budget if (status.get("observedGeneration") == budget["metadata"]["generation"]
                      and status.get("currentHealthy") == healthy) else None


def test_installs_on_a_small_cluster_and_rolls_out_an_upgrade(
        control_plane: ControlPlane, namespace: str, nodes: Callable[..., list[str]],
        volumes: Callable[..., None]) -> None:
    plane = control_plane
    names = nodes(2, **SMALL_NODE)
    volumes(namespace, "eventstream", 3, DEFAULT_STORAGE_CLASS, "10Gi")
    installed = install(plane, namespace)
    assert "no ServiceMonitor was created" in installed.stdout, "the cluster serves no CRD for it"
    kubelet = Kubelet(plane, namespace)
    # Three voters on two nodes: the soft anti-affinity spreads them but schedules all.
    first = kubelet.until(lambda: rolled_out(plane, namespace, 3), "three ready pods")

    # The claim got the cluster's default class and bound; the pod was scheduled.
    claim = plane.get("pvc", "data-eventstream-0", "-n", namespace)
    assert claim["spec"]["storageClassName"] == DEFAULT_STORAGE_CLASS
    assert claim["status"]["phase"] == "Bound"
    pod = plane.get("pod", "eventstream-0", "-n", namespace)
    pods = [plane.get("pod", f"eventstream-{n}", "-n", namespace) for n in range(3)]
    assert {p["spec"]["nodeName"] for p in pods} == set(names)
    addresses = {p["status"]["podIP"]: True for p in pods}
    # The EndpointSlice controller published the pods for both Services.
    assert kubelet.until(lambda: endpoint_addresses(plane, namespace, "eventstream") == addresses,
                         "client Service endpoints")
    assert endpoint_addresses(plane, namespace, "eventstream-headless") == addresses
    for kind in ("serviceaccount", "poddisruptionbudget"):
        assert items(plane, kind, namespace, "-l", "app.kubernetes.io/instance=eventstream"), kind
    assert not items(plane, "role", namespace), "dns discovery needs no API access"

    # A changed value rolls the pod (the config checksum changes the template).
    install(plane, namespace, "config.log.level=debug", upgrade=True)
    rolled = kubelet.until(lambda: rolled_out(plane, namespace, 3, first["status"]["updateRevision"]),
                           "the upgrade rolled out")
    pod = plane.get("pod", "eventstream-0", "-n", namespace)
    assert pod["metadata"]["labels"]["controller-revision-hash"] == rolled["status"]["updateRevision"]
    config = plane.get("configmap", "eventstream-config", "-n", namespace)["data"]["config.yaml"]
    assert "level: debug" in config


def test_upgrade_refuses_a_new_claim_template_and_the_documented_resize_works(
        control_plane: ControlPlane, namespace: str, nodes: Callable[..., list[str]],
        volumes: Callable[..., None]) -> None:
    """The API server refuses any change to volumeClaimTemplates with a message
    about fields; the chart names the value and what to do instead, and what
    deploy/README.md says to do (Resizing the claims) works."""
    plane = control_plane
    nodes(1, **SMALL_NODE)
    volumes(namespace, "eventstream", 1, DEFAULT_STORAGE_CLASS, "10Gi")
    install(plane, namespace, *SINGLE_NODE)
    kubelet = Kubelet(plane, namespace)
    kubelet.until(lambda: rolled_out(plane, namespace, 1), "one ready pod")
    refused = install(plane, namespace, "persistence.size=20Gi", upgrade=True, check=False)
    assert refused.returncode != 0
    assert "persistence.size cannot change from 10Gi to 20Gi" in refused.stderr, refused.stderr
    assert "--cascade=orphan" in refused.stderr and "Forbidden" not in refused.stderr
    refused = install(plane, namespace, "persistence.storageClass=fast-ssd", upgrade=True, check=False)
    assert 'persistence.storageClass cannot change from "" to "fast-ssd"' in refused.stderr, refused.stderr
    # The same size written another way is no change (the API server agrees).
    install(plane, namespace, "persistence.size=10240Mi", upgrade=True)

    # Resizing the claims, as the README says: grow the claim, orphan the pods, upgrade.
    pod_uid = plane.get("pod", "eventstream-0", "-n", namespace)["metadata"]["uid"]
    plane.kubectl("patch", "pvc", "data-eventstream-0", "-n", namespace,
                  "-p", '{"spec":{"resources":{"requests":{"storage":"20Gi"}}}}')
    plane.kubectl("delete", "statefulset", "eventstream", "-n", namespace, "--cascade=orphan")
    install(plane, namespace, "persistence.size=20Gi", upgrade=True)
    (claim,) = statefulset(plane, namespace)["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"

    def adopted() -> dict[str, Any] | None:
        pod = plane.get("pod", "eventstream-0", "-n", namespace)
        return pod if pod["metadata"].get("ownerReferences") else None
    assert kubelet.until(adopted, "the pod adopted")["metadata"]["uid"] == pod_uid, (
        "the pod kept running through the resize")


@pytest.mark.parametrize("pods", [3, 4])
def test_a_rolling_update_replaces_one_pod_at_a_time_highest_ordinal_first(
        control_plane: ControlPlane, namespace: str, nodes: Callable[..., list[str]],
        volumes: Callable[..., None], pods: int) -> None:
    """What the rendered updateStrategy makes the StatefulSet controller do: the
    pods are replaced from the highest ordinal down (a read replica before the
    voters), each only once the one before is ready again, so a majority of the
    voters is always up."""
    plane = control_plane
    nodes(3, **SMALL_NODE)
    volumes(namespace, "eventstream", pods, DEFAULT_STORAGE_CLASS, "10Gi")
    install(plane, namespace, "minReadySeconds=0", f"replicas={pods}")
    kubelet = Kubelet(plane, namespace)
    first = kubelet.until(lambda: rolled_out(plane, namespace, pods), f"{pods} ready pods")
    old = first["status"]["updateRevision"]
    install(plane, namespace, "config.log.level=debug", upgrade=True)

    replaced: list[str] = []  # pod names in the order they came back at the new revision
    fewest_ready = pods
    deadline = time.monotonic() + 240
    while rolled_out(plane, namespace, pods, old) is None:
        assert time.monotonic() < deadline, kubelet.describe()
        seen = kubelet.run_once()
        ready = [p for p in seen if not p["metadata"].get("deletionTimestamp") and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", []))]
        fewest_ready = min(fewest_ready, len(ready))
        for pod in seen:
            name = pod["metadata"]["name"]
            if pod["metadata"]["labels"].get("controller-revision-hash") != old and name not in replaced:
                replaced.append(name)
        time.sleep(0.2)
    assert replaced == [f"eventstream-{n}" for n in reversed(range(pods))]
    assert fewest_ready >= pods - 1, "more than one pod was down at once"


def test_disruption_budget_and_anti_affinity_count_only_the_members(
        control_plane: ControlPlane, namespace: str, nodes: Callable[..., list[str]],
        volumes: Callable[..., None]) -> None:
    """The `helm test` pod once carried the selector labels: the budget counted an
    unmanaged pod, and on two nodes with hard anti-affinity it took the slot of
    a member, which stayed Pending."""
    plane = control_plane
    names = nodes(3, **SMALL_NODE)
    volumes(namespace, "eventstream", 3, DEFAULT_STORAGE_CLASS, "10Gi")
    values = ("affinity.podAntiAffinity=hard",)
    # The test pod runs first, as it would after a node restart of the members.
    test_pod = template(plane, namespace, "--show-only", "templates/tests/test-grpc-health.yaml",
                        *(arg for value in values for arg in ("--set", value)))
    plane.kubectl("create", "namespace", namespace)
    plane.apply(test_pod)
    kubelet = Kubelet(plane, namespace)
    kubelet.until(lambda: plane.get("pod", "eventstream-test-grpc-health", "-n", namespace)[
        "status"].get("phase") == "Running", "the test pod running")

    install(plane, namespace, *values)
    kubelet.until(lambda: rolled_out(plane, namespace, 3), "the three members ready")
    members = [plane.get("pod", f"eventstream-{n}", "-n", namespace) for n in range(3)]
    assert sorted(m["spec"]["nodeName"] for m in members) == sorted(names), (
        "hard anti-affinity: one member per node")
    addresses = {m["status"]["podIP"]: True for m in members}
    assert kubelet.until(lambda: endpoint_addresses(plane, namespace, "eventstream") == addresses,
                         "the client Service's endpoints: the members only")

    status = kubelet.until(lambda: settled_budget(plane, namespace, healthy=3),
                           "the disruption budget's status")["status"]
    # A majority (2 of 3) stays: one eviction at a time.
    assert (status["expectedPods"], status["desiredHealthy"], status["disruptionsAllowed"]) == (3, 2, 1)
    warnings = [e["reason"] for e in items(plane, "events", namespace,
                                           "--field-selector", "involvedObject.kind=PodDisruptionBudget")]
    assert "UnmanagedPods" not in warnings and "NoControllers" not in warnings, warnings


def test_monitoring_objects_install_where_their_crds_are_served(
        control_plane: ControlPlane, namespace: str, monitoring_crds: None) -> None:
    plane = control_plane
    installed = install(plane, namespace, "metrics.prometheusRule.enabled=true",
                        "metrics.dashboard.enabled=true")
    assert "no ServiceMonitor was created" not in installed.stdout
    monitor = plane.get("servicemonitor", "eventstream", "-n", namespace)
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    rule = plane.get("prometheusrule", "eventstream", "-n", namespace)
    assert {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]} >= {"EventStreamNodeDown"}
    assert plane.get("configmap", "eventstream-dashboard", "-n", namespace)["data"]["eventstream.json"]


def test_cert_manager_certificates_install_where_their_crd_is_served(
        control_plane: ControlPlane, namespace: str, cert_manager_crds: None) -> None:
    plane = control_plane
    sets = ("tls.secretName=eventstream-tls", "tls.peerSecretName=eventstream-peer-tls",
            "tls.certManager.enabled=true", "tls.certManager.issuerRef.name=events-ca")
    # helm lets the API server prune a field the CRD does not know: a strict dry run refuses it.
    certificates = [m for m in load_all(template(plane, namespace, *(
        arg for setting in sets for arg in ("--set", setting)))) if m["kind"] == "Certificate"]
    assert len(certificates) == 2
    plane.kubectl("create", "namespace", namespace)
    plane.apply(certificates, "--dry-run=server", "--validate=strict", "-n", namespace)
    install(plane, namespace, *sets)
    served = plane.get("certificate", "eventstream-tls", "-n", namespace)["spec"]
    members = plane.get("certificate", "eventstream-peer-tls", "-n", namespace)["spec"]
    assert (served["secretName"], members["secretName"]) == ("eventstream-tls",
                                                             "eventstream-peer-tls")
    headless = f"eventstream-headless.{namespace}.svc.cluster.local"
    assert members["dnsNames"] == [headless, f"*.{headless}"]
    assert "client auth" in members["usages"] and served["issuerRef"]["name"] == "events-ca"
    # The pods wait for the Secrets cert-manager would write, mounted whole.
    pod = statefulset(plane, namespace)["spec"]["template"]["spec"]
    assert {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} == {
        "tls": "eventstream-tls", "peer-tls": "eventstream-peer-tls"}


def test_an_autoscaler_scales_read_replicas_and_upgrades_never_scale_them_back(
        control_plane: ControlPlane, namespace: str, nodes: Callable[..., list[str]],
        volumes: Callable[..., None]) -> None:
    """Three voters, then the HorizontalPodAutoscaler adds read replicas. Neither
    switching it on nor a later upgrade writes a pod count of its own (measured
    once: a config-only upgrade took an autoscaled StatefulSet from 6 pods to
    3), and the disruption budget counts the voters only."""
    plane = control_plane
    nodes(3, **SMALL_NODE)
    volumes(namespace, "eventstream", 5, DEFAULT_STORAGE_CLASS, "10Gi")
    install(plane, namespace, "minReadySeconds=0")
    kubelet = Kubelet(plane, namespace)
    kubelet.until(lambda: rolled_out(plane, namespace, 3), "three ready voters")

    # Switched on: helm leaves the count as it is (dropping the field would
    # have Kubernetes reset it to 1 and delete two voters).
    install(plane, namespace, "autoscaling.enabled=true", "autoscaling.minReplicas=3",
            "autoscaling.maxReplicas=6", upgrade=True)
    assert statefulset(plane, namespace)["spec"]["replicas"] == 3
    # The autoscaler itself scales out (no metrics served here: it acts on its minimum).
    plane.kubectl("patch", "hpa", "eventstream", "-n", namespace, "--type=merge",
                  "-p", '{"spec":{"minReplicas":5}}')
    kubelet.until(lambda: rolled_out(plane, namespace, 5), "five ready pods", timeout=120)
    pods = {p["metadata"]["name"]: p["metadata"]["labels"] for p in items(plane, "pods", namespace)}
    assert sorted(pods) == [f"eventstream-{n}" for n in range(5)]
    assert pods["eventstream-4"]["apps.kubernetes.io/pod-index"] == "4"

    status = kubelet.until(lambda: settled_budget(plane, namespace, healthy=3),
                           "the disruption budget's status")["status"]
    # Of five pods the budget counts the three voters: a majority (2) stays.
    assert (status["expectedPods"], status["desiredHealthy"], status["disruptionsAllowed"]) == (3, 2, 1)

    # A config-only upgrade: the pods are rolled, their count is the autoscaler's.
    before = statefulset(plane, namespace)["status"]["updateRevision"]
    install(plane, namespace, "config.log.level=debug", upgrade=True)
    assert statefulset(plane, namespace)["spec"]["replicas"] == 5
    assert plane.get("hpa", "eventstream", "-n", namespace)["spec"]["minReplicas"] == 3, (
        "helm set its own minimum back")
    kubelet.until(lambda: rolled_out(plane, namespace, 5, before), "the upgrade rolled out", timeout=180)
    assert statefulset(plane, namespace)["spec"]["replicas"] == 5


def test_a_new_release_under_an_autoscaler_gets_its_voters_from_it(
        control_plane: ControlPlane, namespace: str, nodes: Callable[..., list[str]],
        volumes: Callable[..., None]) -> None:
    """Installed with autoscaling on, the StatefulSet carries no pod count (the
    API server defaults it to 1) and the autoscaler raises it to minReplicas,
    so every voter comes up."""
    plane = control_plane
    nodes(3, **SMALL_NODE)
    volumes(namespace, "eventstream", 3, DEFAULT_STORAGE_CLASS, "10Gi")
    install(plane, namespace, "autoscaling.enabled=true", "autoscaling.minReplicas=3")
    kubelet = Kubelet(plane, namespace)
    kubelet.until(lambda: rolled_out(plane, namespace, 3), "the autoscaler's three voters", timeout=120)
    hpa = plane.get("hpa", "eventstream", "-n", namespace)
    assert hpa["status"]["desiredReplicas"] == 3
