"""Every metric the chart's alerts and dashboard query is one the real server
exports, so no alert or panel waits on a series that never comes (the chart
once alerted on a leader and a replication lag no version exported).

The server is the leader of a real three-member cluster, the only member that
exports every series the cluster alerts query (the replication lag per peer)."""

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


def queried_metrics() -> dict[str, str]:
    """Metric name -> where the chart queries it (alert name or dashboard panel)."""
    manifests = helm_template(sets=("metrics.prometheusRule.enabled=true",))
    rule = find(manifests, "PrometheusRule")
    where = {name: rule_["alert"] for group in rule["spec"]["groups"] for rule_ in group["rules"]
             for name in METRIC.findall(rule_["expr"])}
    dashboard = json.loads((CHART / "dashboards" / "eventstream.json").read_text())
    where.update({name: f"panel {panel['title']!r}" for panel in dashboard["panels"]
                  for target in panel.get("targets", []) for name in METRIC.findall(target["expr"])})
    return where


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


def scrape(server: ServerProcess) -> str:
    """The leader's /metrics once the delivery was counted."""
    # The server counts a delivery once its write completes, which can be
    # after the subscriber already holds the event: wait for the count.
    assert wait_for_metric(server, "eventstream_events_delivered_total", 1) >= 1
    _, body = http_get(f"{server.http}/metrics")
    return body.decode()
