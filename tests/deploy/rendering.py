"""Render the Helm chart and the kustomize overlays, and validate manifests.

The deploy tests share these functions. Renders are cached per arguments for
the whole test session: helm and kustomize are deterministic, and the cache
keeps the suite fast. Tools come from ``<repo>/.tools/bin``, where
``tools/install-k8s-tools.sh`` puts them.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "eventstream"
KUSTOMIZE_DIR = REPO / "deploy" / "kustomize"
OVERLAYS = ("dev", "staging", "production")
CI_VALUES = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
TOOLS_BIN = REPO / ".tools" / "bin"
KUBE_VERSION = "1.33.0"
RELEASE = "eventstream"
NAMESPACE = "eventstream"
SINGLE_NODE = ("replicas=1", "cluster.enabled=false")
"""One unreplicated node: for tests that run a lone server with the rendered config."""
# Renders pretend the cluster serves the prometheus-operator API, so the
# ServiceMonitor and PrometheusRule templates are exercised.
MONITORING_APIS = ("monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule")
# kubernetes-validate has no schemas for CRDs: these kinds are checked against
# the schemas in schemas/ instead (a strict subset of the operator's CRDs).
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
    ("cert-manager.io/v1", "Certificate"): "certificate-cert-manager-v1.json",
}

Manifest = dict[str, Any]


def tool(name: str) -> str:
    """Path of an installed tool; fails the test with the fix when it is missing."""
    path = TOOLS_BIN / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed in {TOOLS_BIN.relative_to(REPO)}: "
                    f"run tools/install-k8s-tools.sh first", pytrace=False)
    return str(path)


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output."""
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


def helm_template_args(*, values_files: tuple[str, ...] = (), sets: tuple[str, ...] = (),
                       monitoring: bool = True, release: str = RELEASE,
                       kube_version: str = KUBE_VERSION) -> list[str]:
    """The ``helm template`` command line for the chart."""
    args = [tool("helm"), "template", release, str(CHART), "--namespace", NAMESPACE,
            "--kube-version", kube_version]
    if monitoring:
        for api in MONITORING_APIS:
            args += ["--api-versions", api]
    for values in values_files:
        args += ["--values", values]
    for setting in sets:
        args += ["--set", setting]
    return args


@functools.cache
def helm_template(*, values_files: tuple[str, ...] = (), sets: tuple[str, ...] = (),
                  monitoring: bool = True, release: str = RELEASE) -> tuple[Manifest, ...]:
    """The chart's manifests for these values (cached)."""
    result = run(helm_template_args(values_files=values_files, sets=sets,
                                    monitoring=monitoring, release=release))
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return load_all(result.stdout)


def helm_template_error(*, values_files: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> str:
    """Stderr of a ``helm template`` that must fail; fails the test if it succeeds."""
    result = run(helm_template_args(values_files=values_files, sets=sets))
    assert result.returncode != 0, f"helm template accepted {sets or values_files}"
    return result.stderr


def ci_values(name: str) -> str:
    """Path of a chart-testing values file in the chart's ci/ directory."""
    return str(CHART / "ci" / name)


@functools.cache
def kustomize_build(overlay: str) -> tuple[Manifest, ...]:
    """The manifests of one overlay (cached)."""
    result = run([tool("kustomize"), "build", str(KUSTOMIZE_DIR / "overlays" / overlay)])
    assert result.returncode == 0, f"kustomize build {overlay} failed:\n{result.stderr}"
    return load_all(result.stdout)


def overlay_variant(directory: Path, overlay: str, *, namespace: str | None = None,
                    monitoring: bool = False) -> Path:
    """A kustomization in ``directory`` building ``overlay`` as a user would vary it.

    Moved to another namespace, or with the monitoring component added (the
    opt-in its comment describes).
    """
    directory.mkdir(parents=True, exist_ok=True)
    # kustomize accepts only relative paths to other kustomizations.
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(KUSTOMIZE_DIR / "overlays" / overlay, directory)]}
    if namespace:
        kustomization["namespace"] = namespace
    if monitoring:
        kustomization["components"] = [
            os.path.relpath(KUSTOMIZE_DIR / "components" / "monitoring", directory)]
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return directory


def load_all(text: str) -> tuple[Manifest, ...]:
    """Every non-empty YAML document of a stream."""
    return tuple(doc for doc in yaml.safe_load_all(text) if doc)


def find(manifests: tuple[Manifest, ...], kind: str, name: str | None = None) -> Manifest:
    """The one manifest of ``kind`` (and ``name``); fails when there is not exactly one."""
    matches = [m for m in manifests
               if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def kinds(manifests: tuple[Manifest, ...]) -> list[str]:
    """The kinds, in order."""
    return [m["kind"] for m in manifests]


def validation_errors(manifests: tuple[Manifest, ...]) -> list[str]:
    """Problems found validating every manifest, strictly.

    Against Kubernetes ``KUBE_VERSION`` (built-in kinds) or our CRD schemas
    (CRD kinds). An unknown kind is an error, never a silent pass.
    """
    import jsonschema
    import kubernetes_validate

    problems = []
    for manifest in manifests:
        label = f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"
        crd_schema = CRD_SCHEMAS.get((manifest.get("apiVersion"), manifest.get("kind")))
        if crd_schema is not None:
            validator = jsonschema.Draft7Validator(_crd_schema(crd_schema))
            problems += [f"{label}: {'.'.join(map(str, e.path))}: {e.message}"
                         for e in validator.iter_errors(manifest)]
            continue
        try:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{label}: {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{label}: no schema: {error.message}")
    return problems


@functools.cache
def _crd_schema(name: str) -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "schemas" / name).read_text())
