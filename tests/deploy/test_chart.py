"""The Helm chart: lint, schema-valid renders, and the properties the
deployment spec and a quorum-based StatefulSet need."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from .rendering import (CHART, CI_VALUES, NAMESPACE, ci_values, find, helm_template,
                        helm_template_error, kinds, run, tool, validation_errors)

# The deployment spec's names and ports.
SEED_CONTAINER_PORTS = {"tcp": (9000, "TCP"), "udp": (9001, "UDP"), "grpc": (9200, "TCP"),
                        "cluster": (9100, "TCP"), "metrics": (8080, "TCP")}
SEED_CLIENT_PORTS = {"tcp": (9000, "TCP"), "udp": (9001, "UDP"), "grpc": (9200, "TCP")}


def container(manifests):
    statefulset = find(manifests, "StatefulSet", "eventstream")
    (server,) = statefulset["spec"]["template"]["spec"]["containers"]
    return server


def test_lint_strict() -> None:
    result = run([tool("helm"), "lint", "--strict", str(CHART), "--kube-version", "1.33.0"])
    assert result.returncode == 0, result.stdout + result.stderr
    for values in CI_VALUES:
        result = run([tool("helm"), "lint", "--strict", str(CHART), "--kube-version", "1.33.0",
                      "--values", ci_values(values)])
        assert result.returncode == 0, f"{values}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("values", ["(defaults)", *CI_VALUES])
def test_renders_valid_manifests(values: str) -> None:
    files = () if values == "(defaults)" else (ci_values(values),)
    manifests = helm_template(values_files=files)
    assert validation_errors(manifests) == []


def test_defaults_render_every_seed_resource() -> None:
    manifests = helm_template()
    assert sorted(kinds(manifests)) == sorted([
        "ConfigMap", "StatefulSet", "Service", "Service", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "ServiceAccount", "Role", "RoleBinding", "ServiceMonitor", "Pod"])
    assert {m["metadata"]["namespace"] for m in manifests} == {NAMESPACE}


def test_without_the_operator_api_no_crd_is_rendered() -> None:
    manifests = helm_template(monitoring=False, sets=("metrics.prometheusRule.enabled=true",))
    assert "ServiceMonitor" not in kinds(manifests)
    assert "PrometheusRule" not in kinds(manifests)


def test_names_and_ports_match_the_seed() -> None:
    manifests = helm_template()
    find(manifests, "ConfigMap", "eventstream-config")
    statefulset = find(manifests, "StatefulSet", "eventstream")
    assert statefulset["spec"]["serviceName"] == "eventstream-headless"
    assert statefulset["spec"]["replicas"] == 3
    ports = {p["name"]: (p["containerPort"], p["protocol"]) for p in container(manifests)["ports"]}
    assert ports == SEED_CONTAINER_PORTS
    client = find(manifests, "Service", "eventstream")
    assert {p["name"]: (p["port"], p["protocol"]) for p in client["spec"]["ports"]} == SEED_CLIENT_PORTS
    assert all(p["targetPort"] == p["name"] for p in client["spec"]["ports"])
    headless = find(manifests, "Service", "eventstream-headless")
    assert {p["name"]: p["port"] for p in headless["spec"]["ports"]}["cluster"] == 9100


def test_headless_service_publishes_not_ready_addresses() -> None:
    headless = find(helm_template(), "Service", "eventstream-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    statefulset = find(helm_template(), "StatefulSet")
    assert headless["spec"]["selector"] == statefulset["spec"]["selector"]["matchLabels"]


def test_statefulset_lets_a_quorum_form_and_drains_fully() -> None:
    manifests = helm_template()
    spec = find(manifests, "StatefulSet")["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    pod = spec["template"]["spec"]
    config = find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"]
    server = yaml.safe_load(config)["server"]
    drain = server["drain_grace_seconds"] + server["drain_timeout_seconds"]
    assert pod["terminationGracePeriodSeconds"] > drain


def test_env_identifies_the_pod() -> None:
    env = {e["name"]: e for e in container(helm_template())["env"]}
    for name in ("POD_NAME", "NODE_ID"):
        assert env[name]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_probes_use_health_on_8080() -> None:
    server = container(helm_template())
    assert server["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    for probe in ("livenessProbe", "startupProbe"):
        http = server[probe]["httpGet"]
        assert http["port"] == 8080 and http["path"].startswith("/health"), probe


def test_security_context_is_non_root_and_read_only() -> None:
    manifests = helm_template()
    pod = find(manifests, "StatefulSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    server = container(manifests)
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    assert server["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    assert mounts == {"/etc/eventstream": "config", "/var/lib/eventstream": "data", "/tmp": "tmp"}


def test_pvc_template_asks_for_class_and_size() -> None:
    (claim,) = find(helm_template(), "StatefulSet")["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "100Gi"
    (claim,) = find(helm_template(sets=("persistence.storageClass=gold", "persistence.size=7Ti")),
                    "StatefulSet")["spec"]["volumeClaimTemplates"]
    assert (claim["spec"]["storageClassName"], claim["spec"]["resources"]["requests"]["storage"]) == (
        "gold", "7Ti")


def test_no_persistence_uses_an_empty_dir() -> None:
    spec = find(helm_template(sets=("persistence.enabled=false",)), "StatefulSet")["spec"]
    assert "volumeClaimTemplates" not in spec
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["data"]


def test_hpa_targets_the_statefulset_with_both_metrics() -> None:
    hpa = find(helm_template(), "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet",
                                             "name": "eventstream"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"] == {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    assert metrics["Pods"]["pods"] == {
        "metric": {"name": "eventstream_queue_depth"},
        "target": {"type": "AverageValue", "averageValue": "50000"}}


def test_pdb_keeps_a_quorum() -> None:
    manifests = helm_template()
    pdb = find(manifests, "PodDisruptionBudget")
    replicas = find(manifests, "StatefulSet")["spec"]["replicas"]
    assert replicas - pdb["spec"]["maxUnavailable"] >= replicas // 2 + 1
    assert pdb["spec"]["selector"]["matchLabels"] == find(
        manifests, "StatefulSet")["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("mode, key", [
    ("hard", "requiredDuringSchedulingIgnoredDuringExecution"),
    ("soft", "preferredDuringSchedulingIgnoredDuringExecution"),
])
def test_anti_affinity_modes(mode: str, key: str) -> None:
    pod = find(helm_template(sets=(f"affinity.podAntiAffinity={mode}",)), "StatefulSet")
    assert list(pod["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]) == [key]


def test_no_anti_affinity() -> None:
    pod = find(helm_template(sets=("affinity.podAntiAffinity=none",)), "StatefulSet")
    assert "affinity" not in pod["spec"]["template"]["spec"]


def test_production_requires_anti_affinity() -> None:
    manifests = helm_template(values_files=(ci_values("production-values.yaml"),))
    spec = find(manifests, "StatefulSet")["spec"]
    assert spec["replicas"] == 5
    required = spec["template"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]
    assert required[0]["topologyKey"] == "kubernetes.io/hostname"
    assert required[0]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_discovery_rbac_reads_endpointslices() -> None:
    manifests = helm_template()
    role = find(manifests, "Role")
    assert role["rules"] == [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                              "verbs": ["get", "list", "watch"]}]
    binding = find(manifests, "RoleBinding")
    assert binding["subjects"][0]["name"] == find(manifests, "ServiceAccount")["metadata"]["name"]
    statefulset = find(manifests, "StatefulSet")
    assert statefulset["spec"]["template"]["spec"]["serviceAccountName"] == binding["subjects"][0]["name"]
    static = helm_template(sets=("cluster.discovery=static",))
    assert "Role" not in kinds(static) and "RoleBinding" not in kinds(static)


def test_ingress_routes_grpc() -> None:
    ingress = find(helm_template(sets=("ingress.enabled=true",)), "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "eventstream.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "eventstream",
                                                              "port": {"name": "grpc"}}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"


def test_service_monitor_scrapes_the_metrics_port() -> None:
    manifests = helm_template()
    monitor = find(manifests, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    headless = find(manifests, "Service", "eventstream-headless")
    assert "metrics" in {p["name"] for p in headless["spec"]["ports"]}
    labels = headless["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    client = find(manifests, "Service", "eventstream")
    assert not all(client["metadata"]["labels"].get(k) == v
                   for k, v in monitor["spec"]["selector"]["matchLabels"].items())


def test_prometheus_rule_alerts() -> None:
    rule = find(helm_template(sets=("metrics.prometheusRule.enabled=true",)), "PrometheusRule")
    rules = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "eventstream_publish_latency_seconds_bucket" in rules["EventStreamPublishLatencyHigh"]
    assert "histogram_quantile(0.99" in rules["EventStreamPublishLatencyHigh"]
    assert re.search(r"eventstream_queue_depth\{.*\} / eventstream_queue_capacity",
                     rules["EventStreamLaneNearCapacity"])
    assert "up{" in rules["EventStreamNodeDown"]
    assert "eventstream_cluster_is_leader" in rules["EventStreamNoLeader"]
    assert "eventstream_cluster_replication_lag" in rules["EventStreamReplicationLag"]
    assert "eventstream_events_rejected_total" in rules["EventStreamEventsDropped"]
    for name, expr in rules.items():
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), name
        assert 'namespace="eventstream"' in expr, name


def test_dashboard_ships_in_a_configmap() -> None:
    dashboard = find(helm_template(sets=("metrics.dashboard.enabled=true",)), "ConfigMap",
                     "eventstream-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    model = json.loads(dashboard["data"]["eventstream.json"])
    assert model == json.loads((CHART / "dashboards" / "eventstream.json").read_text())
    exprs = " ".join(t["expr"] for p in model["panels"] for t in p.get("targets", []))
    for metric in ("eventstream_events_received_total", "eventstream_publish_latency_seconds_bucket",
                   "eventstream_queue_depth", "eventstream_cluster_is_leader", "up{"):
        assert metric in exprs, metric
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))


def test_helm_test_hook_checks_grpc_health_of_every_pod() -> None:
    pod = find(helm_template(), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["python", "-c"] and "grpc_health.v1" in command[2]
    assert command[3:] == ["eventstream:9200", "eventstream-0.eventstream-headless:9200",
                           "eventstream-1.eventstream-headless:9200",
                           "eventstream-2.eventstream-headless:9200"]


def render_notes(tmp_path, *args: str) -> str:
    """NOTES.txt as `helm install` would print it: helm template skips the notes,
    so a copy of the chart wraps them into a ConfigMap."""
    chart = tmp_path / "eventstream"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes_check.tpl").write_text(
        '{{- define "notes-check" -}}\n' + notes + "{{- end }}\n")
    (chart / "templates" / "notes-check.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-check\ndata:\n"
        "  notes: {{ include \"notes-check\" . | quote }}\n")
    result = run([tool("helm"), "template", "eventstream", str(chart), "--namespace", NAMESPACE,
                  "--kube-version", "1.33.0", "--show-only", "templates/notes-check.yaml", *args])
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["data"]["notes"]


def test_notes_tell_how_to_connect_and_check_health(tmp_path) -> None:
    notes = render_notes(tmp_path, "--set", "ingress.enabled=true")
    assert "eventstream.eventstream.svc:9200" in notes
    assert "grpcurl -plaintext localhost:9200 grpc.health.v1.Health/Check" in notes
    assert "curl -s localhost:8080/health" in notes
    assert "helm test eventstream -n eventstream" in notes
    assert "eventstream.example.com:80" in notes
    assert "no ServiceMonitor was created" in notes
    assert "a quorum of 2 must be up" in notes


@pytest.mark.parametrize("setting, message", [
    ("replicas=three", "/replicas"),
    ("replicas=0", "/replicas"),
    ("affinity.podAntiAffinity=maybe", "podAntiAffinity"),
    ("ports.grpc=70000", "/ports/grpc"),
    ("persistence.size=lots", "/persistence/size"),
    ("image.pullPolicy=Sometimes", "pullPolicy"),
    ("cluster.discovery=zookeeper", "discovery"),
    ("config.server.grpc_port=1", "grpc_port"),
    ("config.storage.data_dir=/tmp", "data_dir"),
    ("config.queues.batch_capacity=big", "batch_capacity"),
    ("config.log.level=loud", "level"),
    ("config.nosuchsection.key=1", "nosuchsection"),
    ("unknownTopLevel=1", "unknownTopLevel"),
    ("metrics.serviceMonitor.interval=often", "interval"),
])
def test_schema_rejects_bad_values(setting: str, message: str) -> None:
    assert message in helm_template_error(sets=(setting,))


@pytest.mark.parametrize("settings, message", [
    (("terminationGracePeriodSeconds=20",), "terminationGracePeriodSeconds"),
    (("autoscaling.minReplicas=5", "autoscaling.maxReplicas=4", "replicas=3"), "minReplicas"),
    (("autoscaling.minReplicas=2",), "minReplicas"),
])
def test_inconsistent_values_are_refused(settings: tuple[str, ...], message: str) -> None:
    assert message in helm_template_error(sets=settings)
