"""What the chart passes to peer discovery, rendered with ``helm template``.

Every mode renders a cluster section the server loads, with the pod name,
namespace, headless Service, ``replicas`` and cluster domain discovery needs;
the Role reading EndpointSlices (get, list, watch, nothing more) and the
mounted token exist only for ``kubernetes``; and the names ``dns`` discovery
looks up are the ones the chart's headless Service gives the pods (checked by
running it against a DNS responder that serves exactly those names).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from eventstream.server.cluster.discovery import DnsDiscovery, initial_members, joins, peer_discovery
from eventstream.server.config.load import load_config
from tests.support.dns import Responder

from .rendering import NAMESPACE, find, helm_template, kinds

THREE = ("replicas=3",)


def rendered_config(manifests: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return yaml.safe_load(find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"])


def server_cluster(manifests: tuple[dict[str, Any], ...], pod: str, tmp_path, **overrides: Any):
    """The server's cluster settings from the rendered ConfigMap, with the env the pod spec sets."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(rendered_config(manifests)))
    env = {"NODE_ID": pod, "POD_NAME": pod, "EVENTSTREAM_CLUSTER__NAMESPACE": NAMESPACE}
    return load_config(str(path), env=env, overrides=overrides).cluster


@pytest.mark.parametrize("discovery", ["kubernetes", "dns", "static"])
def test_every_mode_renders_what_discovery_needs(discovery: str, tmp_path) -> None:
    manifests = helm_template(sets=(*THREE, f"cluster.discovery={discovery}",
                                    "cluster.clusterDomain=corp.internal"))
    cluster = server_cluster(manifests, "eventstream-2", tmp_path)
    assert (cluster.discovery, cluster.namespace, cluster.service, cluster.port, cluster.replicas,
            cluster.cluster_domain, cluster.node_id) == (
        discovery, NAMESPACE, "eventstream-headless", 9100, 3, "corp.internal", "eventstream-2")
    assert find(manifests, "Service", cluster.service)["spec"]["clusterIP"] == "None"
    assert find(manifests, "StatefulSet")["spec"]["serviceName"] == cluster.service
    peer_discovery(cluster)  # the settings are usable: no DiscoveryError
    if discovery == "static":
        assert list(cluster.peers) == [
            f"eventstream-{n}.eventstream-headless.{NAMESPACE}.svc.corp.internal:9100" for n in range(3)]


@pytest.mark.parametrize("discovery", ["kubernetes", "dns"])
def test_pods_beyond_the_voters_join_as_learners_and_scaling_rolls_no_pod(discovery: str,
                                                                          tmp_path) -> None:
    five = helm_template(sets=("replicas=5", f"cluster.discovery={discovery}"))
    for pod, learner in (("eventstream-2", False), ("eventstream-3", True), ("eventstream-4", True)):
        cluster = server_cluster(five, pod, tmp_path)
        assert joins(cluster) is learner, pod
        assert sorted(initial_members(cluster)) == ["eventstream-0", "eventstream-1", "eventstream-2"]
    # The pod count is not in the config: adding read replicas (or an
    # autoscaler doing so) changes no pod's config, so none is rolled.
    three = helm_template(sets=(f"cluster.discovery={discovery}",))
    scaled = helm_template(sets=(f"cluster.discovery={discovery}", "autoscaling.enabled=true",
                                 "autoscaling.minReplicas=4"))
    checksums = {find(m, "StatefulSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
                 for m in (three, five, scaled)}
    assert len(checksums) == 1


def test_the_pod_spec_passes_its_name_and_namespace() -> None:
    container = find(helm_template(), "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    fields = {env["name"]: env["valueFrom"]["fieldRef"]["fieldPath"]
              for env in container["env"] if "valueFrom" in env}
    assert fields == {"POD_NAME": "metadata.name", "NODE_ID": "metadata.name",
                      "EVENTSTREAM_CLUSTER__NAMESPACE": "metadata.namespace"}


@pytest.mark.parametrize("discovery", ["kubernetes", "dns", "static"])
def test_endpointslice_rights_and_token_only_for_kubernetes(discovery: str) -> None:
    manifests = helm_template(sets=(f"cluster.discovery={discovery}",))
    pod_spec = find(manifests, "StatefulSet")["spec"]["template"]["spec"]
    assert pod_spec["automountServiceAccountToken"] is (discovery == "kubernetes")
    if discovery != "kubernetes":
        assert "Role" not in kinds(manifests) and "RoleBinding" not in kinds(manifests)
        return
    role = find(manifests, "Role")
    assert role["rules"] == [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                              "verbs": ["get", "list", "watch"]}]
    binding = find(manifests, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": pod_spec["serviceAccountName"],
                                    "namespace": NAMESPACE}]
    without = helm_template(sets=("cluster.discovery=kubernetes", "rbac.create=false"))
    assert "Role" not in kinds(without)


def test_the_default_is_three_voters_found_by_dns() -> None:
    manifests = helm_template()
    assert find(manifests, "StatefulSet")["spec"]["replicas"] == 3
    assert rendered_config(manifests)["cluster"]["replicas"] == 3
    assert rendered_config(manifests)["cluster"]["discovery"] == "dns"


@pytest.fixture
def responder() -> Iterator[Responder]:
    server = Responder().start()
    yield server
    server.stop()


async def test_dns_discovery_finds_the_names_the_headless_service_gives(responder: Responder,
                                                                         tmp_path) -> None:
    manifests = helm_template(sets=(*THREE, "cluster.discovery=dns"))
    headless = find(manifests, "Service", "eventstream-headless")
    assert headless["spec"]["publishNotReadyAddresses"] is True, "records exist before pods are ready"
    # What the cluster DNS publishes for a StatefulSet's pods under its governing Service.
    names = [f"eventstream-{n}.{headless['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
             for n in range(3)]
    for ordinal, name in enumerate(names):
        responder.set(name, f"192.0.2.{ordinal + 1}")
    cluster = server_cluster(manifests, "eventstream-1", tmp_path, **{
        "cluster.dns_server": responder.address})
    discovery = peer_discovery(cluster)
    assert isinstance(discovery, DnsDiscovery)
    peers = await discovery.start()
    assert peers == {f"eventstream-{n}": f"dns://{responder.address}/{names[n]}:9100" for n in range(3)}
    assert all(responder.asked(name) for name in names)
