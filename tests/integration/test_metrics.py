"""What /metrics exports, read from a live server.

- Every metric name the docs, the Helm chart's alerts and dashboard and the
  kustomize monitoring component mention exists (after a little traffic of
  every kind), so a renamed metric cannot leave them pointing at nothing.
- Counters whose label values are known in advance are there from the start,
  at zero; exactly the documented ones appear only at their first occurrence.
- Running totals are counters (``_total``): every gauge is a level or a
  position from a reviewed list. UDP-only metrics carry no ``transport`` label.
- ``eventstream_group_lag`` counts only the events the group's patterns match.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventstream.client import Client, Event, InvalidArgumentError
from tests.support.server import http_get, metric

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [
    *sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", ROOT / "deploy" / "README.md",
    *sorted((ROOT / "deploy" / "helm" / "eventstream" / "templates").rglob("*.yaml")),
    *sorted((ROOT / "deploy" / "helm" / "eventstream" / "dashboards").glob("*.json")),
    *sorted((ROOT / "deploy" / "kustomize" / "components" / "monitoring").glob("*.yaml")),
]
NOT_EXPORTED_YET = {"eventstream_cluster_replication_lag", "eventstream_cluster_replication_lag_seconds",
                    "eventstream_cluster_peer_refused_total"}
"""Series of a replicated cluster only, absent on a single node: the lag per peer (on the leader)
and the peer transport's refusals (tests/integration/test_cluster_replication.py and
tests/integration/test_peer_port.py)."""

SECURITY_ONLY = {"eventstream_auth_failures_total", "eventstream_auth_denied_total",
                 "eventstream_quota_exceeded_total", "eventstream_tls_reloads_total",
                 "eventstream_auth_reloads_total"}
"""Named by docs/security.md; counted only with TLS or authentication on, which this server
(the defaults) has not. Read by tests/integration/test_tls.py, test_auth.py, test_permissions.py
and test_quotas.py."""

FIRST_OCCURRENCE = {
    "eventstream_events_rejected_total", "eventstream_rpc_errors_total",
    "eventstream_ingest_connections_closed_total", "eventstream_ingest_datagrams_dropped_total",
    "eventstream_publish_latency_seconds",
    "eventstream_group_acks_total", "eventstream_group_redeliveries_total",
    "eventstream_group_dead_lettered_total", "eventstream_group_lag",
    "eventstream_group_members", "eventstream_group_acks_ignored_total",
    "eventstream_http_connections_closed_total", "eventstream_group_committed",
}
"""Labelled by a reason, an error code or a group, or histograms: absent until used."""

GAUGES = {
    "eventstream_queue_depth", "eventstream_queue_capacity", "eventstream_log_retained_bytes",
    "eventstream_log_end_offset", "eventstream_storage_bytes", "eventstream_storage_segments",
    "eventstream_dedup_ids", "eventstream_numa_nodes", "eventstream_gc_frozen",
    "eventstream_raft_term", "eventstream_raft_commit_index", "eventstream_raft_applied_index",
    "eventstream_uptime_seconds", "eventstream_subscribers", "eventstream_ingest_connections",
    "eventstream_ingest_udp_queue_depth", "eventstream_ingest_udp_queue_used_bytes",
    "eventstream_ingest_udp_queue_capacity_bytes", "eventstream_group_lag",
    "eventstream_group_members", "eventstream_groups", "eventstream_ingest_buffered_bytes",
    "eventstream_group_committed",
    "eventstream_storage_failed", "eventstream_cluster_is_leader", "eventstream_cluster_term",
    "eventstream_cluster_commit_index", "eventstream_cluster_applied_index",
    "eventstream_cluster_peers_connected", "eventstream_cluster_replication_lag",
    "eventstream_cluster_replication_lag_seconds", "eventstream_cluster_members",
    "eventstream_cluster_is_learner",
    "eventstream_queue_waiting_peak",
}
"""Levels that go up and down, and positions; anything else that grows is a counter."""


def documented_names() -> dict[str, set[str]]:
    """Every eventstream_* metric name in the documents -> the files naming it.

    Brace lists are expanded (``eventstream_queue_{pushes,pops}_total``);
    prefixes written with ``*`` and the histogram suffixes are left out or folded.
    """
    names: dict[str, set[str]] = {}
    pattern = re.compile(r"eventstream_[a-z0-9_]*(?:\{[a-z0-9_,]+\}[a-z0-9_]*)?(?![a-z0-9_*])")
    for path in DOCUMENTS:
        for found in pattern.findall(path.read_text()):
            for name in expand(found):
                name = re.sub(r"_(bucket|count|sum)$", "", name)
                if not name.endswith("_"):
                    names.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return names


def expand(text: str) -> list[str]:
    match = re.search(r"\{([a-z0-9_,]+)\}", text)
    if match is None or match.end() == len(text):
        return [re.sub(r"\{.*", "", text)]  # {labels} after a name are not part of it
    head, tail = text[:match.start()], text[match.end():]
    return [f"{head}{part}{tail}" for part in match.group(1).split(",")]


def families(server) -> dict[str, object]:
    body = http_get(f"{server.http}/metrics", timeout=10.0)[1].decode()
    return {family.name: family for family in text_string_to_metric_families(body)
            if family.name.startswith("eventstream_")}


def exported_names(found: dict[str, object]) -> set[str]:
    """Names as they are written in queries: counters with _total."""
    return {name + "_total" if family.type == "counter" else name
            for name, family in found.items()}


def frame(topic: bytes, payload: bytes, priority: int = 2) -> bytes:
    body = struct.pack(">BH", priority, len(topic)) + topic + payload
    return struct.pack(">I", len(body)) + body


def some_of_everything(server) -> None:
    """Traffic that makes every first-occurrence series appear."""
    with Client(server.target) as client:
        client.publish(Event("metrics/a", b"x"))
        with pytest.raises(InvalidArgumentError):
            client.publish(Event("metrics/*", b"x"))
        with client.consume("metrics-group", "metrics/#", start="earliest") as consumer:
            next(iter(consumer)).ack()
    with socket.create_connection(("127.0.0.1", server.tcp_port)) as tcp:
        tcp.sendall(frame(b"metrics/tcp", b"x"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"\x00\x00\x00\x01", ("127.0.0.1", server.udp_port))  # truncated frame
    with socket.create_connection(("127.0.0.1", server.http_port)) as http:
        http.sendall(b"GET /status HTTP/1.1\r\n")   # a head that never ends: HEADER_TIMEOUT
        http.settimeout(30)
        while http.recv(4096):
            pass
    deadline = time.monotonic() + 30
    while not exported_names(families(server)) >= FIRST_OCCURRENCE:
        assert time.monotonic() < deadline, FIRST_OCCURRENCE - exported_names(families(server))
        time.sleep(0.05)


def test_every_metric_the_docs_and_the_chart_name_is_exported(server):
    documented = documented_names()
    assert len(documented) > 30, documented  # the extraction itself works
    some_of_everything(server)
    exported = exported_names(families(server))
    missing = {name: sorted(files) for name, files in documented.items()
               if name not in exported and name not in NOT_EXPORTED_YET | SECURITY_ONLY}
    assert missing == {}


def test_counters_with_known_labels_start_at_zero_and_only_the_rest_appear_later(server):
    found = families(server)
    exported = exported_names(found)
    documented = set(documented_names()) - NOT_EXPORTED_YET - SECURITY_ONLY
    assert documented - exported == FIRST_OCCURRENCE
    for name, family in found.items():
        if name in ("eventstream_storage_fsyncs", "eventstream_cluster_elections"):
            continue  # the start elects the single node and syncs its first entry
        if family.type == "counter":
            assert family.samples, name
            assert all(sample.value == 0 for sample in family.samples
                       if sample.name.endswith("_total")), name
    transports = {sample.labels["transport"]
                  for sample in found["eventstream_events_committed"].samples}
    assert transports == {"grpc", "tcp", "udp"}


def test_running_totals_are_counters_and_udp_metrics_have_no_transport_label(server):
    some_of_everything(server)
    found = families(server)
    gauges = {name for name, family in found.items() if family.type == "gauge"}
    assert gauges <= GAUGES, gauges - GAUGES
    for name, family in found.items():
        if "_udp_" in name or "datagrams" in name:
            assert all("transport" not in sample.labels for sample in family.samples), name


def test_the_group_lag_counts_only_the_events_its_patterns_match(server):
    with Client(server.target) as client:
        with client.consume("billing", "orders/#", start="latest"):
            deadline = time.monotonic() + 30
            while metric(server, "eventstream_group_members", group="billing") < 1:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        # The member left: nothing reads the group's partitions any more.
        client.publish_batch([Event(f"sensors/{n % 3}", b"x", key=str(n)) for n in range(40)])
        client.publish_batch([Event("orders/created", b"x", key=str(n)) for n in range(5)])
    deadline = time.monotonic() + 30
    while (lag := metric(server, "eventstream_group_lag", group="billing")) != 5:
        assert time.monotonic() < deadline, f"lag {lag}: events of other topics counted"
        time.sleep(0.05)

