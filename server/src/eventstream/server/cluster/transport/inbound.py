"""The receiving half: the PeerService handlers, behind the identity check, on the cluster port.

One generic handler sees every call before any byte of its requests is
read: a call that fails :func:`~.identity.check_call` (another service,
missing identity, another cluster, an unknown node, another recipient) is
answered with its refusal at once and counted. ``Exchange`` streams decode
each batch and hand it to the driver's inbox, waiting while the inbox is
full (so a flood from one peer stops being read rather than growing a
queue); ``InstallSnapshot`` streams are written to a temporary file, within
a size bound, and handed over as one message once their CRC-32 holds;
``Forward`` streams go to the write path (``forward.py``), ``RelayConsume``
streams to the consumer groups (``relay.py``); ``Join`` calls, the one
method a node that is not a peer yet may call when it is plausible, go to
the membership (``join.py``).

When the peer set changes, the ``Exchange``, ``InstallSnapshot`` and
``Forward`` streams of a node that is no longer a peer are ended at once
(PERMISSION_DENIED, counted as ``unknown_node``): a removed member's stream
opened before its removal does not keep flowing.
"""

from __future__ import annotations

import asyncio
import collections
import tempfile
from collections.abc import AsyncIterator, Callable, Collection
from typing import TYPE_CHECKING, Any

import grpc

from eventstream.peer.v1 import raft_pb2 as pb

from ..ports import Inbox
from .convert import InvalidBatch, SnapshotAssembler, SnapshotRefused, decode_batch
from .forward import ForwardTarget, forward_handler
from .identity import JOIN, SERVICE, Admit, Refusal, check_call, client_address
from .join import JoinTarget, join_handler
from .relay import RELAY_CONSUME, RelayTarget, relay_handler

_Context = grpc.aio.ServicerContext[Any, Any]
if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
_EXCHANGE = f"/{SERVICE}/Exchange"
_SNAPSHOT = f"/{SERVICE}/InstallSnapshot"


