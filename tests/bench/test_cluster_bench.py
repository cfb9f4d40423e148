"""The NATS JetStream R3 side of the cluster benchmark, and the benchmark's quick run.

A three-node NATS cluster forms on loopback (every node routed to the two
others, one JetStream meta leader over three peers), a few hundred messages
go through `nats bench` into an R3 stream whose figures parse, and the stream
holds them on three replicas. The quick run of bench/cluster_bench.py prints
a figure for EventStream's three replicated nodes, its single node and NATS
R3 on every row (and R1 on the publish rows), with the ratio of three nodes to
one. No speed is asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cluster_tools import install_cluster_tools
from tests.support.nats_cluster import NatsCluster, NatsError, nats_bench, parse_bench, stream_info

ROOT = Path(__file__).resolve().parents[2]

ONE_CLIENT = ("\nNATS JetStream synchronous publisher stats: 795 msgs/sec ~ 78 KiB/sec ~ min: 677.14us"
              " ~ avg: 1,255.68us ~ max: 7,634.37us ~ P50: 1,105.82us ~ P90: 1,545.12us ~ P99: "
              "4,830.48us ~ P99.9: 7,634.37us\n")
TWO_CLIENTS = (
    "  [1] 8,073 msgs/sec ~ 788 KiB/sec ~ min: 6,522.62us ~ avg: 10,235.51us ~ P50: 11,832.98us ~ "
    "P99: 12,350.92us (250 msgs)\n"
    "  [2] 5,025 msgs/sec ~ 491 KiB/sec ~ min: 2,070.03us ~ P50: 4,944.13us ~ P99: 11,925.37us\n\n"
    " NATS JetStream fast batch publisher aggregated stats: 10,026 msgs/sec ~ 1.2 MiB/sec\n"
    " message rates min 5,025 | avg 6,549 | max 8,073 | stddev 1,524 msgs\n"
    " latencies per operation min 2,070.03us | avg 6,679.43us | P50 6,522.62us | P90 11,925.37us"
    " | P99 12,350.92us | P99.9: 12,350.92us\n")


def test_nats_bench_output_parses_with_one_client_and_with_several():
    one = parse_bench(ONE_CLIENT, 500)
    assert (one.messages_per_s, round(one.mib_per_s, 4), one.p50_us, one.p99_us) == (
        795, round(78 / 1024, 4), 1105.82, 4830.48)
    several = parse_bench(TWO_CLIENTS, 500)  # the aggregate, not a client's line
    assert (several.messages_per_s, several.mib_per_s, several.p50_us, several.p99_us) == (
        10026, 1.2, 6522.62, 12350.92)
    with pytest.raises(NatsError, match="no stats line"):
        parse_bench("nats: error: context deadline exceeded\n", 500)


def test_three_nats_nodes_form_a_cluster_and_an_r3_bench_of_a_few_hundred_messages_parses(tmp_path):
    install_cluster_tools()
    with NatsCluster(tmp_path, size=3) as cluster:
        for node in cluster.nodes:
            routes = cluster.monitor(node, "routez")
            assert routes["num_routes"] >= 2, routes
            meta = cluster.monitor(node, "jsz")["meta_cluster"]
            assert meta["cluster_size"] == 3 and meta["leader"] in {"n1", "n2", "n3"}
        figures = nats_bench(cluster.urls, "sync", messages=300, clients=2, replicas=3,
                             stream="r3-smoke", timeout=60, workdir=tmp_path)
        assert figures.messages == 300 and figures.messages_per_s > 0
        assert figures.p50_us is not None and figures.p99_us is not None
        info = stream_info(cluster.urls, "r3-smoke")
        assert info["config"]["num_replicas"] == 3
        assert info["state"]["messages"] == 300
        replicas = info["cluster"]["replicas"]
        assert len(replicas) == 2 and all(replica["current"] for replica in replicas)
        assert {info["cluster"]["leader"], *(r["name"] for r in replicas)} == {"n1", "n2", "n3"}
        processes = list(cluster._processes)
    assert all(process.poll() is not None for process in processes)  # every node stopped


@pytest.mark.timeout(300)
def test_quick_run_prints_the_three_node_column_beside_one_node_and_nats(
        bench_dependencies, tmp_path):
    install_cluster_tools()
    env = {**os.environ, "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cluster_bench.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, timeout=240, env=env, cwd=ROOT)
    out = completed.stdout.decode()
    print(out)  # the short run's figures, for the log
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    number, ratio = r"\s+([\d,]+)", r"\s+(\d+\.\d\d)"
    for workload in ("publish unary", "publish batched x100", "publish pipelined"):
        row = re.search(rf"^{re.escape(workload)}{number * 4}{ratio * 3}$", out, re.M)
        assert row, f"no figures for {workload!r}"
        three, one = (int(row.group(i).replace(",", "")) for i in (1, 2))
        assert float(row.group(5)) == pytest.approx(three / one, abs=0.006)
    fanout = re.search(rf"^fan-out to 10 subscribers \(deliveries/s\){number * 3}\s+—"
                       rf"{ratio}\s+—{ratio}$", out, re.M)  # no R1 fan-out
    assert fanout, "no fan-out figures"
    saved = json.loads((tmp_path / "cluster.json").read_text())["results"]
    three_nodes = saved["EventStream 3 nodes"]
    assert set(three_nodes["figures"]) == set(saved["EventStream 1 node"]["figures"])
    assert all(value > 0 for value in three_nodes["figures"].values())
    assert "3 nodes replicated" in three_nodes["setup"]
    for workload, roles in three_nodes["cpu_us_per_event"].items():  # every node's CPU per event
        assert next(iter(roles)) == "leader" and len(roles) == 3, workload
    assert "Server CPU per event published" in out
    assert set(saved["NATS JetStream R3"]["figures"]) == set(saved["EventStream 1 node"]["figures"])
    assert len(saved["NATS JetStream R1"]["figures"]) == 3  # the publish rows
    assert "EventStream 3 nodes" in (tmp_path / "cluster.md").read_text()
    assert (tmp_path / "cluster.png").read_bytes().startswith(b"\x89PNG")
