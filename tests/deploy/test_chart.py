"""The Helm chart: lint, schema-valid renders, the properties the deployment
spec needs, and one pod until replication exists."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from .rendering import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    ci_values,
    find,
    helm_template,
    helm_template_args,
    helm_template_error,
    kinds,
    run,
    tool,
    validation_errors,
)

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
        "ConfigMap", "StatefulSet", "Service", "Service", "ServiceAccount", "PodDisruptionBudget",
        "ServiceMonitor", "Pod"])
    assert {m["metadata"]["namespace"] for m in manifests} == {NAMESPACE}


def test_defaults_run_three_voters_of_one_cluster_with_dns_discovery() -> None:
    manifests = helm_template()
    spec = find(manifests, "StatefulSet")["spec"]
    assert spec["replicas"] == 3
    # The voters start together; rolling updates one pod at a time.
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"] == {"type": "RollingUpdate",
                                      "rollingUpdate": {"partition": 0, "maxUnavailable": 1}}
    assert "HorizontalPodAutoscaler" not in kinds(manifests)
    config = yaml.safe_load(find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"])
    assert config["cluster"]["enabled"] is True
    assert (config["cluster"]["discovery"], config["cluster"]["replicas"],
            config["cluster"]["voters"]) == ("dns", 3, 3)
    # A majority of the 3 voters must stay up: at most one voluntary eviction at a time.
    pdb = find(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2 and "maxUnavailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchExpressions"] == [
        {"key": "apps.kubernetes.io/pod-index", "operator": "In", "values": ["0", "1", "2"]}]


def test_read_replicas_beyond_the_voters_leave_the_quorum_and_its_budget_alone() -> None:
    manifests = helm_template(sets=("replicas=5", "cluster.discovery=static"))
    assert find(manifests, "StatefulSet")["spec"]["replicas"] == 5
    config = yaml.safe_load(find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"])
    # The config names the voters, not the pod count (scaling rolls no pod).
    assert (config["cluster"]["replicas"], config["cluster"]["voters"]) == (3, 3)
    # Static discovery lists the voters; the read replicas find them there and join.
    assert [peer.split(".")[0] for peer in config["cluster"]["peers"]] == [
        "eventstream-0", "eventstream-1", "eventstream-2"]
    pdb = find(manifests, "PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 2, "a majority of the voters, whatever the pod count"
    assert pdb["selector"]["matchExpressions"][0]["values"] == ["0", "1", "2"]


def test_readiness_means_the_member_can_serve_and_liveness_only_that_it_answers() -> None:
    probes = container(helm_template())
    assert probes["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert probes["startupProbe"]["httpGet"]["path"] == "/health/live"


@pytest.mark.parametrize("voters, majority", [(3, 2), (5, 3), (7, 4)])
def test_pdb_never_allows_losing_the_majority(voters: int, majority: int) -> None:
    pdb = find(helm_template(sets=(f"replicas={voters + 2}", f"cluster.voters={voters}",
                                   "podDisruptionBudget.maxUnavailable=9")), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == majority
    assert pdb["spec"]["selector"]["matchExpressions"][0]["values"] == [str(n) for n in range(voters)]
    careful = find(helm_template(sets=("replicas=5", "cluster.voters=5")), "PodDisruptionBudget")
    assert careful["spec"]["minAvailable"] == 4, "podDisruptionBudget.maxUnavailable: 1"


def test_pdb_is_refused_when_no_voter_can_be_lost_and_left_out_for_one_voter() -> None:
    error = helm_template_error(sets=("replicas=2", "cluster.voters=2", "cluster.allowEvenVoters=true"))
    assert "podDisruptionBudget with cluster.voters: 2: losing any voter loses the majority" in error
    assert "PodDisruptionBudget" not in kinds(helm_template(sets=("replicas=1", "cluster.voters=1")))
    assert "PodDisruptionBudget" not in kinds(helm_template(sets=("replicas=3", "cluster.voters=1")))


@pytest.mark.parametrize("settings, words", [
    (("independentNodes=true",), "independentNodes was removed: the pods now form one replicated cluster"),
    (("independentNodes=false",), "independentNodes was removed"),
    (("cluster.enabled=false",), "replicas: 3 needs cluster.enabled: true"),
    (("replicas=2",), "replicas: 2 is below cluster.voters: 3. The pods of ordinals 0 to 2 are the voters"),
    (("cluster.voters=4", "replicas=4"),
     "cluster.voters: 4 is even: a majority of it is 3, so it survives 1"),
    (("autoscaling.enabled=true", "autoscaling.minReplicas=2"),
     "autoscaling.minReplicas: 2 is below cluster.voters: 3. The autoscaler would remove voters"),
    (("autoscaling.enabled=true", "autoscaling.maxReplicas=2"),
     "autoscaling.maxReplicas: 2 is below autoscaling.minReplicas: 3"),
])
def test_what_a_raft_statefulset_cannot_do_is_refused_with_the_reason(settings: tuple[str, ...],
                                                                       words: str) -> None:
    assert words in helm_template_error(sets=settings)


def test_an_even_number_of_voters_renders_when_allowed() -> None:
    manifests = helm_template(sets=("replicas=4", "cluster.voters=4", "cluster.allowEvenVoters=true"))
    config = yaml.safe_load(find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"])
    assert config["cluster"]["voters"] == 4
    assert find(manifests, "PodDisruptionBudget")["spec"]["minAvailable"] == 3


def test_the_autoscaler_scales_read_replicas_and_owns_the_pod_count() -> None:
    manifests = helm_template(sets=("autoscaling.enabled=true", "autoscaling.minReplicas=3",
                                    "autoscaling.maxReplicas=8", "replicas=5"))
    statefulset = find(manifests, "StatefulSet")
    # Without a live StatefulSet (helm template, a first install) no count is
    # written: the autoscaler sets it, and an upgrade cannot reset it.
    assert "replicas" not in statefulset["spec"]
    hpa = find(manifests, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet",
                                     "name": "eventstream"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 8)
    assert [m["type"] for m in hpa["metrics"]] == ["Resource"]
    assert hpa["behavior"]["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]
    config = yaml.safe_load(find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"])
    assert (config["cluster"]["voters"], config["cluster"]["replicas"]) == (3, 3), "not the pod count"
    assert validation_errors(manifests) == []
    by_subscribers = find(helm_template(sets=("autoscaling.enabled=true",
                                              "autoscaling.targetSubscribersPerPod=200")),
                          "HorizontalPodAutoscaler")["spec"]["metrics"][1]["pods"]
    assert by_subscribers == {"metric": {"name": "eventstream_subscribers"},
                              "target": {"type": "AverageValue", "averageValue": "200"}}


def test_one_unreplicated_node_still_renders() -> None:
    manifests = helm_template(sets=("replicas=1", "cluster.enabled=false"))
    assert find(manifests, "StatefulSet")["spec"]["replicas"] == 1
    config = yaml.safe_load(find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"])
    assert config["cluster"]["enabled"] is False


def test_chart_text_describes_the_quorum() -> None:
    """Chart.yaml, NOTES, the PDB and the alerts say a majority must be up."""
    description = yaml.safe_load((CHART / "Chart.yaml").read_text())["description"]
    assert "replicated" in description and "three voters" in description
    for name in ("NOTES.txt", "pdb.yaml", "prometheusrule.yaml"):
        assert "majority" in (CHART / "templates" / name).read_text(), name
    for path in [CHART / "Chart.yaml", CHART / "values.yaml", *sorted((CHART / "templates").rglob("*.*"))]:
        assert "not available" not in path.read_text(), path


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


def test_statefulset_starts_pods_in_parallel_and_drains_fully() -> None:
    manifests = helm_template()
    spec = find(manifests, "StatefulSet")["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    pod = spec["template"]["spec"]
    config = find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"]
    server = yaml.safe_load(config)["server"]
    # The hand-over of a leader's role (up to 2 s) comes before the grace and the drain.
    drain = server["drain_grace_seconds"] + server["drain_timeout_seconds"] + 2
    assert pod["terminationGracePeriodSeconds"] > drain


def test_env_identifies_the_pod() -> None:
    env = {e["name"]: e for e in container(helm_template())["env"]}
    for name in ("POD_NAME", "NODE_ID"):
        assert env[name]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_probes_use_health_on_8080() -> None:
    server = container(helm_template())
    assert server["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": 8080}
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
    assert "storageClassName" not in claim["spec"], "empty: the cluster's default class"
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    (claim,) = find(helm_template(sets=("persistence.storageClass=gold", "persistence.size=7Ti")),
                    "StatefulSet")["spec"]["volumeClaimTemplates"]
    assert (claim["spec"]["storageClassName"], claim["spec"]["resources"]["requests"]["storage"]) == (
        "gold", "7Ti")


def test_no_persistence_uses_an_empty_dir() -> None:
    spec = find(helm_template(sets=("persistence.enabled=false",)), "StatefulSet")["spec"]
    assert "volumeClaimTemplates" not in spec
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["data"]


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
    assert spec["replicas"] == 3
    required = spec["template"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]
    assert required[0]["topologyKey"] == "kubernetes.io/hostname"
    assert required[0]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_discovery_rbac_reads_endpointslices() -> None:
    manifests = helm_template(sets=("cluster.discovery=kubernetes",))
    role = find(manifests, "Role")
    assert role["rules"] == [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                              "verbs": ["get", "list", "watch"]}]
    binding = find(manifests, "RoleBinding")
    assert binding["subjects"][0]["name"] == find(manifests, "ServiceAccount")["metadata"]["name"]
    statefulset = find(manifests, "StatefulSet")
    assert statefulset["spec"]["template"]["spec"]["serviceAccountName"] == binding["subjects"][0]["name"]
    for mode in ("static", "dns"):
        other = helm_template(sets=(f"cluster.discovery={mode}",))
        assert "Role" not in kinds(other) and "RoleBinding" not in kinds(other)


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
    assert "eventstream_events_rejected_total" in rules["EventStreamEventsDropped"]
    assert "eventstream_cluster_is_leader" in rules["EventStreamNoLeader"]
    assert "eventstream_cluster_elections_total" in rules["EventStreamFrequentElections"]
    assert "eventstream_cluster_replication_lag{" in rules["EventStreamReplicationLag"]
    assert re.search(r"eventstream_cluster_replication_lag_seconds\{.*\}\) > 30\b",
                     rules["EventStreamReplicationStalled"])
    assert set(rules) == {"EventStreamPublishLatencyHigh", "EventStreamLaneNearCapacity",
                          "EventStreamNodeDown", "EventStreamEventsDropped", "EventStreamNoLeader",
                          "EventStreamFrequentElections", "EventStreamReplicationLag",
                          "EventStreamReplicationStalled"}
    single = find(helm_template(sets=("metrics.prometheusRule.enabled=true", "replicas=1",
                                      "cluster.enabled=false")), "PrometheusRule")
    assert not [r for g in single["spec"]["groups"] for r in g["rules"] if "cluster" in r["expr"]]
    down = {r["alert"]: r for g in single["spec"]["groups"] for r in g["rules"]}["EventStreamNodeDown"]
    assert "single node" in down["annotations"]["description"]
    assert "read replica" in rules_described("EventStreamNodeDown")
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
                   "eventstream_queue_depth", "up{"):
        assert metric in exprs, metric
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))


def test_helm_test_hook_checks_grpc_health_of_every_pod() -> None:
    pod = find(helm_template(), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["python", "-c"] and "grpc_health.v1" in command[2]
    assert command[3:] == [
        "eventstream:9200", *(f"eventstream-{n}.eventstream-headless:9200" for n in range(3))]
    pod = find(helm_template(sets=("replicas=1", "cluster.enabled=false")), "Pod")
    assert pod["spec"]["containers"][0]["command"][3:] == [
        "eventstream:9200", "eventstream-0.eventstream-headless:9200"]


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
    assert "curl -s localhost:8080/health/ready" in notes
    assert "helm test eventstream -n eventstream" in notes
    assert "eventstream.example.com:80" in notes
    assert "no ServiceMonitor was created" in notes


def rules_described(alert: str) -> str:
    """The description of one alert of the default render."""
    rule = find(helm_template(sets=("metrics.prometheusRule.enabled=true",)), "PrometheusRule")
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}[alert][
        "annotations"]["description"]


def test_notes_describe_the_quorum(tmp_path) -> None:
    notes = " ".join(render_notes(tmp_path).split())
    assert "ONE replicated cluster of 3 voter(s): the pods eventstream-0 to eventstream-2" in notes
    assert "A majority of the voters (2 of 3) must be up to take writes" in notes
    assert "keeps serving with 1 voter(s) down" in notes and "read replica" not in notes
    five = " ".join(render_notes(tmp_path / "five", "--set", "replicas=5", "--set",
                                 "cluster.voters=5").split())
    assert "A majority of the voters (3 of 5) must be up" in five and "with 2 voter(s) down" in five
    readers = " ".join(render_notes(tmp_path / "readers", "--set", "replicas=5").split())
    assert "The pods eventstream-3 to eventstream-4 are read replicas" in readers
    assert "A majority of the voters (2 of 3)" in readers
    scaled = " ".join(render_notes(tmp_path / "scaled", "--set", "autoscaling.enabled=true").split())
    assert "The HorizontalPodAutoscaler runs 3 to 6 pods" in scaled
    assert "(eventstream-3 and up) are read replicas" in scaled
    single = " ".join(render_notes(tmp_path / "one", "--set", "replicas=1",
                                   "--set", "cluster.enabled=false").split())
    assert "ONE unreplicated node: the pod eventstream-0" in single and "majority" not in single


@pytest.mark.parametrize("setting, message", [
    ("replicas=three", "/replicas"),
    ("replicas=0", "/replicas"),
    ("cluster.voters=0", "/cluster/voters"),
    ("cluster.voters=11", "/cluster/voters"),
    ("autoscaling.minReplicas=0", "/autoscaling/minReplicas"),
    ("autoscaling.targetSubscribersPerPod=-1", "/autoscaling/targetSubscribersPerPod"),
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
    # Names and labels the API server would refuse (RFC 1123, label syntax).
    ("fullnameOverride=Event_Stream", "/fullnameOverride"),
    ("nameOverride=-es", "/nameOverride"),
    ("serviceAccount.name=Bad_Name", "/serviceAccount/name"),
    ("persistence.storageClass=Fast_SSD", "/persistence/storageClass"),
    ("priorityClassName=High Priority", "/priorityClassName"),
    ("ingress.className=Nginx_Class", "/ingress/className"),
    ("imagePullSecrets[0].name=Reg.Cred", "/imagePullSecrets/0/name"),
    ("podLabels.team=a_b-", "/podLabels/team"),
    ("podLabels.-team=a", "invalid propertyName '-team'"),
    ("metrics.serviceMonitor.labels.release=a b", "/metrics/serviceMonitor/labels/release"),
    # A size the upgrade check can compare with the installed claim template.
    ("persistence.size=1.5Gi", "/persistence/size"),
])
def test_schema_rejects_bad_values(setting: str, message: str) -> None:
    assert message in helm_template_error(sets=(setting,))


@pytest.mark.parametrize("settings, message", [
    (("terminationGracePeriodSeconds=20",), "terminationGracePeriodSeconds"),
    # 5 + 20 of the drain fit, not the 2 s of the hand-over before them.
    (("terminationGracePeriodSeconds=27",), "leadership hand-over"),
])
def test_inconsistent_values_are_refused(settings: tuple[str, ...], message: str) -> None:
    assert message in helm_template_error(sets=settings)


@pytest.mark.parametrize("settings, message", [
    # The API server refuses duplicate container and Service ports.
    (("ports.grpc=8080",), "ports.grpc and ports.metrics are both 8080"),
    (("ports.cluster=9000",), "ports.tcp and ports.cluster are both 9000"),
    # It refuses a selector that does not match the pod template's labels.
    (("podLabels.app\\.kubernetes\\.io/instance=other",),
     "podLabels.app.kubernetes.io/instance is set by the chart itself"),
    (("podLabels.app\\.kubernetes\\.io/name=other",),
     "podLabels.app.kubernetes.io/name is set by the chart itself"),
])
def test_values_the_api_server_would_reject_are_refused(settings: tuple[str, ...],
                                                         message: str) -> None:
    assert message in helm_template_error(sets=settings)


def test_udp_may_share_a_number_with_a_tcp_port() -> None:
    manifests = helm_template(sets=("ports.udp=9000",))
    assert validation_errors(manifests) == []
    ports = {(p["containerPort"], p["protocol"]) for p in container(manifests)["ports"]}
    assert {(9000, "TCP"), (9000, "UDP")} <= ports


def test_chart_declares_the_kubernetes_versions_it_supports() -> None:
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"] == ">=1.29.0-0"
    result = run(helm_template_args(kube_version="1.28.9"))
    assert result.returncode != 0
    assert "chart requires kubeVersion: >=1.29.0-0" in result.stderr


def test_defaults_fit_a_small_cluster() -> None:
    """Two nodes of 2 CPUs and a few GiB (kind, minikube): modest requests, the
    cluster's default StorageClass, and an anti-affinity that prefers spreading
    but never leaves a pod unschedulable. Production asks for hard spreading."""
    manifests = helm_template()
    pod = find(manifests, "StatefulSet")["spec"]["template"]["spec"]
    requests = container(manifests)["resources"]["requests"]
    assert (requests["cpu"], requests["memory"]) == ("500m", "1Gi")
    assert list(pod["affinity"]["podAntiAffinity"]) == ["preferredDuringSchedulingIgnoredDuringExecution"]
    (claim,) = find(manifests, "StatefulSet")["spec"]["volumeClaimTemplates"]
    assert "storageClassName" not in claim["spec"]


def test_helm_test_pod_is_not_a_member() -> None:
    """The test pod once carried the selector labels: the disruption budget counted
    it and it took an anti-affinity slot from a member."""
    manifests = helm_template(sets=("affinity.podAntiAffinity=hard",))
    labels = find(manifests, "Pod")["metadata"]["labels"]
    statefulset = find(manifests, "StatefulSet")
    selectors = [statefulset["spec"]["selector"]["matchLabels"],
                 find(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                 *(s["spec"]["selector"] for s in manifests if s["kind"] == "Service"),
                 *(t["labelSelector"]["matchLabels"] for t in statefulset["spec"]["template"]["spec"][
                     "affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"])]
    assert [s for s in selectors if all(labels.get(k) == v for k, v in s.items())] == []
    assert labels["app.kubernetes.io/instance"] == "eventstream"


SECRETS_DIR = "/var/run/secrets/eventstream"
TLS_SETTINGS = ("tls.secretName=es-tls", "tls.peerSecretName=es-peer-tls",
                "tls.tokensSecretName=es-tokens", "config.tls.client_auth=require")
CERT_MANAGER = ("tls.certManager.enabled=true", "tls.certManager.issuerRef.name=events-ca",
                "tls.certManager.issuerRef.kind=ClusterIssuer")
HEADLESS_HOST = f"eventstream-headless.{NAMESPACE}.svc.cluster.local"


def test_tls_secrets_are_mounted_whole_and_set_in_the_config() -> None:
    manifests = helm_template(sets=TLS_SETTINGS)
    assert validation_errors(manifests) == []
    pod = find(manifests, "StatefulSet")["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["name"]: mount for mount in container(manifests)["volumeMounts"]}
    for name, secret in (("tls", "es-tls"), ("peer-tls", "es-peer-tls"), ("auth", "es-tokens")):
        # The whole Secret, no items or subPath: a renewed Secret reaches the files.
        assert volumes[name]["secret"] == {"secretName": secret}
        assert mounts[name] == {"name": name, "mountPath": f"{SECRETS_DIR}/{name}", "readOnly": True}
    config = yaml.safe_load(find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"])
    assert config["tls"] == {"enabled": True, "client_auth": "require",
                             "cert_file": f"{SECRETS_DIR}/tls/tls.crt",
                             "key_file": f"{SECRETS_DIR}/tls/tls.key",
                             "client_ca_file": f"{SECRETS_DIR}/tls/ca.crt"}
    assert config["cluster"]["tls"] == {"cert_file": f"{SECRETS_DIR}/peer-tls/tls.crt",
                                        "key_file": f"{SECRETS_DIR}/peer-tls/tls.key",
                                        "ca_file": f"{SECRETS_DIR}/peer-tls/ca.crt",
                                        "server_name": HEADLESS_HOST}
    assert config["auth"] == {"tokens_file": f"{SECRETS_DIR}/auth/tokens"}
    # The helm test speaks TLS too, trusting the Secret's CA.
    test_pod = find(manifests, "Pod")["spec"]
    assert test_pod["volumes"] == [{"name": "tls", "secret": {"secretName": "es-tls"}}]
    env = {e["name"]: e["value"] for e in test_pod["containers"][0]["env"]}
    assert env["TLS_CA_FILE"] == f"{SECRETS_DIR}/tls/ca.crt"


def test_without_tls_values_nothing_is_mounted_or_set() -> None:
    manifests = helm_template()
    pod = find(manifests, "StatefulSet")["spec"]["template"]["spec"]
    assert {volume["name"] for volume in pod["volumes"]} == {"config", "tmp"}
    config = yaml.safe_load(find(manifests, "ConfigMap", "eventstream-config")["data"]["config.yaml"])
    assert "tls" not in config and "tls" not in config["cluster"] and "auth" not in config
    assert "Certificate" not in kinds(manifests)


def test_cert_manager_certificates_name_the_services_and_write_the_mounted_secrets() -> None:
    manifests = helm_template(sets=(*TLS_SETTINGS, *CERT_MANAGER,
                                    "tls.certManager.extraDnsNames[0]=events.example.com"))
    assert validation_errors(manifests) == []
    served = find(manifests, "Certificate", "eventstream-tls")["spec"]
    members = find(manifests, "Certificate", "eventstream-peer-tls")["spec"]
    assert served["secretName"] == "es-tls" and members["secretName"] == "es-peer-tls"
    assert {"eventstream", f"eventstream.{NAMESPACE}.svc",
            f"eventstream.{NAMESPACE}.svc.cluster.local", "events.example.com"} <= \
        set(served["dnsNames"])
    assert "client auth" not in served["usages"]
    # Every member checks this name (cluster.tls.server_name) and serves and calls with it.
    assert members["dnsNames"] == [HEADLESS_HOST, f"*.{HEADLESS_HOST}"]
    assert {"server auth", "client auth"} <= set(members["usages"])
    for spec in (served, members):
        assert spec["issuerRef"] == {"name": "events-ca", "kind": "ClusterIssuer",
                                     "group": "cert-manager.io"}
    own = helm_template(sets=(*TLS_SETTINGS, *CERT_MANAGER,
                              "tls.certManager.peerIssuerRef.name=members-ca"))
    assert find(own, "Certificate", "eventstream-peer-tls")["spec"]["issuerRef"]["name"] == \
        "members-ca"


@pytest.mark.parametrize("settings, message", [
    (("tls.certManager.enabled=true", "tls.secretName=es-tls"),
     "tls.certManager.enabled needs tls.certManager.issuerRef.name"),
    (CERT_MANAGER, "set tls.secretName"),
    (("tls.certManager.duration=90 days",), "/tls/certManager/duration"),
    (("tls.secretName=Bad_Secret",), "/tls/secretName"),
])
def test_tls_values_that_cannot_work_are_refused(settings: tuple[str, ...], message: str) -> None:
    assert message in helm_template_error(sets=settings)
