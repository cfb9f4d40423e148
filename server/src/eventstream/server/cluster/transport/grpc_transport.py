"""The gRPC transport: a peer server on the cluster port and one outbound link per peer.

Implements the driver's ``Transport`` port. Its own ``grpc.aio`` server
(separate from the public API's) serves PeerService to the nodes of the
static peer map, checked on every call; a :class:`~.outbound.PeerLink` per
peer keeps one Exchange stream to it. The composition root starts and
stops it (:meth:`GrpcTransport.start`, :meth:`GrpcTransport.stop`); the
driver binds to it and sends.

With ``tls`` (``cluster.tls``) the port speaks mutual TLS only: the server
requires a client certificate signed by the members' CA, and every channel
to a peer presents this member's certificate and checks the peer's. When the
certificate changes (:meth:`GrpcTransport.certificate_changed`), the server
serves it to new connections and every link moves to a new channel at its
next write; the old channels are closed :data:`RETIRE_SECONDS` later, so
forwarded requests under way on them are answered.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

import grpc

from eventstream.server.raft import Message, Snapshot
from eventstream.server.security.tls import ServerTls, grpc_channel_credentials, grpc_server_credentials

from ...tasks import cancel_and_wait
from ..ports import Inbox
from .forward import Answer, ForwardFailed, ForwardStream, ForwardTarget
from .identity import Admit, identity_metadata
from .inbound import PeerHandler
from .join import JoinIntent, JoinReply, JoinTarget, ask_join
from .outbound import LinkStats, PeerLink
from .relay import RelayTarget, open_relay

log = logging.getLogger(__name__)

KEEPALIVE_MS = 1000
"""Pings on an idle connection this often, so a frozen or vanished peer is noticed."""
KEEPALIVE_TIMEOUT_MS = 2000
"""A ping unanswered this long closes the connection (its streams fail, the link reconnects)."""
RETIRE_SECONDS = 30.0
"""After a certificate change: how long the channels made with the old one stay open."""


class GrpcTransport:
    """Raft messages between the nodes of one cluster over gRPC (see the module docstring).

    Args:
        node_id: this node's id.
        cluster_id: the cluster's id; calls naming another are refused.
        peers: node id -> ``host:port`` of its cluster port, for every other
            member (an entry for this node is ignored).
        group_ids: the Raft groups this node serves.
        send_queue_messages: messages queued per peer at most (``cluster.send_queue_messages``).
        max_batch_bytes: most bytes of messages per stream request (``cluster.max_batch_bytes``).
        max_message_bytes: largest request accepted or sent (``cluster.max_message_bytes``).
        snapshot_chunk_bytes: size of a snapshot's data chunks.
        max_snapshot_bytes: most data bytes of a snapshot received.
        spool_dir: where a snapshot being received is written (None: the
            system's temporary directory).
        rng: the reconnection jitter's source.
        client_address: ``host:port`` of this node's public gRPC port, announced
            to every peer (their leader hints name it).
        tls: this member's certificate and the members' CA (None: plaintext).
        server_name: the name checked in a peer's certificate ("" : the host dialled).
    """

    def __init__(self, node_id: str, cluster_id: str, peers: Mapping[str, str], *,
                 group_ids: Collection[int] = (0,), send_queue_messages: int = 4096,
                 max_batch_bytes: int = 8 << 20, max_message_bytes: int = 256 << 20,
                 snapshot_chunk_bytes: int = 1 << 20, max_snapshot_bytes: int = 1 << 30,
                 rng: random.Random | None = None, client_address: str = "",
                 spool_dir: str | None = None, tls: ServerTls | None = None,
                 server_name: str = "") -> None:
        if not cluster_id:
            raise ValueError("the cluster id must not be empty")
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.client_address = client_address
        self._addresses = {peer: address for peer, address in peers.items() if peer != node_id}
        self._max_message_bytes = max_message_bytes
        self._send_queue_messages = send_queue_messages
        self._max_batch_bytes = min(max_batch_bytes, max_message_bytes)
        self._chunk_bytes = min(snapshot_chunk_bytes, max_message_bytes // 2)
        self._rng = rng or random.Random()
        self._tls = tls
        self._server_name = server_name
        self._retiring: set[asyncio.Task[None]] = set()
        self._inbox: Inbox | None = None
        self.handler = PeerHandler(node_id, cluster_id, self._addresses, group_ids, self._current_inbox,
                                   max_snapshot_bytes=max_snapshot_bytes, spool_dir=spool_dir)
        self._links: dict[str, PeerLink] = {}
        self._server: grpc.aio.Server | None = None
        self.port = 0
        """The bound cluster port (after :meth:`start`)."""
        self.dropped_unknown = 0
        """Messages for a node that is not in the peer map."""
        self._forwards: dict[str, ForwardStream] = {}
        self.forwarded = 0
        """Requests forwarded to a leader (answered or not)."""
        self.snapshot_data: Callable[[Snapshot], bytes] | None = None
        """What a snapshot's stream carries (None: its data); set before :meth:`start`."""

    # ------------------------------------------------------------------
    # Lifecycle.

    async def start(self, host: str, port: int) -> int:
        """Serve the cluster port on ``host:port`` (0: a free port) and open a link to every peer.

        Returns:
            The bound port.

        Raises:
            RuntimeError: the port cannot be bound.
        """
        limit = self._max_message_bytes
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_time_ms", KEEPALIVE_MS),
            ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", KEEPALIVE_MS // 2),
            ("grpc.http2.max_ping_strikes", 0),
        ])
        server.add_generic_rpc_handlers((self.handler,))
        address = f"{host}:{port}"
        try:
            bound = (server.add_insecure_port(address) if self._tls is None
                     else server.add_secure_port(address, grpc_server_credentials(self._tls)))
        except RuntimeError as error:
            raise RuntimeError(f"cannot listen on the cluster port {host}:{port}: {error}") from None
        if not bound:
            raise RuntimeError(f"cannot listen on the cluster port {host}:{port}")
        await server.start()
        self._server = server
        self.port = bound
        for peer, address in sorted(self._addresses.items()):
            self._open_link(peer, address)
        return bound

    async def set_peers(self, peers: Mapping[str, str]) -> None:
        """Replace the peer map: links open to new peers and close to old ones or moved ones.

        Calls from a node no longer in the map are refused from now on.
        """
        addresses = {peer: address for peer, address in peers.items() if peer != self.node_id}
        for peer, link in list(self._links.items()):
            if addresses.get(peer) != self._addresses.get(peer):
                del self._links[peer]
                await link.stop()
        self._addresses = addresses
        self.handler.set_peers(addresses)
        if self._server is not None:
            for peer, address in sorted(addresses.items()):
                if peer not in self._links:
                    self._open_link(peer, address)

    def _open_link(self, peer: str, address: str) -> None:
        link = PeerLink(peer, self._channel(address),
                        identity_metadata(self.cluster_id, self.node_id, peer,
                                          self.client_address), self._current_inbox,
                        queue_messages=self._send_queue_messages, max_batch_bytes=self._max_batch_bytes,
                        chunk_bytes=self._chunk_bytes, rng=self._rng,
                        snapshot_data=self._snapshot_payload)
        link.start()
        self._links[peer] = link

    def _channel(self, address: str) -> grpc.aio.Channel:
        """A new channel to a peer's cluster port, with the current certificate if any."""
        options: list[tuple[str, int | str]] = [*self._channel_options()]
        if self._tls is None:
            return grpc.aio.insecure_channel(address, options=options)
        if self._server_name:
            options.append(("grpc.ssl_target_name_override", self._server_name))
        return grpc.aio.secure_channel(address, grpc_channel_credentials(self._tls.material),
                                       options=options)

    def certificate_changed(self) -> None:
        """Use the certificate ``tls`` took last on every new connection (see the module docstring)."""
        old: list[ForwardStream | grpc.aio.Channel] = list(self._forwards.values())
        self._forwards = {}
        for peer, link in self._links.items():
            old.append(link.use_channel(self._channel(self._addresses[peer])))
        if old:
            task = asyncio.get_running_loop().create_task(self._retire(old), name="peer-tls-retire")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        log.info("cluster: new connections to peers use the new certificate")

    async def _retire(self, old: list[ForwardStream | grpc.aio.Channel]) -> None:
        try:
            await asyncio.sleep(RETIRE_SECONDS)
        finally:  # at once when the transport stops
            for item in old:
                await item.close()

    async def stop(self, grace: float = 1.0) -> None:
        """Close every link and the server (calls in progress get ``grace`` seconds)."""
        for task in list(self._retiring):
            await cancel_and_wait(task)
        forwards, self._forwards = self._forwards, {}
        for stream in forwards.values():
            await stream.close()
        links, self._links = self._links, {}
        for link in links.values():
            await link.stop()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    def _channel_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.max_receive_message_length", self._max_message_bytes),
            ("grpc.max_send_message_length", self._max_message_bytes),
            ("grpc.keepalive_time_ms", KEEPALIVE_MS),
            ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            # Reconnect quickly: a restarted peer should be back within a second.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            # One connection per link, not shared with other channels to the peer.
            ("grpc.use_local_subchannel_pool", 1),
        ]

    # ------------------------------------------------------------------
    # The Transport port.

    def bind(self, inbox: Inbox) -> None:
        """Deliver inbound messages, and report send failures, to ``inbox``."""
        self._inbox = inbox

    def send(self, messages: Sequence[Message]) -> None:
        """Queue each message on its recipient's link; never blocks (see ``ports.Transport.send``)."""
        links = self._links
        for message in messages:
            link = links.get(message.recipient)
            if link is not None:
                link.enqueue(message)
                continue
            self.dropped_unknown += 1
            if self._inbox is not None:
                self._inbox.report_unreachable(message.recipient)

    # ------------------------------------------------------------------
    # Forwarding (``forward.py``).

    def serve_forwarded(self, target: ForwardTarget) -> None:
        """Serve the requests followers forward with ``target`` (on every node: any may lead)."""
        self.handler.forward_target = target

    async def forward(self, leader: str, kind: int, request: bytes,
                      transport: str = "tcp") -> Answer:
        """Forward one public request to ``leader`` on its stream; its answer.

        ``transport`` says which transport raw frames came in on.

        Raises:
            ForwardFailed: ``leader`` is not a peer, or its stream failed first.
        """
        stream = self._forwards.get(leader)
        if stream is None or stream.failed is not None:
            link = self._links.get(leader)
            if link is None:
                raise ForwardFailed(f"{leader} is not a peer of {self.node_id}")
            stream = self._forwards[leader] = ForwardStream(leader, link.channel, link.metadata)
        self.forwarded += 1
        return await stream.forward(kind, request, transport)

    # ------------------------------------------------------------------
    # Relaying group members (``relay.py``).

    def serve_relayed(self, target: RelayTarget) -> None:
        """Serve the group members followers relay with ``target`` (on every node: any may lead)."""
        self.handler.relay_target = target

    def relay_consume(self, leader: str, identity: str
                      ) -> grpc.aio.StreamStreamCall[bytes, bytes] | None:
        """Open a relayed Consume call on ``leader`` for a member of ``identity`` (None: not a peer)."""
        link = self._links.get(leader)
        return None if link is None else open_relay(link.channel, link.metadata, identity)
    # Membership requests (``join.py``).

    def serve_joins(self, target: JoinTarget, admit: Admit) -> None:
        """Answer Join calls with ``target``; ``admit`` says which non-peers may make them."""
        self.handler.join_target = target
        self.handler.admit = admit

    async def ask_join(self, peer: str, address: str, intent: JoinIntent, own_address: str,
                       timeout: float) -> JoinReply:
        """Call Join on ``peer`` (cluster port at ``address``); its reply.

        Uses the peer's link when it has one at that address, else a channel
        opened for this call.

        Raises:
            JoinFailed: the call failed.
        """
        metadata = identity_metadata(self.cluster_id, self.node_id, peer, self.client_address)
        link = self._links.get(peer)
        if link is not None and self._addresses.get(peer) == address:
            return await ask_join(link.channel, metadata, intent, own_address, timeout)
        channel = self._channel(address)
        try:
            return await ask_join(channel, metadata, intent, own_address, timeout)
        finally:
            await channel.close()

    def _snapshot_payload(self, snapshot: Snapshot) -> bytes:
        return snapshot.data if self.snapshot_data is None else self.snapshot_data(snapshot)

    def _current_inbox(self) -> Inbox | None:
        return self._inbox

    # ------------------------------------------------------------------
    # Introspection.

    @property
    def refused(self) -> collections.Counter[str]:
        """Calls refused on the cluster port, by reason (``eventstream_cluster_peer_refused_total``)."""
        return self.handler.refused

    def refused_reading(self) -> Iterable[tuple[float, dict[str, str]]]:
        """The refusals as a metrics reading (``Metrics.observe``)."""
        return [(count, {"reason": reason}) for reason, count in sorted(self.refused.items()) if reason]

    def link_stats(self) -> dict[str, LinkStats]:
        """Per peer: what its link sent, dropped and how often it reconnected."""
        return {peer: link.stats for peer, link in self._links.items()}

    def peer_client_address(self, peer: str) -> str:
        """The public address ``peer`` announced on its calls ("" until it called)."""
        return self.handler.client_addresses.get(peer, "")

    def snapshots_reading(self) -> Iterable[tuple[float, dict[str, str]]]:
        """Snapshot transfers sent (in whole) and received (checked), as a metrics reading."""
        sent = sum(link.stats.snapshots_sent for link in self._links.values())
        return [(sent, {"direction": "sent"}),
                (self.handler.snapshots_received, {"direction": "received"})]

    def connected_peers(self) -> list[str]:
        """Peers whose stream is open and whose last write went through."""
        return sorted(peer for peer, link in self._links.items() if link.connected)
