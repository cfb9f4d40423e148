"""The kustomize base (generated from the chart) and the per-cluster overlays."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest
import yaml

from .rendering import (
    KUSTOMIZE_DIR,
    OVERLAYS,
    REPO,
    ci_values,
    find,
    helm_template,
    kinds,
    kustomize_build,
    overlay_variant,
    run,
    tool,
    validation_errors,
)

GENERATED_DIRS = ("base", "components/monitoring")


def test_generated_base_has_no_drift(tmp_path: Path) -> None:
    result = run(["bash", str(KUSTOMIZE_DIR / "generate.sh"), str(tmp_path)],
                 env={**os.environ, "HELM": tool("helm")})
    assert result.returncode == 0, result.stderr
    for directory in GENERATED_DIRS:
        committed, fresh = KUSTOMIZE_DIR / directory, tmp_path / directory
        comparison = filecmp.dircmp(committed, fresh)
        stale = [name for name in comparison.common_files
                 if (committed / name).read_bytes() != (fresh / name).read_bytes()]
        assert (comparison.left_only, comparison.right_only, stale) == ([], [], []), (
            f"deploy/kustomize/{directory} differs from the chart: run deploy/kustomize/generate.sh")


def test_generated_files_say_do_not_edit() -> None:
    for directory in GENERATED_DIRS:
        for path in (KUSTOMIZE_DIR / directory).glob("*.yaml"):
            assert path.read_text().startswith("# DO NOT EDIT"), path.relative_to(REPO)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_valid_manifests(overlay: str) -> None:
    manifests = kustomize_build(overlay)
    assert validation_errors(manifests) == []
    assert "Pod" not in kinds(manifests), "the helm test pod belongs to the chart only"
    assert {m["metadata"]["labels"]["app.kubernetes.io/managed-by"] for m in manifests} == {
        "kustomize"}


def test_dev_is_one_small_node() -> None:
    manifests = kustomize_build("dev")
    spec = find(manifests, "StatefulSet")["spec"]
    assert spec["replicas"] == 1
    pod = spec["template"]["spec"]
    assert "affinity" not in pod
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["EVENTSTREAM_CLUSTER__ENABLED"] == "false"
    assert "HorizontalPodAutoscaler" not in kinds(manifests)
    assert "PodDisruptionBudget" not in kinds(manifests)


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_overlay_runs_three_voters_with_a_budget_keeping_the_majority(overlay: str) -> None:
    manifests = kustomize_build(overlay)
    spec = find(manifests, "StatefulSet")["spec"]
    assert spec["replicas"] == 3
    assert spec["podManagementPolicy"] == "Parallel"
    config = yaml.safe_load(find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"])
    assert (config["cluster"]["enabled"], config["cluster"]["replicas"],
            config["cluster"]["voters"]) == (True, 3, 3)
    budget = find(manifests, "PodDisruptionBudget")["spec"]
    assert budget["minAvailable"] == 2
    assert budget["selector"]["matchExpressions"][0]["values"] == ["0", "1", "2"]
    assert "HorizontalPodAutoscaler" not in kinds(manifests)


def test_base_says_why_the_pods_start_together() -> None:
    statefulset = (KUSTOMIZE_DIR / "base" / "statefulset.yaml").read_text()
    assert "The voters of one Raft cluster (ordinals below cluster.voters: a majority" in statefulset
    assert "OrderedReady would wait for it forever" in statefulset


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_brings_its_namespace(overlay: str) -> None:
    """`kubectl apply -k` into a cluster without the namespace once failed."""
    manifests = kustomize_build(overlay)
    namespace = find(manifests, "Namespace")["metadata"]["name"]
    assert {m["metadata"].get("namespace") for m in manifests if m["kind"] != "Namespace"} == {
        namespace}
    assert kinds(manifests)[0] == "Namespace", "kustomize orders it first"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_claim_template_carries_only_the_selector_labels(overlay: str) -> None:
    """The API server refuses any change to volumeClaimTemplates: a common label
    written there could never be changed, nor the release moved between the
    chart and an overlay."""
    spec = find(kustomize_build(overlay), "StatefulSet")["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["labels"] == spec["selector"]["matchLabels"]
    assert spec["template"]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kustomize"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_monitoring_is_opt_in(overlay: str) -> None:
    """Without the prometheus-operator's CRDs the API server refuses the whole
    apply, so no overlay includes the monitoring component by default."""
    assert not {"ServiceMonitor", "PrometheusRule"} & set(kinds(kustomize_build(overlay)))


def test_monitoring_component_adds_to_an_overlay(tmp_path: Path) -> None:
    manifests = kustomize_build(str(overlay_variant(tmp_path, "production", monitoring=True)))
    assert validation_errors(manifests) == []
    assert {"ServiceMonitor", "PrometheusRule"} <= set(kinds(manifests))
    assert find(manifests, "ConfigMap", "eventstream-dashboard")


def test_production_is_three_voters_on_fast_ssd_with_hard_anti_affinity() -> None:
    manifests = kustomize_build("production")
    spec = find(manifests, "StatefulSet")["spec"]
    assert spec["replicas"] == 3
    pod = spec["template"]["spec"]
    required = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required[0]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    resources = pod["containers"][0]["resources"]
    assert resources["requests"] == resources["limits"], "Guaranteed QoS for CPU pinning"


def _shape(manifests) -> dict:
    """What an overlay and the chart with the same environment's values must agree on."""
    statefulset = find(manifests, "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    claims = statefulset["spec"].get("volumeClaimTemplates", [])
    shape = {
        "replicas": statefulset["spec"]["replicas"],
        "resources": pod["containers"][0]["resources"],
        "affinity": pod.get("affinity"),
        "topologySpread": pod.get("topologySpreadConstraints"),
        "storage": [(c["spec"].get("storageClassName"), c["spec"]["resources"]["requests"]["storage"])
                    for c in claims],
        "kinds": sorted(k for k in kinds(manifests) if k not in ("Pod", "Namespace")),
        "ports": pod["containers"][0]["ports"],
        "probes": {p: pod["containers"][0][p] for p in ("readinessProbe", "livenessProbe", "startupProbe")},
    }
    return shape


def _effective_config(manifests) -> dict:
    """config.yaml with the container's EVENTSTREAM_<SECTION>__<KEY> overrides applied."""
    config = yaml.safe_load(find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"])
    container = find(manifests, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    for env in container["env"]:
        name = env["name"]
        if name.startswith("EVENTSTREAM_") and "value" in env:
            section, _, key = name[len("EVENTSTREAM_"):].partition("__")
            config.setdefault(section.lower(), {})[key.lower()] = yaml.safe_load(env["value"])
    return config


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_matches_the_chart_with_the_same_settings(overlay: str) -> None:
    chart = helm_template(values_files=(ci_values(f"{overlay}-values.yaml"),))
    assert _shape(kustomize_build(overlay)) == _shape(chart)
    assert _effective_config(kustomize_build(overlay)) == _effective_config(chart)
