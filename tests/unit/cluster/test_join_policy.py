"""Who may ask for membership over the cluster port, and for what (``cluster.joining.JoinPolicy``)."""

from __future__ import annotations

import pytest

from eventstream.server.cluster.joining import JoinPolicy
from eventstream.server.cluster.transport import JoinIntent, JoinRefused
from eventstream.server.config.load import load_config

VOTERS = {"es-0", "es-1", "es-2"}


def policy(discovery: str, tls: bool = False, **overrides: object) -> JoinPolicy:
    settings = {"cluster.discovery": discovery, "cluster.node_id": "es-0", "cluster.replicas": 5,
                "cluster.voters": 3, **overrides}
    if discovery == "static":
        settings["cluster.peers"] = [f"{n}=10.0.0.{i}:9100" for i, n in enumerate(sorted(VOTERS))]
    return JoinPolicy(load_config(env={}, overrides=settings).cluster, VOTERS, tls)


@pytest.mark.parametrize("discovery", ["dns", "kubernetes"])
def test_pods_of_the_statefulset_may_ask(discovery):
    rules = policy(discovery)
    assert rules.admit("es-3") == "" and rules.admit("es-17") == "" and rules.admit("es-1") == ""
    assert "not a pod of StatefulSet 'es'" in rules.admit("laptop")
    assert "not a pod of StatefulSet 'es'" in rules.admit("other-3")
    assert rules.is_initial_voter("es-2") and not rules.is_initial_voter("es-3")
    assert rules.addresses_move is (discovery == "kubernetes")


@pytest.mark.parametrize("discovery", ["dns", "static"])
def test_initial_voters_rejoin_and_the_others_join(discovery):
    rules = policy(discovery, tls=True)
    rules.check("es-1", JoinIntent.REJOIN)
    rules.check("es-3", JoinIntent.JOIN)
    rules.check("es-3", JoinIntent.LEAVE)
    with pytest.raises(JoinRefused, match="'es-1' is an initial voter"):
        rules.check("es-1", JoinIntent.JOIN)
    with pytest.raises(JoinRefused, match="'es-3' is not an initial voter"):
        rules.check("es-3", JoinIntent.REJOIN)


def test_static_admits_other_nodes_only_with_peer_tls():
    assert policy("static").admit("es-1") == ""
    assert "add it with ClusterService.AddMember" in policy("static").admit("n9")
    assert policy("static", tls=True).admit("n9") == ""
    assert not policy("static").addresses_move
