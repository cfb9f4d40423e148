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
    """Wait until every node in ``nodes`` applied the leader's whole log as it was when seen.

    The mark is the leader's last index when it is first seen leading (its
    own member's ``match_index``): it holds at least the first entry of the
    leader's term, appended as it was elected. Once the leader committed the
    mark and a node applied as far, the node holds every entry committed
    before. The commit index alone is no mark: a just-elected leader's may
    still be 0 or short of entries of earlier terms, below what a
    just-restarted node applied from its own log before it heard of this
    leader. A new leader (or term) sets the mark again.
    """
    deadline = time.monotonic() + timeout
    mark: tuple[str, int, int] | None = None  # (leader, term, its last index)
    while True:
        views = {node: cluster.status(node)["cluster"] for node in nodes}
        leaders = [node for node, view in views.items() if view["role"] == "leader"]
        if leaders:
            leader = max(leaders, key=lambda node: views[node]["term"])
            view = views[leader]
            if mark is None or mark[:2] != (leader, view["term"]):
                last = next(member["match_index"] for member in view["members"]
                            if member["node_id"] == leader)
                mark = (leader, view["term"], last)
            if view["commit_index"] >= mark[2] and \
                    all(other["applied_index"] >= mark[2] for other in views.values()):
                return
        assert time.monotonic() < deadline, \
            f"not caught up within {timeout}s with the leader's log to {mark}: {views}"
        time.sleep(0.05)


async def assert_stored_once_everywhere(cluster: Cluster,
                                        acks: list[tuple[float, str, int, int]]) -> None:
    """Assert that every node stores exactly the acknowledged events.

    Once a leader is agreed and every node caught up: each node stores the
    events of ``acks`` (``(time, id, partition, offset)``), each once, at its
    acknowledged position, and nothing else.
    """
    cluster.wait_leader()
    wait_caught_up(cluster, list(cluster.nodes))
    expected = sorted((partition, offset, event_id) for _, event_id, partition, offset in acks)
    for node in cluster.nodes:
        assert await read_stored(cluster, node) == expected, node
