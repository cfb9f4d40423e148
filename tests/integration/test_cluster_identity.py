"""A replicated node's identity: bootstrap into the data dir, checks on the peer link and at start.

Real server processes on 127.0.0.1: the cluster id every initial voter stored,
calls of another cluster or an unknown node refused and counted by a running
member, data dirs that are not the node's refused at start, and
``cluster.*`` settings that cannot work refused with a clear line each.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import grpc
import pytest
import yaml

from eventstream.peer.v1 import raft_pb2 as pb
from eventstream.peer.v1 import raft_pb2_grpc
from eventstream.server.cluster.transport import identity_metadata
from tests.support.cluster import Cluster
from tests.support.server import ServerProcess, free_port, metric


@pytest.fixture
def cluster(tmp_path: Path):
    nodes = Cluster(tmp_path, 3)
    try:
        yield nodes.start()
    finally:
        nodes.stop()


async def exchange(address: str, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    """The status of an Exchange call with one empty batch and ``metadata``."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = raft_pb2_grpc.PeerServiceStub(channel)

        async def requests():
            yield pb.ExchangeRequest(group_id=0)

        try:
            await stub.Exchange(requests(), metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_the_cluster_id_is_stored_and_calls_of_strangers_are_refused(cluster: Cluster):
    cluster.wait_leader()
    identities = [json.loads((server.workdir / "data" / "cluster.json").read_text())
                  for server in cluster.nodes.values()]
    assert len({identity["cluster_id"] for identity in identities}) == 1
    assert [identity["node_id"] for identity in identities] == list(cluster.nodes)
    assert all(identity["voters"] == sorted(cluster.nodes) for identity in identities)
    cluster_id = identities[0]["cluster_id"]

    n1 = cluster.nodes["n1"]
    address = f"127.0.0.1:{yaml.safe_load(n1.config_path.read_text())['cluster']['port']}"
    # A call as a known peer is heard (the positive control for the refusals below).
    assert await exchange(address, identity_metadata(cluster_id, "n2", "n1")) == \
        grpc.StatusCode.OK
    assert await exchange(address, identity_metadata("es-another", "n2", "n1")) == \
        grpc.StatusCode.PERMISSION_DENIED
    assert await exchange(address, identity_metadata(cluster_id, "n9", "n1")) == \
        grpc.StatusCode.PERMISSION_DENIED
    for reason in ("other_cluster", "unknown_node"):
        assert metric(n1, "eventstream_cluster_peer_refused_total", reason=reason) == 1
    cluster.wait_leader()  # the cluster keeps working


def test_a_data_dir_that_is_not_this_members_is_refused(tmp_path: Path):
    # A single node's data dir holds a log but no cluster identity.
    (tmp_path / "single").mkdir()
    single = ServerProcess(tmp_path / "single").start()
    assert single.stop() == 0
    port = free_port()
    peers = {"node_id": "test-node", "enabled": True, "port": port,
             "peers": [f"test-node=127.0.0.1:{port}", f"other=127.0.0.1:{free_port()}"]}
    joining = ServerProcess(tmp_path / "single", {"cluster": peers})
    code, output = joining.run_to_exit()
    assert code == 2 and "holds a log but no cluster.json" in output, output

    # A member's data dir started under another node id.
    cluster = Cluster(tmp_path / "members", 3).start()
    cluster.stop()
    moved = cluster.nodes["n1"]
    config = yaml.safe_load(moved.config_path.read_text())
    n2_port = yaml.safe_load(cluster.nodes["n2"].config_path.read_text())["cluster"]["port"]
    config["cluster"].update(node_id="n2", port=n2_port)
    moved.config_path.write_text(yaml.safe_dump(config))
    code, output = moved.run_to_exit()
    assert code == 2 and "belongs to node 'n1', but cluster.node_id is 'n2'" in output, output


@pytest.mark.parametrize(("cluster", "storage", "problem"), [
    ({"peers": ["a=127.0.0.1:1", "b=127.0.0.1:2"]}, {},
     "cluster.node_id: 'test-node' is not among cluster.peers (a, b)"),
    ({"peers": []}, {}, "cluster.peers: empty"),
    ({"peers": ["test-node=127.0.0.1"]}, {},
     "cluster.peers: 'test-node=127.0.0.1' is not host:port"),
    ({"peers": ["test-node=127.0.0.1:1"]}, {"engine": "memory"},
     "storage.engine: a cluster member needs 'disk'"),
])
def test_cluster_settings_that_cannot_work_are_refused(tmp_path: Path, cluster, storage, problem):
    server = ServerProcess(tmp_path, {"cluster": {"enabled": True, **cluster},
                                      "storage": storage})
    code, output = server.run_to_exit()
    assert code == 2 and f"config error: {problem}" in output, output


def test_a_taken_cluster_port_is_named_at_start(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServerProcess(tmp_path, {"cluster": {
            "enabled": True, "port": port,
            "peers": [f"test-node=127.0.0.1:{port}", f"other=127.0.0.1:{free_port()}"]}})
        code, output = server.run_to_exit()
    assert code == 2, output
    assert f"cannot listen: cluster: cannot listen on the cluster port 127.0.0.1:{port}" in output
