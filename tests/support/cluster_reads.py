"""What every node of a replicated cluster stores, read through its public API."""

from __future__ import annotations

import asyncio
import time

from eventstream.v1 import subscribe_pb2

from .client import Stubs, collect, subscribe_request
from .cluster import Cluster

EARLIEST = subscribe_pb2.START_FROM_EARLIEST


async def read_all(target: str, count: int) -> list[tuple[int, int, str]]:
    """(partition, offset, id) of the first ``count`` events of a node, per partition in order."""
    stubs = Stubs(target)
    try:
        call = stubs.subscribe.Subscribe(subscribe_request("#", start_from=EARLIEST))
        async with asyncio.timeout(30):
            events = await collect(call, count)
        call.cancel()
    finally:
        await stubs.close()
    return sorted((e.partition, e.offset, e.id) for e in events)


async def read_stored(cluster: Cluster, node: str) -> list[tuple[int, int, str]]:
    """Every event a node's readers see now, as :func:`read_all` lists them."""
    log = cluster.status(node)["log"]
    count = sum(log["end_offsets"]) - sum(log["start_offsets"])
    return await read_all(cluster.nodes[node].target, count) if count else []


def wait_caught_up(cluster: Cluster, nodes: list[str], timeout: float = 30.0) -> None:
    """Wait until every node in ``nodes`` applied as far as the leader committed."""
    deadline = time.monotonic() + timeout
    while True:
        views = {node: cluster.status(node)["cluster"] for node in nodes}
        leaders = [view for view in views.values() if view["role"] == "leader"]
        if leaders and all(view["applied_index"] >= leaders[0]["commit_index"]
                           for view in views.values()):
            return
        assert time.monotonic() < deadline, f"not caught up within {timeout}s: {views}"
        time.sleep(0.05)
