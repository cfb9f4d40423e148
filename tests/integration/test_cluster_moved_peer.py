"""A member back at a new address is reached once discovery says where.

With ``cluster.discovery: kubernetes`` the watch hands every new peer map to
``ClusterMember.set_peers`` (the server wires ``on_change`` to it), which
re-addresses the transport's links. Three members built by ``join_cluster``
as the server builds them (the real driver, transport and applier, an
in-memory entry log) on 127.0.0.1, .2 and .3; one of them then comes back on
127.0.0.4, as a pod rescheduled with a new IP does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from eventstream.server.cluster.replicated import ClusterMember, join_cluster
from eventstream.server.config.load import load_config
from eventstream.server.native import DedupTable
from eventstream.server.storage.fileops import file_ops
from eventstream.server.storage.memory_entry_log import MemoryEntryLog
from tests.support.server import free_port

pytestmark = pytest.mark.timeout(120)

NODES = [f"eventstream-{n}" for n in range(3)]


LOGS: dict[str, MemoryEntryLog] = {}


def member(tmp_path: Path, node: str, port: int, peers: dict[str, str]) -> ClusterMember:
    """The member ``node`` as the server builds it; a restart keeps its log (as a volume does)."""
    data = tmp_path / node
    data.mkdir(exist_ok=True)
    config = load_config(env={}, overrides={
        "cluster.enabled": True, "cluster.discovery": "kubernetes", "cluster.node_id": node,
        "cluster.replicas": 3, "cluster.namespace": "streams", "cluster.port": port,
        "storage.data_dir": str(data)})
    log = LOGS.setdefault(f"{tmp_path}/{node}", MemoryEntryLog(1, 1 << 20))
    return join_cluster(config, log, DedupTable(10**9, 1000), file_ops(), discovered=peers)


async def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        await asyncio.sleep(0.05)


async def test_a_member_back_at_a_new_address_is_reached_after_set_peers(tmp_path: Path) -> None:
    port = free_port()
    # What discovery found: every pod's address, and a pod that is no voter.
    found = {node: f"127.0.0.{n + 1}:{port}" for n, node in enumerate(NODES)}
    found["eventstream-7"] = f"127.0.0.8:{port}"
    members = {node: member(tmp_path, node, port, found) for node in NODES}
    moved: ClusterMember | None = None
    try:
        for n, node in enumerate(NODES):
            await members[node].start(f"127.0.0.{n + 1}", port)
        assert sorted(members["eventstream-0"].peers) == NODES, "only voters are dialled"
        await wait_for(lambda: all(len(m.transport.connected_peers()) == 2 for m in members.values()),
                       "connected")

        # eventstream-2 is rescheduled: gone from 127.0.0.3, back on 127.0.0.4 with its log.
        await members["eventstream-2"].stop()
        found["eventstream-2"] = f"127.0.0.4:{port}"
        moved = members["eventstream-2"] = member(tmp_path, "eventstream-2", port, found)
        await moved.start("127.0.0.4", port)
        # The links still dial the old address, and fail there.
        stats = members["eventstream-0"].transport.link_stats()["eventstream-2"]
        failures = stats.failures
        await wait_for(lambda: stats.failures > failures + 1, "failing at the old address")
        assert "eventstream-2" not in members["eventstream-0"].transport.connected_peers()
        for node in ("eventstream-0", "eventstream-1"):
            await members[node].set_peers(found)
        assert members["eventstream-0"].peers["eventstream-2"] == f"127.0.0.4:{port}"
        assert "eventstream-7" not in members["eventstream-0"].peers

        def agreed() -> bool:
            # Every member knows the same leader and has applied what it knows
            # committed (what /health/ready reports): the moved one hears the
            # leader only over links that dial its new address.
            leaders = {m.replicated.driver.leader_id for m in members.values()}
            return len(leaders) == 1 and None not in leaders and \
                all(m.unready() == "" for m in members.values())
        await wait_for(agreed, "one leader known to every member after set_peers")
    finally:
        for node in NODES:
            if members[node].replicated.driver.running:
                await members[node].stop()
