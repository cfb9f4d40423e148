"""Every metric the chart's alerts and dashboard query is one the real server
exports, so no alert or panel waits on a series that never comes (the chart
once alerted on a leader and a replication lag no version exported).

The server is the leader of a real three-member cluster, the only member that
exports every series the cluster alerts query (the replication lag per peer).
The labels the queries group by or name in a legend (``peer``, ``queue``,
``transport``...) must be on those series too, or the alert fires per nothing
and the panel's legend stays empty."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import grpc

from eventstream.v1 import publish_pb2, subscribe_pb2
from tests.support.client import Stubs, collect, event, publish_request, subscribe_request
from tests.support.cluster import Cluster
from tests.support.server import ServerProcess, http_get, wait_for_metric

from .rendering import CHART, find, helm_template

METRIC = re.compile(r"\b(eventstream_\w+)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
SCRAPE_LABELS = {"namespace", "pod", "job", "instance", "le"}
"""Labels Prometheus adds when it scrapes (and ``le``, every histogram bucket's)."""


def queries() -> list[tuple[str, str, str]]:
    """(where, expression, legend) of every alert and dashboard query of the chart."""
    manifests = helm_template(sets=("metrics.prometheusRule.enabled=true",))
    rule = find(manifests, "PrometheusRule")
    found = [(rule_["alert"], rule_["expr"], "") for group in rule["spec"]["groups"]
             for rule_ in group["rules"]]
    dashboard = json.loads((CHART / "dashboards" / "eventstream.json").read_text())
    found += [(f"panel {panel['title']!r}", target["expr"], target.get("legendFormat", ""))
              for panel in dashboard["panels"] for target in panel.get("targets", [])]
    return found


def queried_metrics() -> dict[str, str]:
    """Metric name -> where the chart queries it (alert name or dashboard panel)."""
    return {name: where for where, expr, _ in queries() for name in METRIC.findall(expr)}


def exported_labels(body: str) -> dict[str, set[str]]:
    """Metric name -> the label names its series carry on a /metrics page."""
    labels: dict[str, set[str]] = {}
    for name, inner in re.findall(r"^(eventstream_\w+?)(?:\{(.*)\})? \S+$", body, re.M):
        labels.setdefault(name, set()).update(re.findall(r'(\w+)="', inner))
    return labels


def missing_labels(found: list[tuple[str, str, str]], exported: dict[str, set[str]]) -> list[str]:
    """Each label a query groups or names its legend by that one of its metrics lacks."""
    problems = []
    for where, expr, legend in found:
        wanted = {label.strip() for group in GROUPING.findall(expr)
                  for label in group.split(",") if label.strip()}
        wanted |= set(LEGEND.findall(legend))
        for name in set(METRIC.findall(expr)):
            lacking = wanted - SCRAPE_LABELS - exported.get(name, set())
            problems += [f"{where}: {name} has no label {label}" for label in sorted(lacking)]
    return problems


def test_the_label_check_finds_a_label_the_server_does_not_export() -> None:
    exported = {"eventstream_cluster_replication_lag": {"peer", "node"}}
    assert missing_labels([("alert", "max by (pod, peer) (eventstream_cluster_replication_lag)",
                            "{{peer}}")], exported) == []
    assert missing_labels([("alert", "max by (member) (eventstream_cluster_replication_lag)",
                            "{{lag}}")], exported) == [
        "alert: eventstream_cluster_replication_lag has no label lag",
        "alert: eventstream_cluster_replication_lag has no label member"]


async def exercise(server: ServerProcess) -> None:
    """Publish, reject and deliver an event, so every counter has counted once."""
    stubs = Stubs(server.target)
    try:
        await stubs.publish.Publish(publish_request("monitoring/a", b"x"))
        try:
            await stubs.publish.Publish(publish_pb2.PublishRequest(event=event("", b"x")))
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        call = stubs.subscribe.Subscribe(subscribe_request(
            "monitoring/#", start_from=subscribe_pb2.START_FROM_EARLIEST))
        async with asyncio.timeout(30):
            assert len(await collect(call, 1)) == 1
        call.cancel()
    finally:
        await stubs.close()


async def test_alerts_and_dashboard_query_only_exported_metrics(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, 3).start()
    try:
        server = cluster.nodes[cluster.wait_leader()]
        await exercise(server)
        body = scrape(server)
    finally:
        cluster.stop()
    exported = set(re.findall(r"^(eventstream_\w+?)(?:\{| )", body, re.M))
    queried = queried_metrics()
    assert len(queried) >= 10
    assert {"eventstream_cluster_is_leader", "eventstream_cluster_replication_lag",
            "eventstream_cluster_replication_lag_seconds"} <= set(queried)
    missing = {name: where for name, where in queried.items() if name not in exported}
    assert missing == {}
    # ...and every label they group by or print is one those series carry.
    assert missing_labels(queries(), exported_labels(body)) == []


def scrape(server: ServerProcess) -> str:
    """The leader's /metrics once the delivery was counted."""
    # The server counts a delivery once its write completes, which can be
    # after the subscriber already holds the event: wait for the count.
    assert wait_for_metric(server, "eventstream_events_delivered_total", 1) >= 1
    _, body = http_get(f"{server.http}/metrics")
    return body.decode()
