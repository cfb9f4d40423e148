"""helm and kubectl against the deploy tests' control plane (see conftest.py)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.support.kube import ControlPlane

from .rendering import CHART, tool

# The cluster's default StorageClass (conftest.py creates it): where a claim
# without a class lands.
DEFAULT_STORAGE_CLASS = "standard"


def helm(plane: ControlPlane, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm against the control plane; fails with helm's output when ``check``."""
    result = subprocess.run([tool("helm"), *args], capture_output=True, text=True, timeout=120,
                            env=plane.env())
    if check:
        assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stderr}"
    return result


def install(plane: ControlPlane, namespace: str, *sets: str, release: str = "eventstream",
            upgrade: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``helm install`` (or ``upgrade --reuse-values``) of the chart with ``--set`` values."""
    args = ["upgrade", "--reuse-values"] if upgrade else ["install", "--create-namespace"]
    args += [release, str(CHART), "--namespace", namespace]
    for setting in sets:
        args += ["--set", setting]
    return helm(plane, *args, check=check)


def template(plane: ControlPlane, namespace: str, *args: str, release: str = "eventstream") -> str:
    """``helm template`` of the chart for this cluster's Kubernetes version."""
    version = json.loads(plane.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    return helm(plane, "template", release, str(CHART), "--namespace", namespace,
                "--kube-version", version, *args).stdout


def items(plane: ControlPlane, kind: str, namespace: str, *selector: str) -> list[dict[str, Any]]:
    """The objects of ``kind`` in ``namespace`` (``-l`` selectors allowed)."""
    return plane.get(kind, "-n", namespace, *selector)["items"]


def endpoint_addresses(plane: ControlPlane, namespace: str, service: str) -> dict[str, bool]:
    """Address -> ready, over the EndpointSlices the controller publishes for a Service."""
    slices = items(plane, "endpointslices", namespace, "-l", f"kubernetes.io/service-name={service}")
    return {address: endpoint["conditions"].get("ready", False)
            for piece in slices for endpoint in piece.get("endpoints") or []
            for address in endpoint["addresses"]}