class PeerHandler(grpc.GenericRpcHandler):
    """Serves PeerService on the cluster port to the known peers of one cluster.

    Args:
        node_id: this node's id.
        cluster_id: the cluster's id.
        peers: the node ids allowed to call.
        group_ids: the Raft groups this node serves.
        inbox: returns the driver's inbox (None until bound).
        max_snapshot_bytes: most data bytes of one snapshot.
        spool_dir: where a snapshot being received is written (None: the
            system's temporary directory).
    """

    def __init__(self, node_id: str, cluster_id: str, peers: Collection[str], group_ids: Collection[int],
                 inbox: Callable[[], Inbox | None], *, max_snapshot_bytes: int,
                 spool_dir: str | None = None) -> None:
        self._node_id = node_id
        self._cluster_id = cluster_id
        self._peers = frozenset(peers)
        self._groups = frozenset(group_ids)
        self._inbox = inbox
        self._max_snapshot_bytes = max_snapshot_bytes
        self._spool_dir = spool_dir
        self.snapshots_received = 0
        """Snapshot streams taken in whole (checksum checked) and handed to the driver."""
        self.refused: collections.Counter[str] = collections.Counter()
        """Calls (or streams cut short) refused, by reason."""
        self.received_messages = 0
        self.received_requests = 0
        self.forward_target: ForwardTarget | None = None
        """Serves requests forwarded by followers (None: answered UNIMPLEMENTED)."""
        self.relay_target: RelayTarget | None = None
        """Serves the group members followers relay (None: answered UNAVAILABLE)."""
        self.client_addresses: dict[str, str] = {}
        """Peer -> the public address its calls announced (for leader hints)."""
        self.join_target: JoinTarget | None = None
        """Answers Join calls (None: answered UNAVAILABLE)."""
        self.admit: Admit | None = None
        """Whether a node that is not a peer may call Join (None: none may)."""
        self._streams: dict[str, set[asyncio.Task[Any]]] = {}
        """Peer -> the tasks serving its open streams (ended when it stops being a peer)."""

    def set_peers(self, peers: Collection[str]) -> None:
        """Allow calls from ``peers`` only, from now on; end the open streams of the others."""
        self._peers = frozenset(peers)
        for sender, tasks in self._streams.items():
            if sender not in self._peers:
                for task in tasks:
                    task.cancel()

    def _while_peer(self, sender: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        """``behaviour`` of a stream from ``sender``, ended with ``unknown_node`` once it is not a peer."""
        async def serve(requests: AsyncIterator[Any], context: _Context) -> Any:
            task = asyncio.current_task()
            assert task is not None
            self._streams.setdefault(sender, set()).add(task)
            try:
                return await behaviour(requests, context)
            except asyncio.CancelledError:
                if sender in self._peers:
                    raise  # the server stops, or the caller went away
                task.uncancel()
                await self._abort(context, Refusal(
                    "unknown_node", grpc.StatusCode.PERMISSION_DENIED,
                    f"{sender!r} is no longer a peer of {self._node_id!r}"))
            finally:
                tasks = self._streams.get(sender)
                if tasks is not None:
                    tasks.discard(task)
                    if not tasks:
                        del self._streams[sender]
        return serve

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> _Handler | None:
        """The handler of a call: a refusal, or the method's handler for a checked peer."""
        method = handler_call_details.method
        sender, refusal = check_call(method, handler_call_details.invocation_metadata,
                                     cluster_id=self._cluster_id, node_id=self._node_id, peers=self._peers,
                                     admit=self.admit)
        if refusal is not None:
            self.refused[refusal.reason] += 1
            return grpc.stream_stream_rpc_method_handler(_refuse(refusal))
        if method == JOIN:  # before recording anything of a caller that may not be a peer
            return join_handler(sender, lambda: self.join_target, self._refused_joiner)
        announced = client_address(handler_call_details.invocation_metadata)
        if announced:
            self.client_addresses[sender] = announced
        if method == _EXCHANGE:
            return grpc.stream_unary_rpc_method_handler(
                self._while_peer(sender, self._exchange_handler(sender)),
                request_deserializer=pb.ExchangeRequest.FromString,
                response_serializer=pb.ExchangeResponse.SerializeToString)
        if method == _SNAPSHOT:
            return grpc.stream_unary_rpc_method_handler(
                self._while_peer(sender, self._snapshot_handler(sender)),
                request_deserializer=pb.InstallSnapshotRequest.FromString,
                response_serializer=pb.InstallSnapshotResponse.SerializeToString)
        if method == RELAY_CONSUME:
            return relay_handler(self._node_id, lambda: self.relay_target)
        return grpc.stream_stream_rpc_method_handler(
            self._while_peer(sender, forward_handler(sender, self._node_id, self._groups,
                                                     lambda: self.forward_target)),
            request_deserializer=pb.ForwardRequest.FromString,
            response_serializer=pb.ForwardResponse.SerializeToString)

    def _refused_joiner(self) -> None:
        self.refused["implausible_joiner"] += 1

    async def _abort(self, context: _Context, refusal: Refusal) -> None:
        self.refused[refusal.reason] += 1
        await context.abort(refusal.code, refusal.details)

    async def _ready_inbox(self, context: _Context) -> Inbox:
        inbox = self._inbox()
        if inbox is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"node {self._node_id} is starting")
        assert inbox is not None
        return inbox

    def _exchange_handler(self, sender: str) -> Callable[..., Any]:
        async def exchange(requests: AsyncIterator[pb.ExchangeRequest],
                           context: _Context) -> pb.ExchangeResponse:
            inbox = await self._ready_inbox(context)
            async for request in requests:
                if request.group_id not in self._groups:
                    await self._abort(context, Refusal("unknown_group", grpc.StatusCode.NOT_FOUND,
                                                       f"group_id: node {self._node_id} is not in group "
                                                       f"{request.group_id}"))
                try:
                    messages = decode_batch(request, sender, self._node_id)
                except InvalidBatch as error:
                    await self._abort(context, _invalid(error))
                self.received_requests += 1
                self.received_messages += len(messages)
                await inbox.deliver(messages)
            return pb.ExchangeResponse()
        return exchange

    def _snapshot_handler(self, sender: str) -> Callable[..., Any]:
        async def install(requests: AsyncIterator[pb.InstallSnapshotRequest],
                          context: _Context) -> pb.InstallSnapshotResponse:
            inbox = await self._ready_inbox(context)
            # The chunks go to a temporary file (gone once closed, also after a crash), not
            # to memory, until the whole stream is in and its checksum holds.
            with tempfile.TemporaryFile(dir=self._spool_dir, prefix="snapshot-") as spool:
                assembler = SnapshotAssembler(sender, self._node_id, self._max_snapshot_bytes, spool)
                try:
                    async for request in requests:
                        if assembler.group_id is None and request.group_id not in self._groups:
                            await self._abort(context, Refusal(
                                "unknown_group", grpc.StatusCode.NOT_FOUND,
                                f"group_id: node {self._node_id} is not in group {request.group_id}"))
                        assembler.add(request)
                    assembler.check()
                    spool.seek(0)
                    message = assembler.message(spool.read())
                except SnapshotRefused as error:
                    await self._abort(context, Refusal(error.reason, grpc.StatusCode.INVALID_ARGUMENT,
                                                       str(error)))
                except InvalidBatch as error:
                    await self._abort(context, _invalid(error))
            self.snapshots_received += 1
            await inbox.deliver([message])
            return pb.InstallSnapshotResponse()
        return install


def _invalid(error: InvalidBatch) -> Refusal:
    return Refusal("invalid", grpc.StatusCode.INVALID_ARGUMENT, str(error))


def _refuse(refusal: Refusal) -> Callable[..., Any]:
    async def refuse(requests: AsyncIterator[bytes], context: _Context) -> None:
        await context.abort(refusal.code, refusal.details)
    return refuse
