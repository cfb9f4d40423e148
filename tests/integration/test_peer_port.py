"""The cluster port refuses whatever is not a peer of this cluster, counts it, and keeps serving.

A real GrpcTransport on 127.0.0.1 with a real Raft driver behind it. Each
refusal test is paired with the positive control (a correct call from a
known peer changes the driver's term), so the checks can fail.
"""

from __future__ import annotations

import asyncio
import collections
import re
import socket
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from eventstream.peer.v1 import raft_pb2 as pb
from eventstream.peer.v1 import raft_pb2_grpc
from eventstream.server.cluster import MemoryRaftLog, RaftDriver
from eventstream.server.cluster.transport import GrpcTransport, identity_metadata
from eventstream.server.observability.metrics import Metrics
from eventstream.server.raft import Config, Heartbeat, InstallSnapshot, Membership, Snapshot
from eventstream.server.testing.raft_cluster import RecordingApplier
from eventstream.v1 import publish_pb2, publish_pb2_grpc
from tests.support.client import event

CLUSTER = "cluster-a"


@dataclass
class PeerPort:
    transport: GrpcTransport
    driver: RaftDriver
    channel: grpc.aio.Channel
    stub: raft_pb2_grpc.PeerServiceStub

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.transport.port}"


@pytest.fixture
async def port() -> AsyncIterator[PeerPort]:
    # The peers' addresses lead nowhere: only calls into this node matter here.
    transport = GrpcTransport("n1", CLUSTER, {"n2": "127.0.0.1:1", "n3": "127.0.0.1:1"},
                              max_snapshot_bytes=1 << 20)
    await transport.start("127.0.0.1", 0)
    driver = RaftDriver(Config("n1", election_ticks=1000), MemoryRaftLog(Membership(frozenset(
        {"n1", "n2", "n3"}))), transport, RecordingApplier(), tick_seconds=1.0)
    await driver.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{transport.port}")
    try:
        yield PeerPort(transport, driver, channel, raft_pb2_grpc.PeerServiceStub(channel))
    finally:
        await channel.close()
        await driver.stop()
        await transport.stop(grace=0.1)


def heartbeat(term: int, group_id: int = 0) -> pb.ExchangeRequest:
    return pb.ExchangeRequest(group_id=group_id, messages=[
        pb.RaftMessage(term=term, heartbeat=pb.Heartbeat(commit=0))])


async def exchange(port: PeerPort, request: pb.ExchangeRequest, metadata) -> None:
    async with asyncio.timeout(30):
        await port.stub.Exchange(iter([request]), metadata=metadata)


async def refused(port: PeerPort, request: pb.ExchangeRequest, metadata) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await exchange(port, request, metadata)
    return error.value


async def test_a_known_peer_is_heard(port: PeerPort):
    await exchange(port, heartbeat(3), identity_metadata(CLUSTER, "n2", "n1"))
    await port.driver.wait_until(lambda: port.driver.term == 3)
    assert port.driver.leader_id == "n2"
    assert not port.transport.refused


@pytest.mark.parametrize("metadata, code, reason", [
    (identity_metadata("cluster-b", "n2", "n1"), grpc.StatusCode.PERMISSION_DENIED, "other_cluster"),
    (identity_metadata(CLUSTER, "n9", "n1"), grpc.StatusCode.PERMISSION_DENIED, "unknown_node"),
    (identity_metadata(CLUSTER, "n2", "n3"), grpc.StatusCode.PERMISSION_DENIED, "wrong_recipient"),
    ((), grpc.StatusCode.UNAUTHENTICATED, "no_identity"),
    (identity_metadata(CLUSTER, "n2", "n1")[:2], grpc.StatusCode.UNAUTHENTICATED, "no_identity"),
])
async def test_a_stranger_is_refused_counted_and_not_heard(port: PeerPort, metadata, code, reason):
    error = await refused(port, heartbeat(7), metadata)
    assert error.code() == code
    assert port.transport.refused == {reason: 1}
    # The node is unmoved, and still hears its peers.
    assert port.driver.term == 0
    await exchange(port, heartbeat(3), identity_metadata(CLUSTER, "n2", "n1"))
    await port.driver.wait_until(lambda: port.driver.term == 3)


async def test_the_public_api_is_not_served_on_the_cluster_port(port: PeerPort):
    stub = publish_pb2_grpc.PublishServiceStub(port.channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async with asyncio.timeout(30):
            await stub.Publish(publish_pb2.PublishRequest(event=event("t", b"x")))
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert port.transport.refused == {"not_peer_method": 1}


async def test_raw_bytes_on_the_cluster_port_are_cut_off_and_the_port_still_serves(port: PeerPort):
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 64):
        reader, writer = await asyncio.open_connection("127.0.0.1", port.transport.port)
        writer.write(junk)
        await writer.drain()
        async with asyncio.timeout(30):
            while await reader.read(65536):  # the server may answer a GOAWAY, then closes
                pass
        writer.close()
    await exchange(port, heartbeat(3), identity_metadata(CLUSTER, "n2", "n1"))
    await port.driver.wait_until(lambda: port.driver.term == 3)


