"""Peer discovery's pure parts: StatefulSet naming, EndpointSlices to peers,
the static list's checks, the discovery keys' bounds and the package's names."""

from __future__ import annotations

import dataclasses

import pytest

import eventstream.server.cluster.discovery as discovery
from eventstream.server.cluster.discovery import (
    DiscoveryError,
    PodName,
    StaticDiscovery,
    initial_members,
    joins,
    parse_pod_name,
)
from eventstream.server.cluster.discovery.endpointslices import peers_of
from eventstream.server.cluster.discovery.statefulset import majority, member_names, pod_host
from eventstream.server.config.load import ConfigError, load_config

EXPORTS = {"DiscoveryError", "DnsDiscovery", "PeerDiscovery", "PeersChanged", "PodName",
           "StaticDiscovery", "find_peers", "initial_members", "joins", "parse_pod_name",
           "peer_discovery"}


def test_all_is_pinned_and_resolves():
    assert set(discovery.__all__) == EXPORTS
    for name in discovery.__all__:
        assert getattr(discovery, name) is not None


@pytest.mark.parametrize("name, parsed", [
    ("eventstream-0", PodName("eventstream", 0)),
    ("eventstream-12", PodName("eventstream", 12)),
    ("my-release-eventstream-2", PodName("my-release-eventstream", 2)),
    ("eventstream", None),
    ("eventstream-", None),
    ("eventstream-02", None),  # StatefulSets never write a leading zero
    ("eventstream-1.eventstream-headless", None),  # a host name, not a pod name
    ("EventStream-1", None),
    ("-1", None),
])
def test_pod_names(name, parsed):
    assert parse_pod_name(name) == parsed


