"""``cluster.discovery: dns``: the StatefulSet's pods by name under the headless service.

The members are ``<statefulset>-<ordinal>.<service>.<namespace>.svc[.<domain>]``
for the initial voters (ordinals 0 to ``min(cluster.voters, cluster.replicas)
- 1``) and this pod, the StatefulSet's name and this
node's ordinal read from the pod name (``cluster.node_id``, which ``NODE_ID``
or ``POD_NAME`` or the host name fill). A pod's record exists only once the
pod has an address, so the names are looked up, with back-off, until this
node's and a majority of the voters' resolve. The peer map then holds the names, not the
addresses: gRPC resolves them again whenever a link reconnects, so a pod
restarted with a new address is found without discovery.

I/O: DNS queries (the system resolver, or ``cluster.dns_server`` through
dnspython).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import dns.asyncresolver
import dns.exception
import dns.resolver

from eventstream.server.config.model import ClusterConfig

from ._base import DiscoveryError, Lookup, PeersChanged, describe, log, wait_for_members
from .statefulset import member_names, parse_pod_name, pod_host, voter_count

QUERY_SECONDS = 2.0  # one name's lookup, before it counts as missing for this attempt

Resolve = Callable[[str], Awaitable[None]]
"""Looks a name up; raises ``LookupError`` saying why it does not resolve."""


class DnsDiscovery:
    """The StatefulSet's members found through the headless service's DNS records.

    Raises:
        DiscoveryError: ``cluster.node_id`` is not a StatefulSet pod name.
    """

    mode = "dns"

    def __init__(self, cluster: ClusterConfig) -> None:
        pod = parse_pod_name(cluster.node_id)
        if pod is None:
            raise DiscoveryError([
                f"cluster.node_id: {cluster.node_id!r} is not a StatefulSet pod name "
                "(<statefulset>-<ordinal>, e.g. eventstream-2): cluster.discovery: dns takes the "
                "StatefulSet's name and this pod's ordinal from it (set by NODE_ID, POD_NAME or "
                "the host name)"])
        self._cluster = cluster
        self._node_id = cluster.node_id
        # The initial voters, and this pod (a joiner when its ordinal is beyond them).
        names = member_names(pod.statefulset, voter_count(cluster))
        self._voters = frozenset(names)
        self._hosts = {name: pod_host(name, cluster) for name in
                       [*names, *([] if cluster.node_id in names else [cluster.node_id])]}
        self._resolve = _server_resolver(cluster.dns_server) if cluster.dns_server else _system_resolve
        self._scheme = f"dns://{cluster.dns_server}/" if cluster.dns_server else ""

    async def start(self, on_change: PeersChanged | None = None) -> dict[str, str]:
        """Wait until this node's and a majority of the voters' names resolve.

        Returns the peer map of every member's name, resolved or not: gRPC
        keeps resolving.
        """
        lookup = await wait_for_members(self._lookup, node_id=self._node_id,
                                        voters=self._voters,
                                        timeout=self._cluster.discovery_timeout_seconds, mode=self.mode)
        peers = {node: self._target(host) for node, host in self._hosts.items()}
        log.info("discovery (dns): %d of %d members resolve; peers: %s%s", len(lookup.peers),
                 len(peers), describe(peers),
                 f" (not yet resolving: {', '.join(sorted(lookup.missing))})" if lookup.missing else "")
        return peers

    async def stop(self) -> None:
        """Nothing to stop: names are resolved again by the links themselves."""

    def _target(self, host: str) -> str:
        return f"{self._scheme}{host}:{self._cluster.port}"

    async def _lookup(self) -> Lookup:
        results = await asyncio.gather(*(self._one(host) for host in self._hosts.values()))
        lookup = Lookup()
        for (node, host), why in zip(self._hosts.items(), results, strict=True):
            if why is None:
                lookup.peers[node] = self._target(host)
            else:
                lookup.missing[host] = why
        return lookup

    async def _one(self, host: str) -> str | None:
        try:
            async with asyncio.timeout(QUERY_SECONDS):
                await self._resolve(host)
        except TimeoutError:
            return f"no answer within {QUERY_SECONDS:g} s"
        except LookupError as error:
            return str(error)
        return None


async def _system_resolve(host: str) -> None:
    try:
        await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise LookupError(error.strerror or str(error)) from None


def _server_resolver(server: str) -> Resolve:
    """Queries to ``address:port`` only (checked by the config loader), A then AAAA."""
    host, _, port = server.rpartition(":")
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [host.strip("[]")]
    resolver.port = int(port)
    resolver.lifetime = QUERY_SECONDS

    async def resolve(name: str) -> None:
        why = ""
        for record_type in ("A", "AAAA"):
            try:
                await resolver.resolve(name, record_type, search=False)
                return
            except dns.resolver.NXDOMAIN:
                raise LookupError(f"no such name (NXDOMAIN from {server})") from None
            except dns.resolver.NoAnswer:
                why = f"no address record (from {server})"
            except dns.exception.DNSException as error:
                raise LookupError(f"{type(error).__name__} from {server}: {error}") from None
        raise LookupError(why)

    return resolve
