"""Raft messages to and from the peer protocol (``eventstream.peer.v1``).

Pure: no I/O. The sender and recipient of a message are not on the wire:
they are the stream's, taken from its checked metadata, so a peer cannot
speak for another node. Decoding checks what the core relies on (a known
message type, known entry kinds, entries that follow on with terms that never
go down, a well-formed membership) and raises
:class:`InvalidBatch` naming the field; sizes are bounded by the gRPC
server's receive limit.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from eventstream.peer.v1 import raft_pb2 as pb
from eventstream.server.raft import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Membership,
    MembershipError,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    Snapshot,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)

ENTRY_OVERHEAD = 32
"""Bytes counted per entry besides its data when batches are sized (its framing)."""
MESSAGE_OVERHEAD = 64
"""Bytes counted per message besides its entries and contexts."""
_KINDS = {kind.value: kind for kind in EntryKind}


class InvalidBatch(ValueError):
    """A request from a peer does not hold valid Raft messages; the message names the field."""


# ----------------------------------------------------------------------
# Encoding.

def _encode_one(m: Message) -> pb.RaftMessage:
    """Any message but an append (framed by :func:`encode_batch` itself) as its protobuf."""
    if type(m) is AppendResponse:
        return pb.RaftMessage(term=m.term, append_response=pb.AppendResponse(
            index=m.index, reject=m.reject, reject_hint=m.reject_hint, log_term=m.log_term))
    if type(m) is Heartbeat:
        return pb.RaftMessage(term=m.term, heartbeat=pb.Heartbeat(
            commit=m.commit, context=m.context, sent_at=m.sent_at))
    if type(m) is HeartbeatResponse:
        return pb.RaftMessage(term=m.term, heartbeat_response=pb.HeartbeatResponse(
            context=m.context, sent_at=m.sent_at))
    if type(m) is VoteRequest:
        return pb.RaftMessage(term=m.term, vote_request=pb.VoteRequest(
            last_index=m.last_index, last_term=m.last_term, pre_vote=m.pre_vote, transfer=m.transfer))
    if type(m) is VoteResponse:
        return pb.RaftMessage(term=m.term, vote_response=pb.VoteResponse(
            granted=m.granted, pre_vote=m.pre_vote))
    if type(m) is TimeoutNow:
        return pb.RaftMessage(term=m.term, timeout_now=pb.TimeoutNow())
    if type(m) is ReadIndexRequest:
        return pb.RaftMessage(term=m.term, read_index_request=pb.ReadIndexRequest(context=m.context))
    if type(m) is ReadIndexResponse:
        return pb.RaftMessage(term=m.term, read_index_response=pb.ReadIndexResponse(
            index=m.index, context=m.context))
    raise TypeError(f"{type(m).__name__} is not sent in an Exchange stream")


def encode_batch(group_id: int, messages: Iterable[Message]) -> bytes:
    """One request of an Exchange stream, encoded: ``messages`` (all of ``group_id``, none a snapshot).

    The bytes are an ``ExchangeRequest``. Appends are framed here rather
    than built as protobuf objects: each entry's payload is copied once, into
    the request, instead of into a message object and again by its
    serialization (the payloads are most of the bytes a leader sends).
    """
    parts: list[bytes | memoryview] = [b"\x08" + _varint(group_id)] if group_id else []
    append = parts.append
    for m in messages:
        if type(m) is AppendEntries:
            body = _append_body(m)
            size = sum(map(len, body))
            message = [b"\x08" + _varint(m.term), b"\x12" + _varint(size)] if m.term else [
                b"\x12" + _varint(size)]
            size += sum(map(len, message))
            append(b"\x12" + _varint(size))
            parts.extend(message)
            parts.extend(body)
        else:
            raw = _encode_one(m).SerializeToString()
            append(b"\x12" + _varint(len(raw)))
            append(raw)
    return b"".join(parts)


def _append_body(m: AppendEntries) -> list[bytes | memoryview]:
    """The fields of an ``AppendEntries`` message, as a list of buffers to join.

    Entry payloads go in as they are (a view into the log's buffer is not copied).
    """
    head = b"".join((b"\x08" + _varint(m.index) if m.index else b"",
                     b"\x10" + _varint(m.log_term) if m.log_term else b""))
    body: list[bytes | memoryview] = [head] if head else []
    for entry in m.entries:
        data = entry.data
        fields = b"".join((b"\x08" + _varint(entry.index) if entry.index else b"",
                           b"\x10" + _varint(entry.term) if entry.term else b"",
                           b"\x18" + _varint(entry.kind) if entry.kind else b"",
                           b"\x22" + _varint(len(data)) if data else b""))
        body.append(b"\x1a" + _varint(len(fields) + len(data)) + fields)
        if data:
            body.append(data)
    if m.commit:
        body.append(b"\x20" + _varint(m.commit))
    return body


def _varint(value: int) -> bytes:
    """``value`` (0 to 2**64 - 1) as a protobuf varint."""
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [bytes((value,)) for value in range(0x80)]


def message_size(m: Message) -> int:
    """Bytes ``m`` is counted for when batches are sized (close to its encoded size)."""
    if type(m) is AppendEntries:
        entries = m.entries
        return MESSAGE_OVERHEAD + sum(len(e.data) for e in entries) + ENTRY_OVERHEAD * len(entries)
    if type(m) is InstallSnapshot:
        return MESSAGE_OVERHEAD + len(m.snapshot.data)
    return MESSAGE_OVERHEAD + len(getattr(m, "context", b""))


def snapshot_requests(m: InstallSnapshot, chunk_bytes: int,
                      data: bytes | None = None) -> Iterable[pb.InstallSnapshotRequest]:
    """The requests of an InstallSnapshot stream: the header, then the data in chunks.

    ``data`` is what the stream carries (default: the snapshot's own data).
    """
    snapshot = m.snapshot
    if data is None:
        data = snapshot.data
    yield pb.InstallSnapshotRequest(group_id=m.group_id, header=pb.SnapshotHeader(
        term=m.term, index=snapshot.index, snapshot_term=snapshot.term,
        voters=sorted(snapshot.membership.voters), learners=sorted(snapshot.membership.learners),
        data_bytes=len(data), data_crc32=zlib.crc32(data)))
    view = memoryview(data)
    for start in range(0, len(data), chunk_bytes):
        yield pb.InstallSnapshotRequest(group_id=m.group_id, chunk=bytes(view[start:start + chunk_bytes]))


# ----------------------------------------------------------------------
# Decoding.

def _decode_entries(entries: Iterable[pb.Entry], after: int, after_term: int, term: int,
                    where: str) -> list[Entry]:
    """The entries of an append following entry ``after`` (of ``after_term``), sent in ``term``.

    Raises:
        InvalidBatch: an unknown kind, an index that does not follow on, or a
            term that goes down or past the sender's (the log would not hold).
    """
    kinds = _KINDS
    out = []
    previous = after_term
    for number, e in enumerate(entries, 1):
        kind = kinds.get(e.kind)
        if kind is None:
            raise InvalidBatch(f"{where}.entries[{number - 1}].kind: unknown entry kind {e.kind}")
        if e.index != after + number:
            raise InvalidBatch(f"{where}.entries[{number - 1}].index: {e.index}, expected {after + number}")
        if not previous <= e.term <= term:
            raise InvalidBatch(f"{where}.entries[{number - 1}].term: {e.term}, expected {previous} to {term}")
        previous = e.term
        out.append(Entry(e.index, e.term, kind, e.data))
    return out


def _append(group: int, sender: str, recipient: str, term: int, b: Any, where: str) -> Message:
    return AppendEntries(group, sender, recipient, term, b.index, b.log_term,
                         _decode_entries(b.entries, b.index, b.log_term, term, where), b.commit)


_DECODERS: dict[str, Callable[[int, str, str, int, Any, str], Message]] = {
    "append_entries": _append,
    "append_response": lambda g, s, r, t, b, _: AppendResponse(g, s, r, t, b.index, b.reject,
                                                               b.reject_hint, b.log_term),
    "heartbeat": lambda g, s, r, t, b, _: Heartbeat(g, s, r, t, b.commit, b.context, b.sent_at),
    "heartbeat_response": lambda g, s, r, t, b, _: HeartbeatResponse(g, s, r, t, b.context, b.sent_at),
    "vote_request": lambda g, s, r, t, b, _: VoteRequest(g, s, r, t, b.last_index, b.last_term,
                                                         b.pre_vote, b.transfer),
    "vote_response": lambda g, s, r, t, b, _: VoteResponse(g, s, r, t, b.granted, b.pre_vote),
    "timeout_now": lambda g, s, r, t, b, _: TimeoutNow(g, s, r, t),
    "read_index_request": lambda g, s, r, t, b, _: ReadIndexRequest(g, s, r, t, b.context),
    "read_index_response": lambda g, s, r, t, b, _: ReadIndexResponse(g, s, r, t, b.index, b.context),
}


def decode_batch(request: pb.ExchangeRequest, sender: str, recipient: str) -> list[Message]:
    """The Raft messages of one Exchange request, from ``sender`` to ``recipient``.

    Raises:
        InvalidBatch: a message without a body, or an entry of an unknown kind.
    """
    group = request.group_id
    out = []
    for number, raw in enumerate(request.messages):
        body_name = raw.WhichOneof("body")
        if body_name is None:
            raise InvalidBatch(f"messages[{number}]: no message body")
        decoder = _DECODERS[body_name]
        out.append(decoder(group, sender, recipient, raw.term, getattr(raw, body_name),
                           f"messages[{number}].{body_name}"))
    return out


class SnapshotRefused(InvalidBatch):
    """A snapshot stream refused for its data.

    ``reason`` (the refusal's metric label) is ``snapshot_too_large`` or ``snapshot_damaged``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Spool(Protocol):
    """Where a snapshot's chunks are written as they arrive (a temporary file)."""

    def write(self, data: bytes, /) -> int:
        """Append ``data``."""
        ...


class SnapshotAssembler:
    """Checks the requests of one InstallSnapshot stream and writes its data to a spool.

    Args:
        sender: the stream's node.
        recipient: this node.
        max_bytes: most data bytes a snapshot may declare.
        spool: where the chunks go, in order.
    """

    def __init__(self, sender: str, recipient: str, max_bytes: int, spool: Spool) -> None:
        self._sender = sender
        self._recipient = recipient
        self._max_bytes = max_bytes
        self._spool = spool
        self._group: int | None = None
        self._header: pb.SnapshotHeader | None = None
        self._received = 0
        self._crc = 0

    def add(self, request: pb.InstallSnapshotRequest) -> None:
        """Take the next request.

        Raises:
            InvalidBatch: the header is missing or repeated, or the group changes.
            SnapshotRefused: the header declares more than the limit, or the
                chunks exceed what it declared.
        """
        part = request.WhichOneof("part")
        if self._header is None:
            if part != "header":
                raise InvalidBatch("header: the first request of a snapshot must carry its header")
            header = request.header
            if header.data_bytes > self._max_bytes:
                raise SnapshotRefused("snapshot_too_large", f"header.data_bytes: {header.data_bytes} "
                                      f"bytes is over the limit of {self._max_bytes}")
            self._group = request.group_id
            self._header = header
            return
        if request.group_id != self._group:
            raise InvalidBatch(f"group_id: {request.group_id} in a snapshot of group {self._group}")
        if part != "chunk":
            raise InvalidBatch("chunk: only chunks may follow the header")
        chunk = request.chunk
        if self._received + len(chunk) > self._header.data_bytes:
            raise SnapshotRefused("snapshot_too_large", f"chunk: more than the "
                                  f"{self._header.data_bytes} bytes the header declared")
        self._spool.write(chunk)
        self._received += len(chunk)
        self._crc = zlib.crc32(chunk, self._crc)

    @property
    def group_id(self) -> int | None:
        """The snapshot's group (None before the header)."""
        return self._group

    def check(self) -> None:
        """The stream ended: check that the whole data arrived, undamaged.

        Raises:
            InvalidBatch: no header.
            SnapshotRefused: fewer bytes than declared, or a CRC that does not match.
        """
        header = self._header
        if header is None or self._group is None:
            raise InvalidBatch("header: the stream ended before a snapshot header")
        if self._received != header.data_bytes:
            raise SnapshotRefused("snapshot_damaged", f"chunk: {self._received} of the "
                                  f"{header.data_bytes} bytes declared arrived")
        if self._crc != header.data_crc32:
            raise SnapshotRefused("snapshot_damaged", f"header.data_crc32: the data's CRC-32 is "
                                  f"{self._crc:#010x}, the header says {header.data_crc32:#010x}")

    def message(self, data: bytes) -> InstallSnapshot:
        """The whole snapshot as a Raft message, ``data`` read back from the spool after :meth:`check`.

        Raises:
            InvalidBatch: a bad membership.
        """
        header = self._header
        assert header is not None and self._group is not None
        try:
            membership = Membership(frozenset(header.voters), frozenset(header.learners))
        except MembershipError as error:
            raise InvalidBatch(f"header.voters: {error}") from None
        snapshot = Snapshot(header.index, header.snapshot_term, membership, data)
        return InstallSnapshot(self._group, self._sender, self._recipient, header.term, snapshot)