def test_pod_host_and_members():
    cluster = load_config(env={}, overrides={"cluster.namespace": "streams"}).cluster
    assert (pod_host("eventstream-1", cluster)
            == "eventstream-1.eventstream-headless.streams.svc.cluster.local")
    bare = load_config(env={}, overrides={"cluster.cluster_domain": ""}).cluster
    assert pod_host("eventstream-1", bare) == "eventstream-1.eventstream-headless.default.svc"
    assert member_names("es", 3) == ["es-0", "es-1", "es-2"]
    assert [majority(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]


def piece(name, address_type, *endpoints):
    return {"metadata": {"name": name}, "addressType": address_type, "endpoints": list(endpoints)}


def pod(name, *addresses, hostname=None):
    endpoint = {"addresses": list(addresses), "targetRef": {"kind": "Pod", "name": name}}
    if hostname:
        endpoint["hostname"] = hostname
    return endpoint


def test_endpoint_slices_to_peers():
    slices = [
        piece("svc-v6", "IPv6", pod("es-0", "fd00::1"), pod("es-3", "fd00::3")),
        piece("svc-b", "IPv4", pod("es-1", "192.0.2.2")),
        piece("svc-a", "IPv4", pod("es-0", "192.0.2.1"), pod("es-1", "192.0.2.9"),
              {"addresses": ["192.0.2.7"], "hostname": "es-2"},  # no targetRef: its hostname
              {"addresses": ["192.0.2.8"]},  # neither: not a member
              pod("es-4")),  # no address yet
        piece("svc-fqdn", "FQDN", pod("es-5", "example.org")),
    ]
    assert peers_of(slices, 9100) == {
        "es-0": "192.0.2.1:9100",  # IPv4 slices first
        "es-1": "192.0.2.9:9100",  # slices in name order: svc-a before svc-b
        "es-2": "192.0.2.7:9100",
        "es-3": "[fd00::3]:9100",
    }
    assert peers_of([], 9100) == {}


def test_static_list_must_be_usable():
    def static(node_id, *peers):
        return StaticDiscovery(load_config(env={}, overrides={
            "cluster.node_id": node_id, "cluster.peers": list(peers)}).cluster)

    assert static("n1", "n1=127.0.0.1:1", "n2=127.0.0.1:2")._peers == {
        "n1": "127.0.0.1:1", "n2": "127.0.0.1:2"}
    with pytest.raises(DiscoveryError, match=r"cluster.peers: empty"):
        static("n1")
    with pytest.raises(DiscoveryError, match=r"cluster.peers: no entry for this node"):
        static("n3", "n1=127.0.0.1:1")
    with pytest.raises(DiscoveryError, match=r"cluster.peers: 'n1=nowhere' is not host:port"):
        static("n1", "n1=nowhere")


@pytest.mark.parametrize("key, value, words", [
    ("cluster.dns_server", "10.96.0.10", "address:port of a DNS server"),
    ("cluster.dns_server", "10.96.0.10:0", "address:port of a DNS server"),
    ("cluster.dns_server", "kube-dns:53", "address:port of a DNS server"),
    ("cluster.dns_server", "::1:53", "address:port of a DNS server"),
    ("cluster.cluster_domain", "cluster..local", "a DNS domain"),
    ("cluster.namespace", "Streams", "a Kubernetes namespace name"),
    ("cluster.service", "a_b", "a Kubernetes service name"),
    ("cluster.replicas", 0, "between 1 and 1000"),
    ("cluster.voters", 0, "between 1 and 9"),
    ("cluster.voters", 10, "between 1 and 9"),
    ("cluster.discovery_timeout_seconds", -1, "between 0 and 86400"),
    ("cluster.discovery", "consul", "one of static, dns, kubernetes"),
])
def test_discovery_keys_are_checked(key, value, words):
    with pytest.raises(ConfigError) as raised:
        load_config(env={}, overrides={key: value})
    [problem] = raised.value.problems
    assert key in problem and words in problem


@pytest.mark.parametrize("key, value", [
    ("cluster.dns_server", "127.0.0.1:5353"), ("cluster.dns_server", "[::1]:53"),
    ("cluster.cluster_domain", ""), ("cluster.cluster_domain", "corp.example"),
])
def test_good_discovery_values_pass(key, value):
    load_config(env={}, overrides={key: value})


def test_enough_means_this_node_and_a_majority_of_the_voters():
    from eventstream.server.cluster.discovery._base import Lookup, enough

    def found(*nodes):
        return Lookup(peers={node: "x:1" for node in nodes})

    assert enough(found("a"), "a", {"a"})
    assert not enough(found("a"), "a", {"a", "b", "c"})
    assert not enough(found("b", "c"), "a", {"a", "b", "c"}), "this node must be among them"
    assert enough(found("a", "b"), "a", {"a", "b", "c"})
    assert not enough(found("a", "b"), "a", {"a", "b", "c", "d"})
    assert enough(found("a", "b", "c"), "a", {"a", "b", "c", "d", "e"})
    # A joiner (not a voter) waits for a majority of the voters, not counting itself.
    assert not enough(found("d", "a"), "d", {"a", "b", "c"})
    assert enough(found("d", "a", "b"), "d", {"a", "b", "c"})


async def test_the_wait_with_no_time_left_tries_once_and_names_what_is_missing():
    from eventstream.server.cluster.discovery._base import Lookup, wait_for_members

    calls = []

    async def attempt():
        calls.append(1)
        return Lookup(peers={"a": "x:1"}, missing={"b.svc": "no such name", "c.svc": "timed out"})

    with pytest.raises(DiscoveryError) as raised:
        await wait_for_members(attempt, node_id="a", voters={"a", "b", "c"}, timeout=0, mode="dns")
    assert calls == [1]
    [problem] = raised.value.problems
    assert problem.startswith("cluster.discovery: dns: after 1 attempt in 0 s "
                              "(cluster.discovery_timeout_seconds) found 1 (a), need this node (a) "
                              "and at least 2 of 3 voters")
    assert problem.endswith("missing: b.svc: no such name; c.svc: timed out")


@pytest.mark.parametrize("mode", ["dns", "kubernetes"])
def test_the_initial_voters_are_the_ordinals_below_replicas_by_name(mode):
    cluster = load_config(env={}, overrides={
        "cluster.discovery": mode, "cluster.node_id": "es-1", "cluster.replicas": 3,
        "cluster.namespace": "streams", "cluster.port": 9100}).cluster
    assert initial_members(cluster) == {
        f"es-{n}": f"es-{n}.eventstream-headless.streams.svc.cluster.local:9100" for n in range(3)}
    assert not joins(cluster)


@pytest.mark.parametrize("voters, replicas, count", [(3, 1, 1), (3, 3, 3), (3, 5, 3), (5, 5, 5),
                                                     (1, 4, 1), (5, 3, 3)])
def test_the_initial_voters_are_the_fewer_of_voters_and_replicas(voters, replicas, count):
    cluster = load_config(env={}, overrides={
        "cluster.discovery": "dns", "cluster.node_id": "es-0", "cluster.voters": voters,
        "cluster.replicas": replicas}).cluster
    assert sorted(initial_members(cluster)) == [f"es-{n}" for n in range(count)]


def test_the_initial_voters_of_static_are_the_listed_peers():
    cluster = load_config(env={}, overrides={
        "cluster.node_id": "n1", "cluster.peers": ["n1=10.0.0.1:9100", "n2=10.0.0.2:9100"]}).cluster
    assert initial_members(cluster) == {"n1": "10.0.0.1:9100", "n2": "10.0.0.2:9100"}
    assert not joins(cluster)
    assert joins(dataclasses.replace(cluster, node_id="n3", join=True))


@pytest.mark.parametrize("mode", ["dns", "kubernetes"])
@pytest.mark.parametrize("node, replicas, voters, joiner", [
    ("es-2", 3, 3, False), ("es-3", 3, 3, True), ("es-3", 5, 3, True), ("es-3", 5, 4, False),
    ("es-1", 1, 3, True),
])
def test_a_pod_beyond_the_voters_joins(mode, node, replicas, voters, joiner):
    cluster = load_config(env={}, overrides={
        "cluster.discovery": mode, "cluster.node_id": node, "cluster.replicas": replicas,
        "cluster.voters": voters}).cluster
    assert joins(cluster) is joiner
    assert node not in initial_members(cluster) if joiner else node in initial_members(cluster)


def test_a_node_id_that_is_not_a_pod_name_is_refused():
    cluster = load_config(env={}, overrides={
        "cluster.discovery": "dns", "cluster.node_id": "laptop", "cluster.replicas": 3}).cluster
    words = r"cluster.node_id: 'laptop' is not a StatefulSet pod name"
    with pytest.raises(DiscoveryError, match=words):
        initial_members(cluster)
    with pytest.raises(DiscoveryError, match=words):
        joins(cluster)
