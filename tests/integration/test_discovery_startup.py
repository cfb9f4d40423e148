"""Peer discovery at start-up, through the real server process.

With ``cluster.enabled``, the node finds its peers before it starts. What
cannot work stops it with exit code 2 and one line per problem naming the key:
discovery settings out of bounds, a ``dns`` node id that is not a StatefulSet
pod name, names that still do not resolve when ``cluster.discovery_timeout_seconds``
is up, a ``static`` list without this node, ``kubernetes`` discovery outside a
pod without a kubeconfig. Found peers are logged and the node starts (live; ready
only once a majority elects a leader).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.dns import Responder
from tests.support.kube import wait_until
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(120)

SERVICE = "eventstream-headless.streams.svc.cluster.local"


def cluster(**keys: Any) -> dict[str, Any]:
    return {"cluster": {"enabled": True, "namespace": "streams", **keys}}


def refused(start_server: Callable[..., ServerProcess], config: dict[str, Any],
            env: dict[str, str] | None = None) -> list[str]:
    """The lines of a server that must refuse to start (exit 2)."""
    server = start_server(config, env=env, wait=False)
    code, output = server.wait_exit(60), server.log()
    assert code == 2, output
    return output.splitlines()


def test_bad_discovery_keys_are_config_errors(start_server: Callable[..., ServerProcess]) -> None:
    lines = refused(start_server, cluster(discovery="dns", dns_server="nonsense", replicas=0,
                                          voters=10, service="Not_A_Name", cluster_domain="-bad-"))
    errors = [line for line in lines if "config error" in line]
    for key, words in {"cluster.dns_server": "address:port of a DNS server",
                       "cluster.replicas": "between 1 and 1000",
                       "cluster.voters": "between 1 and 9",
                       "cluster.service": "a Kubernetes service name",
                       "cluster.cluster_domain": "a DNS domain"}.items():
        assert any(key in line and words in line for line in errors), (key, lines)
    assert len(errors) == 5, lines


def test_dns_needs_a_pod_name_with_an_ordinal(start_server: Callable[..., ServerProcess],
                                              responder: Responder) -> None:
    lines = refused(start_server, cluster(discovery="dns", node_id="laptop", dns_server=responder.address))
    assert any("discovery error: cluster.node_id: 'laptop' is not a StatefulSet pod name" in line
               for line in lines), lines


def test_dns_names_that_never_resolve_stop_start_up(start_server: Callable[..., ServerProcess],
                                                   responder: Responder) -> None:
    responder.set(f"eventstream-0.{SERVICE}", "127.0.0.1")  # only this node: no majority of 3
    lines = refused(start_server, cluster(
        discovery="dns", node_id="eventstream-0", replicas=3, dns_server=responder.address,
        discovery_timeout_seconds=1))
    [error] = [line for line in lines if "discovery error" in line]
    assert "cluster.discovery_timeout_seconds" in error
    assert f"eventstream-1.{SERVICE}: no such name" in error
    assert f"eventstream-2.{SERVICE}: no such name" in error


def test_static_peers_must_name_this_node(start_server: Callable[..., ServerProcess]) -> None:
    lines = refused(start_server, cluster(node_id="n9", peers=["n1=127.0.0.1:9100"]))
    assert any("cluster.node_id: 'n9' is not among cluster.peers (n1)" in line for line in lines), lines


def test_kubernetes_outside_a_pod_needs_a_kubeconfig(start_server: Callable[..., ServerProcess]) -> None:
    lines = refused(start_server, cluster(discovery="kubernetes", node_id="eventstream-0"),
                    env={"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""})
    assert any("discovery error: cluster.kubeconfig: empty, and this process is not in a "
               "Kubernetes pod" in line for line in lines), lines


def test_found_peers_are_logged_and_the_node_serves(start_server: Callable[..., ServerProcess],
                                                   responder: Responder) -> None:
    for ordinal in range(2):
        responder.set(f"eventstream-{ordinal}.{SERVICE}", f"192.0.2.{ordinal + 1}")
    server = start_server(cluster(discovery="dns", node_id="eventstream-1", replicas=3,
                                  dns_server=responder.address), wait=False)
    # Live, not ready: nothing answers at 192.0.2.x, so no leader is elected.
    # /health/live answers from the first moments (through discovery), so the
    # discovery's log line is awaited rather than expected at once.
    server.wait_healthy(60, path="/health/live")
    wait_until(lambda: "discovery (dns): 2 of 3 members resolve" in server.log(), 60,
               "the discovery's log line")
