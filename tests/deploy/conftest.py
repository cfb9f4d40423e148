"""Fixtures of the deploy tests that run against a real Kubernetes API server."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.kube import ControlPlane, ControlPlaneError, missing_binaries, wait_until

from .cluster import DEFAULT_STORAGE_CLASS

CRD_DIR = Path(__file__).parent / "crds"
# Cluster-wide storage classes, as a small cluster has them: one default class
# (the chart's empty storageClass lands there) and the classes the overlays
# name. No provisioner runs: the tests create the volumes (see `volumes`).
STORAGE_CLASSES = [
    {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
     "metadata": {"name": name, "annotations": {
         "storageclass.kubernetes.io/is-default-class": str(name == DEFAULT_STORAGE_CLASS).lower()}},
     "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate",
     "allowVolumeExpansion": True}
    for name in ("standard", "fast-ssd")]
_namespaces = itertools.count(1)
_nodes = itertools.count(1)
_volumes = itertools.count(1)


@pytest.fixture(scope="package")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd, the API server, the controller manager and the scheduler, shared by
    the deploy tests and stopped when they are done."""
    if missing_binaries():
        pytest.fail(f"{', '.join(missing_binaries())} not built: run tools/k8s/build.sh "
                    "(make tools does)", pytrace=False)
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"))
    try:
        plane.start()
    except (ControlPlaneError, TimeoutError) as error:
        pytest.fail(f"the control plane did not start: {error}", pytrace=False)
    try:
        plane.apply(STORAGE_CLASSES)
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace name (not created: helm and the overlays create it).

    Afterwards everything the test left in it is removed the way a cluster
    would (the StatefulSets, then their pods, whose deletion the absent
    kubelet cannot finish), so the next test's nodes have room.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    name = f"t{next(_namespaces)}-{slug}"[:63].rstrip("-")
    yield name
    plane = control_plane
    plane.kubectl("delete", "statefulsets,horizontalpodautoscalers", "--all", "-n", name,
                  "--wait=false", check=False)

    def no_pod_left() -> bool:
        plane.kubectl("delete", "pods", "--all", "-n", name, "--grace-period=0", "--force",
                      "--wait=false", check=False)
        return not plane.get("pods", "-n", name)["items"]
    wait_until(no_pod_left, 60, f"pods of {name} deleted")
    plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def nodes(control_plane: ControlPlane) -> Iterator[Callable[..., list[str]]]:
    """Factory creating Ready nodes of a given size; all are deleted afterwards.

    ``nodes(2, cpu="2", memory="4Gi")`` is a small cluster (kind, minikube);
    ``zones=["a", "b"]`` labels them topology.kubernetes.io/zone round-robin.
    """
    created: list[str] = []

    def create(count: int, cpu: str, memory: str, zones: list[str] | None = None) -> list[str]:
        names = []
        for i in range(count):
            name = f"node-{next(_nodes)}"
            labels = {"topology.kubernetes.io/zone": zones[i % len(zones)]} if zones else {}
            control_plane.create_node(name, cpu=cpu, memory=memory, labels=labels)
            created.append(name)
            names.append(name)
        return names

    yield create
    if created:
        control_plane.kubectl("delete", "nodes", *created, "--wait=false", check=False)


@pytest.fixture
def volumes(control_plane: ControlPlane) -> Iterator[Callable[..., None]]:
    """Factory creating the PersistentVolumes a StatefulSet's claims will bind to,
    as a provisioner would: ``volumes(namespace, "eventstream", 3, "standard", "10Gi")``
    makes one volume pre-bound to each claim ``data-eventstream-<n>``."""
    created: list[str] = []

    def create(namespace: str, statefulset: str, count: int, storage_class: str, size: str) -> None:
        manifests = []
        for ordinal in range(count):
            claim = f"data-{statefulset}-{ordinal}"
            name = f"pv-{next(_volumes)}"
            manifests.append({
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                         "storageClassName": storage_class,
                         "persistentVolumeReclaimPolicy": "Retain",
                         "hostPath": {"path": f"/var/lib/volumes/{name}"},
                         "claimRef": {"namespace": namespace, "name": claim}}})
            created.append(name)
        control_plane.apply(manifests)

    yield create
    if created:
        control_plane.kubectl("delete", "persistentvolumes", *created, "--wait=false", check=False)


def _served_crds(control_plane: ControlPlane, group: str) -> Iterator[None]:
    """The minimal CRDs of crds/ whose group is ``group``, served until resumed."""
    files = sorted(CRD_DIR.glob(f"*.{group}.yaml"))
    assert files, f"no CRD of {group} in {CRD_DIR}"
    for path in files:
        control_plane.kubectl("apply", "--server-side", "-f", str(path))
    names = [path.stem for path in files]
    control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                          *(f"crd/{name}" for name in names))
    yield
    control_plane.kubectl("delete", "crd", *names, "--wait=true", "--timeout=60s", check=False)


@pytest.fixture
def monitoring_crds(control_plane: ControlPlane) -> Iterator[None]:
    """The prometheus-operator's ServiceMonitor and PrometheusRule kinds (minimal
    CRDs from crds/), served for one test and removed afterwards."""
    yield from _served_crds(control_plane, "monitoring.coreos.com")


@pytest.fixture
def cert_manager_crds(control_plane: ControlPlane) -> Iterator[None]:
    """cert-manager's Certificate kind (a minimal CRD from crds/), served for one
    test and removed afterwards."""
    yield from _served_crds(control_plane, "cert-manager.io")

