"""``cluster.discovery: kubernetes``: the endpoints of the headless service.

They are read from its EndpointSlices through the API server and watched for
changes.

Each endpoint's pod (``targetRef``, else its ``hostname``) is a node id and
its first address, with ``cluster.port``, the target of its cluster port.
The client is ``kubernetes_asyncio``, the official client's API generated for
asyncio on aiohttp: the watch is a task on the server's loop, cancelled by
``stop``. It authenticates with the pod's service account (token re-read as
Kubernetes rotates it) or with ``cluster.kubeconfig``; the chart's Role grants
get, list and watch on EndpointSlices in the namespace, nothing more.

I/O: HTTPS to the API server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from eventstream.server.config.model import ClusterConfig

from ._base import (
    FIRST_BACKOFF_SECONDS,
    MAX_BACKOFF_SECONDS,
    DiscoveryError,
    Lookup,
    PeersChanged,
    describe,
    log,
    wait_for_members,
)
from .statefulset import member_names, parse_pod_name, voter_count

WATCH_SECONDS = 240  # the API server ends each watch after this; it is then resumed
REQUEST_SECONDS = 10  # a list call
SERVICE_LABEL = "kubernetes.io/service-name"  # set on every EndpointSlice of a Service

Slice = dict[str, Any]  # an EndpointSlice as the API server sends it (JSON)


class KubernetesDiscovery:
    """The headless service's endpoints, listed then watched.

    Args:
        cluster: ``namespace``, ``service``, ``port``, ``node_id``,
            ``voters``, ``replicas``, ``kubeconfig``, ``discovery_timeout_seconds``.
        rng: jitter of the back-off (tests pass a seeded one).
    """

    mode = "kubernetes"

    def __init__(self, cluster: ClusterConfig, rng: random.Random | None = None) -> None:
        self._cluster = cluster
        self._rng = rng or random.Random()
        self._selector = f"{SERVICE_LABEL}={cluster.service}"
        self._api_client: client.ApiClient | None = None
        self._slices: dict[str, Slice] = {}
        self._resource_version = ""
        self._peers: dict[str, str] = {}
        self._last_error = ""
        self._task: asyncio.Task[None] | None = None
        self._stream: watch.Watch | None = None  # the watch call in progress
        pod = parse_pod_name(cluster.node_id)
        # Who start() waits for: this node and, when it is a StatefulSet pod, the initial voters.
        self._voters = frozenset(member_names(pod.statefulset, voter_count(cluster)) if pod else ())
        self._expected = {*self._voters, cluster.node_id}

    @property
    def peers(self) -> dict[str, str]:
        """The latest peer map (node id -> ``address:port``)."""
        return dict(self._peers)

    async def start(self, on_change: PeersChanged | None = None) -> dict[str, str]:
        """List the EndpointSlices until this node and a majority are in them, then watch.

        The watch is a task that awaits ``on_change`` with each new peer map.
        """
        self._api_client = await self._connect()
        try:
            lookup = await wait_for_members(self._list_once, node_id=self._cluster.node_id,
                                            voters=self._voters or {self._cluster.node_id},
                                            timeout=self._cluster.discovery_timeout_seconds,
                                            mode=self.mode, rng=self._rng)
        except BaseException:
            await self._close()
            raise
        self._peers = lookup.peers
        log.info("discovery (kubernetes): service %s/%s; peers: %s", self._cluster.namespace,
                 self._cluster.service, describe(self._peers))
        self._task = asyncio.create_task(self._watch(on_change), name="discovery-watch")
        return dict(self._peers)

    async def stop(self) -> None:
        """Cancel the watch and close the client."""
        task, self._task = self._task, None
        self._abort_watch()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # its own cancellation, not ours
        await self._close()

    def _abort_watch(self) -> None:
        """Drop the watch's connection at once.

        Cancelled, the watch only starts a TLS shutdown that nothing waits
        for; the socket would stay open past ``stop()``.
        """
        response = self._stream.resp if self._stream is not None else None
        connection = response.connection if response is not None else None
        if connection is not None and connection.transport is not None:
            connection.transport.abort()

    # -- the API server -------------------------------------------------------

    async def _connect(self) -> client.ApiClient:
        settings = client.Configuration()
        path = self._cluster.kubeconfig
        try:
            if path:
                await config.load_kube_config(config_file=path, client_configuration=settings,
                                              persist_config=False)
            else:
                config.load_incluster_config(client_configuration=settings)  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError, ValueError) as error:
            where = (f"cluster.kubeconfig: {path!r} cannot be used" if path else
                     "cluster.kubeconfig: empty, and this process is not in a Kubernetes pod with a "
                     "service account token (set cluster.kubeconfig, or use cluster.discovery: dns or "
                     "static)")
            raise DiscoveryError([f"{where}: {error}"]) from None
        return client.ApiClient(configuration=settings)

    async def _close(self) -> None:
        api_client, self._api_client = self._api_client, None
        if api_client is not None:
            await api_client.close()

    def _api(self) -> client.DiscoveryV1Api:
        assert self._api_client is not None, "start() connects first"
        return client.DiscoveryV1Api(self._api_client)

    async def _list(self) -> None:
        """Replace the slices with a fresh list (and its resource version)."""
        listed = await self._api().list_namespaced_endpoint_slice(
            self._cluster.namespace, label_selector=self._selector, _request_timeout=REQUEST_SECONDS)
        assert self._api_client is not None
        body = self._api_client.sanitize_for_serialization(listed)  # the JSON, as a watch sends it
        self._slices = {item["metadata"]["name"]: item for item in body.get("items") or []}
        self._resource_version = body["metadata"]["resourceVersion"]

    async def _list_once(self) -> Lookup:
        """One attempt of start(): list, and say who is missing (or why the list failed)."""
        try:
            await self._list()
        except ApiException as error:
            return Lookup(missing={"the API server": self._explain(error)})
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return Lookup(missing={"the API server": f"unreachable: {error or type(error).__name__}"})
        peers = peers_of(self._slices.values(), self._cluster.port)
        where = f"no endpoint in the EndpointSlices of service {self._cluster.service!r}"
        return Lookup(peers=peers, missing={name: where for name in self._expected - peers.keys()})

    def _explain(self, error: ApiException) -> str:
        text = f"{error.status} {error.reason}"
        if error.status in (401, 403):
            text += (f" (the service account needs get, list and watch on endpointslices in "
                     f"namespace {self._cluster.namespace!r}: the chart's rbac.create grants them)")
        return text

    # -- the watch ------------------------------------------------------------

    async def _watch(self, on_change: PeersChanged | None) -> None:
        """Follow the slices from the listed resource version.

        Lists again when the version is too old (410) or after an error, with back-off.
        """
        backoff = FIRST_BACKOFF_SECONDS
        relist = False
        while True:
            try:
                if relist:
                    await self._list()
                    self._last_error = ""  # recovered: log the next failure again
                    await self._publish(on_change)
                    relist = False
                await self._follow(on_change)
                backoff = FIRST_BACKOFF_SECONDS
            except ApiException as error:
                relist = True
                if error.status == 410:  # history compacted past our version: start over
                    log.info("discovery (kubernetes): watch expired (410); listing again")
                    continue
                self._warn(f"watch refused: {self._explain(error)}", backoff)
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                relist = True
                self._warn(f"watch failed: {error or type(error).__name__}", backoff)
            except Exception:  # e.g. a malformed event: keep watching rather than go stale
                relist = True
                log.exception("discovery (kubernetes): the watch failed; listing again")
            else:
                continue  # the API server ended the watch: resume from the same version
            await asyncio.sleep(backoff * self._rng.uniform(0.5, 1.5))
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _follow(self, on_change: PeersChanged | None) -> None:
        """One watch call, until the API server ends it."""
        async with watch.Watch(return_type="object") as stream:
            self._stream = stream
            try:
                await self._follow_events(stream, on_change)
            finally:
                self._stream = None

    async def _follow_events(self, stream: watch.Watch, on_change: PeersChanged | None) -> None:
        async for event in stream.stream(
                self._api().list_namespaced_endpoint_slice, self._cluster.namespace,
                label_selector=self._selector, resource_version=self._resource_version,
                allow_watch_bookmarks=True, timeout_seconds=WATCH_SECONDS,
                _request_timeout=WATCH_SECONDS + REQUEST_SECONDS):
            item: Slice = event["raw_object"]
            self._resource_version = item["metadata"]["resourceVersion"]
            if event["type"] == "BOOKMARK":
                continue
            if event["type"] == "DELETED":
                self._slices.pop(item["metadata"]["name"], None)
            else:
                self._slices[item["metadata"]["name"]] = item
            await self._publish(on_change)

    async def _publish(self, on_change: PeersChanged | None) -> None:
        peers = peers_of(self._slices.values(), self._cluster.port)
        if peers == self._peers:
            return
        log.info("discovery (kubernetes): peers changed: %s", describe(peers))
        self._peers = peers
        if on_change is not None:
            try:
                await on_change(dict(peers))
            except Exception:  # the watch must outlive a failing listener
                log.exception("discovery (kubernetes): the peer-change handler failed")

    def _warn(self, what: str, backoff: float) -> None:
        if what != self._last_error:  # once per distinct error, not once per retry
            log.warning("discovery (kubernetes): %s; retrying (back-off from %.1f s)", what, backoff)
        self._last_error = what


def peers_of(slices: Any, port: int) -> dict[str, str]:
    """Node id -> ``address:port`` over EndpointSlices (JSON), IPv4 slices first.

    Pure. An endpoint's node id is its pod's name (``targetRef``), else its
    ``hostname``; endpoints with neither, and FQDN slices, are left out. A pod in
    several slices (dual stack, or between two slices during an update) keeps
    its first address.
    """
    ordered = sorted(slices, key=lambda s: (s.get("addressType") != "IPv4", s["metadata"]["name"]))
    peers: dict[str, str] = {}
    for piece in ordered:
        if piece.get("addressType") not in ("IPv4", "IPv6"):
            continue
        for endpoint in piece.get("endpoints") or []:
            reference: Mapping[str, Any] = endpoint.get("targetRef") or {}
            node = reference.get("name") if reference.get("kind") == "Pod" else endpoint.get("hostname")
            addresses = endpoint.get("addresses") or []
            if node and addresses and node not in peers:
                peers[node] = _host_port(addresses[0], port)
    return peers


def _host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ipaddress.ip_address(address).version == 6 else f"{address}:{port}"
