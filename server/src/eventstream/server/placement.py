"""Where the node runs: the NUMA nodes found, and pinning when numa.enabled.

The drain, the event encoder and the listeners all run on the event loop thread, so
placing the node means pinning that thread (and the threads it starts later,
which inherit its CPU set) to one node's CPUs. Discovery reads /sys through
the native core; a machine without NUMA information reports one node.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .native import NativeError, NumaNode, discover, pin_thread

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """The NUMA view of this node."""

    enabled: bool
    nodes: list[NumaNode] = field(default_factory=list)
    pinned_node: int | None = None

    def status(self) -> dict[str, Any]:
        """The ``numa`` part of /status."""
        return {"enabled": self.enabled, "pinned_node": self.pinned_node,
                "nodes": [{"id": node.id, "cpus": list(node.cpus)} for node in self.nodes]}


def place(enabled: bool) -> Placement:
    """Discover the NUMA nodes; when ``enabled``, pin this thread to the first node with CPUs."""
    try:
        nodes = discover()
    except (NativeError, OSError) as exc:
        log.warning("NUMA discovery failed (%s); placement is off", exc)
        return Placement(enabled)
    if not enabled:
        return Placement(enabled, nodes)
    for node in nodes:
        if node.cpus:
            pin_thread(node.id)
            log.info("event loop pinned to NUMA node %d (CPUs %s)", node.id, list(node.cpus))
            return Placement(enabled, nodes, node.id)
    return Placement(enabled, nodes)
