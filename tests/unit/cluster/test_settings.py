"""The cluster section becomes the core's settings, the tick and the peer map."""

from __future__ import annotations

import dataclasses

import pytest

from eventstream.server.cluster.settings import (
    cluster_problems,
    parse_peers,
    raft_config,
    tick_seconds,
    transport_options,
)
from eventstream.server.cluster.transport import GrpcTransport
from eventstream.server.config.load import ConfigError, load_config


def test_defaults_give_a_failover_well_under_two_seconds():
    cluster = load_config(env={"NODE_ID": "n1"}).cluster
    config = raft_config(cluster)
    # The longest election timeout is 2 * election_ticks ticks.
    assert 2 * config.election_ticks * tick_seconds(cluster) <= 1.0
    assert config.heartbeat_ticks < config.election_ticks
    assert (config.node_id, config.max_msg_bytes, config.max_inflight_msgs) == ("n1", 4 << 20, 256)


def test_the_keys_are_read_and_checked():
    config = load_config(env={}, overrides={"cluster.tick_ms": "100", "cluster.election_ticks": "15",
                                             "cluster.heartbeat_ticks": "2", "cluster.node_id": "a"})
    assert tick_seconds(config.cluster) == 0.1
    assert raft_config(config.cluster).election_ticks == 15
    with pytest.raises(ConfigError) as refused:
        load_config(env={}, overrides={"cluster.heartbeat_ticks": "10", "cluster.tick_ms": "0"})
    assert any("cluster.heartbeat_ticks: must be below cluster.election_ticks" in p
               for p in refused.value.problems)
    assert any("cluster.tick_ms" in p for p in refused.value.problems)


def test_peers_by_pod_name_or_explicit_id():
    assert parse_peers(["eventstream-0.eventstream-headless.ns.svc.cluster.local:9100",
                        "n2=127.0.0.1:9101", " n3 = 10.0.0.3:9100".replace(" ", "")]) == {
        "eventstream-0": "eventstream-0.eventstream-headless.ns.svc.cluster.local:9100",
        "n2": "127.0.0.1:9101", "n3": "10.0.0.3:9100"}


def test_bad_peers_are_all_named():
    with pytest.raises(ValueError) as refused:
        parse_peers(["nohost", "a=b:0", "x=h:1", "x=h:2", "=h:3"])
    lines = str(refused.value).splitlines()
    assert len(lines) == 4
    assert "'nohost'" in lines[0] and "'a=b:0'" in lines[1] and "'x=h:2'" in lines[2]


def test_the_transport_takes_the_peer_link_keys():
    config = load_config(env={}, overrides={"cluster.send_queue_messages": "64",
                                             "cluster.max_batch_bytes": "65536"})
    options = transport_options(config.cluster)
    assert options == {"send_queue_messages": 64, "max_batch_bytes": 65536, "max_message_bytes": 256 << 20}
    GrpcTransport("n1", "c", {}, **options)  # every key is one of its arguments


def _joining(node_id: str, join: bool) -> list[str]:
    config = load_config(env={"NODE_ID": node_id})
    cluster = dataclasses.replace(config.cluster, enabled=True, join=join, port=9100,
                                  peers=("n1=h1:9100", "n2=h2:9100"))
    return cluster_problems(dataclasses.replace(config, cluster=cluster))


def test_a_node_outside_the_initial_members_must_say_it_joins():
    assert _joining("n4", join=True) == []
    assert _joining("n1", join=False) == []
    assert any("a node added to a running cluster sets cluster.join: true" in problem
               for problem in _joining("n4", join=False))
    # A member that lost its data dir rejoins under its id (docs/cluster.md).
    assert _joining("n1", join=True) == []


def test_a_member_bounds_its_rounds_in_flight_on_its_own():
    config = load_config(env={})
    assert (config.cluster.max_rounds_in_flight, config.queues.max_rounds_in_flight) == (2, 16)
    config = load_config(env={}, overrides={"cluster.max_rounds_in_flight": "3"})
    assert config.cluster.max_rounds_in_flight == 3
    with pytest.raises(ConfigError) as refused:
        load_config(env={}, overrides={"cluster.max_rounds_in_flight": "0"})
    assert any("cluster.max_rounds_in_flight" in p for p in refused.value.problems)
    assert config.cluster.further_round_share == 0.5
    with pytest.raises(ConfigError) as refused:
        load_config(env={}, overrides={"cluster.further_round_share": "1.5"})
    assert any("cluster.further_round_share" in p for p in refused.value.problems)