async def test_a_batch_with_an_unknown_entry_kind_is_refused_naming_the_field(port: PeerPort):
    request = pb.ExchangeRequest(group_id=0, messages=[pb.RaftMessage(term=2, append_entries=pb.AppendEntries(
        index=0, log_term=0, entries=[pb.Entry(index=1, term=2, kind=99, data=b"x")]))])
    error = await refused(port, request, identity_metadata(CLUSTER, "n2", "n1"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages[0].append_entries.entries[0].kind" in error.details()
    assert port.transport.refused == {"invalid": 1}
    assert port.driver.term == 0


async def test_a_message_without_a_body_or_for_another_group_is_refused(port: PeerPort):
    metadata = identity_metadata(CLUSTER, "n2", "n1")
    error = await refused(port, pb.ExchangeRequest(messages=[pb.RaftMessage(term=2)]), metadata)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "messages[0]" in error.details()
    error = await refused(port, heartbeat(2, group_id=7), metadata)
    assert error.code() == grpc.StatusCode.NOT_FOUND and "group_id" in error.details()
    assert port.transport.refused == {"invalid": 1, "unknown_group": 1}


async def test_snapshot_streams_are_checked(port: PeerPort):
    metadata = identity_metadata(CLUSTER, "n2", "n1")
    header = pb.SnapshotHeader(term=2, index=5, snapshot_term=1, voters=["n1", "n2", "n3"], data_bytes=4,
                               data_crc32=zlib.crc32(b"1234"))
    cases = [
        ([pb.InstallSnapshotRequest(chunk=b"x")], "header", "invalid"),
        ([pb.InstallSnapshotRequest(header=pb.SnapshotHeader(data_bytes=2 << 20))], "header.data_bytes",
         "snapshot_too_large"),
        ([pb.InstallSnapshotRequest(header=header), pb.InstallSnapshotRequest(chunk=b"12345")], "chunk",
         "snapshot_too_large"),
        ([pb.InstallSnapshotRequest(header=header), pb.InstallSnapshotRequest(chunk=b"12")], "chunk",
         "snapshot_damaged"),
        ([pb.InstallSnapshotRequest(header=header), pb.InstallSnapshotRequest(chunk=b"1235")],
         "header.data_crc32", "snapshot_damaged"),
        ([pb.InstallSnapshotRequest(header=pb.SnapshotHeader(voters=["a"], learners=["a"]))],
         "header.voters", "invalid"),
    ]
    for requests, field, _ in cases:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async with asyncio.timeout(30):
                await port.stub.InstallSnapshot(iter(requests), metadata=metadata)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert error.value.details().startswith(field), error.value.details()
    assert port.transport.refused == collections.Counter(reason for _, _, reason in cases)
    assert port.transport.handler.snapshots_received == 0


async def test_refusals_are_exported_as_a_metric(port: PeerPort):
    await refused(port, heartbeat(7), identity_metadata("cluster-b", "n2", "n1"))
    await refused(port, heartbeat(7), identity_metadata("cluster-b", "n2", "n1"))
    await refused(port, heartbeat(7), ())
    metrics = Metrics("n1")
    try:
        metrics.observe("eventstream.cluster.peer.refused", port.transport.refused_reading)
        text = metrics.render().decode()
    finally:
        metrics.shutdown()
    series = r'^eventstream_cluster_peer_refused_total\{reason="(\w+)"\} ([0-9.]+)$'
    found = dict(re.findall(series, text, re.M))
    assert found == {"other_cluster": "2.0", "no_identity": "1.0"}


async def test_the_port_is_refused_when_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        transport = GrpcTransport("n1", CLUSTER, {})
        with pytest.raises(RuntimeError, match="cluster port"):
            await transport.start("127.0.0.1", taken.getsockname()[1])
        await transport.stop()


class RecordingInbox:
    """The driver's Inbox port, keeping what the transport reports."""

    def __init__(self) -> None:
        self.unreachable: list[str] = []
        self.snapshots: list[tuple[str, bool]] = []

    async def deliver(self, messages) -> None:
        pass

    def try_deliver(self, messages) -> bool:
        return True

    def report_unreachable(self, node_id: str) -> None:
        self.unreachable.append(node_id)

    def report_snapshot(self, node_id: str, ok: bool) -> None:
        self.snapshots.append((node_id, ok))


async def test_a_full_peer_queue_drops_counts_and_reports():
    # Nothing listens at port 1: the link fails once it writes, and reports that too.
    transport = GrpcTransport("n1", CLUSTER, {"n2": "127.0.0.1:1"}, send_queue_messages=16)
    await transport.start("127.0.0.1", 0)
    inbox = RecordingInbox()
    transport.bind(inbox)
    try:
        transport.send([Heartbeat(0, "n1", "n2", 1, 0)] * 100 + [Heartbeat(0, "n1", "n9", 1, 0)])
        stats = transport.link_stats()["n2"]
        assert stats.dropped == {"queue_full": 84}  # send never blocks: what does not fit goes
        assert transport.dropped_unknown == 1
        assert set(inbox.unreachable) == {"n2", "n9"}
        async with asyncio.timeout(30):
            while stats.dropped["link_down"] < 16:  # the queued ones, once the stream fails
                await asyncio.sleep(0.01)
        membership = Membership(frozenset({"n1", "n2"}))
        snapshot = InstallSnapshot(0, "n1", "n2", 1, Snapshot(3, 1, membership, b"s"))
        transport.send([snapshot])
        async with asyncio.timeout(30):
            while not inbox.snapshots:
                await asyncio.sleep(0.01)
        assert inbox.snapshots == [("n2", False)]
    finally:
        await transport.stop()
