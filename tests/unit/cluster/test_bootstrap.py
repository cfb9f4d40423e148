"""The cluster id every initial voter derives at bootstrap (pure)."""

from __future__ import annotations

from eventstream.server.cluster.bootstrap import derive_cluster_id
from eventstream.server.config.load import RULES

DIRECT = {"n1": "10.0.0.1:9100", "n2": "10.0.0.2:9100", "n3": "10.0.0.3:9100"}
# n1's view when it reaches n2 and n3 through proxies on its own host.
PROXIED = {"n1": "10.0.0.1:9100", "n2": "127.0.0.1:7002", "n3": "127.0.0.1:7003"}


def test_without_a_name_the_id_comes_from_the_whole_peer_map() -> None:
    assert derive_cluster_id(DIRECT) == derive_cluster_id(dict(reversed(DIRECT.items())))
    assert derive_cluster_id(DIRECT) != derive_cluster_id(PROXIED)


def test_with_a_name_only_the_node_ids_count_not_their_addresses() -> None:
    assert derive_cluster_id(DIRECT, "orders") == derive_cluster_id(PROXIED, "orders")
    assert derive_cluster_id(DIRECT, "orders") != derive_cluster_id(DIRECT, "billing")
    assert derive_cluster_id(DIRECT, "orders") != derive_cluster_id({**DIRECT, "n4": "x:1"}, "orders")
    assert derive_cluster_id(DIRECT, "orders") != derive_cluster_id(DIRECT)


def test_the_name_is_a_dns_label_or_empty() -> None:
    check = RULES["cluster.name"][0]
    assert check("") and check("orders") and check("eu-1")
    assert not check("Orders") and not check("a b") and not check("-x")
