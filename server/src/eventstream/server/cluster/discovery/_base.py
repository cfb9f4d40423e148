"""What every discovery mode shares: the error, the component, the bounded wait.

The wait retries, with back-off, until members that are not there yet are.
I/O: sleeps on the event loop's clock and logs; no network.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .statefulset import majority

log = logging.getLogger("eventstream.server.cluster.discovery")

PeersChanged = Callable[[Mapping[str, str]], Awaitable[None]]
"""Called with the whole new peer map (node id -> gRPC target of its cluster
port, this node included) each time a watch sees it change."""

FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 5.0


class DiscoveryError(Exception):
    """The peers cannot be found: the node must not start.

    ``problems`` has one line per problem, each naming the config key to look at.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class PeerDiscovery(Protocol):
    """Finds the cluster's members; a component with ``start``/``stop``.

    The peer map holds every member found, this node included, as node id ->
    gRPC target of its cluster port (``host:port``, or ``dns://server/host:port``
    when ``cluster.dns_server`` is set): what ``GrpcTransport`` takes, which
    leaves this node out itself.
    """

    mode: str
    """``static``, ``dns`` or ``kubernetes``."""

    async def start(self, on_change: PeersChanged | None = None) -> dict[str, str]:
        """Find the members; returns the first peer map.

        Waits (retrying with back-off, logging what is missing) until this node
        and a majority of the initial voters are found, at most
        ``cluster.discovery_timeout_seconds``. A mode that watches (kubernetes)
        keeps watching after it returns and awaits ``on_change`` with every
        new map, one call at a time, until ``stop``.

        Raises:
            DiscoveryError: not enough members found in time, or a setting
                that cannot work (each problem names its key).
        """
        ...

    async def stop(self) -> None:
        """Stop watching; ``on_change`` is not called after this returns."""
        ...


@dataclass
class Lookup:
    """One attempt's result: the members found and why the others were not."""

    peers: dict[str, str] = field(default_factory=dict)
    """Node id -> target, for every member found."""
    missing: dict[str, str] = field(default_factory=dict)
    """Node id (or name) -> why it was not found, for the log and the error."""


def enough(lookup: Lookup, node_id: str, voters: Collection[str]) -> bool:
    """This node and a majority of the initial ``voters`` are found: a quorum can form."""
    found = sum(1 for node in voters if node in lookup.peers)
    return node_id in lookup.peers and found >= majority(len(voters))


async def wait_for_members(attempt: Callable[[], Awaitable[Lookup]], *, node_id: str,
                           voters: Collection[str], timeout: float, mode: str,
                           rng: random.Random | None = None) -> Lookup:
    """Run ``attempt`` until ``enough`` holds; returns the last lookup.

    Retries with jittered back-off (0.1 s doubling to 5 s), for at most
    ``timeout`` seconds.

    Raises:
        DiscoveryError: still not enough when the time is up, naming what is missing.
    """
    rng = rng or random.Random()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    backoff = FIRST_BACKOFF_SECONDS
    attempts = 0
    while True:
        lookup = await attempt()
        attempts += 1
        if enough(lookup, node_id, voters):
            return lookup
        left = deadline - loop.time()
        if left <= 0:
            tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
            raise DiscoveryError([
                f"cluster.discovery: {mode}: after {tries} in {timeout:g} s "
                f"(cluster.discovery_timeout_seconds) found {_found(lookup, node_id, voters)}; "
                f"missing: {_missing(lookup)}"])
        delay = min(left, backoff * rng.uniform(0.5, 1.5))
        log.warning("discovery (%s): found %s; missing: %s; retrying in %.1f s (giving up in %.0f s)",
                    mode, _found(lookup, node_id, voters), _missing(lookup), delay, left)
        await asyncio.sleep(delay)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def _found(lookup: Lookup, node_id: str, voters: Collection[str]) -> str:
    needed = f"this node ({node_id}) and at least {majority(len(voters))} of {len(voters)} voters"
    return f"{len(lookup.peers)} ({', '.join(sorted(lookup.peers)) or 'none'}), need {needed}"


def _missing(lookup: Lookup) -> str:
    return "; ".join(f"{name}: {why}" for name, why in sorted(lookup.missing.items())) or "nothing"


def describe(peers: Mapping[str, str]) -> str:
    """``id=target, ...`` sorted, for log lines."""
    return ", ".join(f"{node}={target}" for node, target in sorted(peers.items()))
