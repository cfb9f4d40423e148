"""Cluster membership: who votes, who only follows, and how a change is encoded.

Pure: no I/O, clock or randomness.

A :class:`Membership` is the set of voters (counted in quorums) and learners
(non-voting members that receive the log, e.g. read replicas or a new node
catching up before it is promoted). It changes one server at a time through
``MEMBERSHIP`` log entries, each holding a :class:`MembershipChange` and the
membership that results from it. A change takes effect on a node when the
entry is applied (after it is committed), so at any moment two nodes differ
by at most one change and every majority of the old membership overlaps
every majority of the new one.

Entry data format (big-endian)::

    u8  version (1, or 2 when the membership has addresses)
    u8  op (MembershipOp)
    u16 length, then the node id of the change (UTF-8)
    u16 voter count, then for each voter: u16 length, id (UTF-8)
    u16 learner count, then for each learner: u16 length, id (UTF-8)
    version 2 only:
    u16 address count, then for each: u16 length, id, u16 length, address (UTF-8)

Ids are written sorted, so one membership always encodes to the same bytes.
Carrying the resulting membership, not only the change, lets a node that
starts from an empty log learn the whole membership from the first
``MEMBERSHIP`` entry it applies. Addresses are opaque to the core: the
server records there the cluster address of each member added through the
log (``host:port``), so that every node that applies the entry can reach it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

FORMAT_VERSION = 1
ADDRESSES_FORMAT_VERSION = 2
"""The entry format version that adds the member address table."""
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_MAX_ID_BYTES = 0xFFFF


class MembershipError(ValueError):
    """A membership change is invalid, or a membership entry is malformed."""


class MembershipOp(IntEnum):
    """What a membership change does.

    Values are APPEND-ONLY: they are stored in log entries, so an existing
    value must never be renumbered or reused.
    """

    ADD_VOTER = 1
    ADD_LEARNER = 2
    PROMOTE_LEARNER = 3
    REMOVE_NODE = 4


@dataclass(frozen=True, slots=True)
class Membership:
    """The voters and learners of a group; a node is never both.

    ``addresses`` holds (node id, address) pairs sorted by id, for the
    members whose address was given with their addition (opaque here).
    """

    voters: frozenset[str] = frozenset()
    learners: frozenset[str] = frozenset()
    addresses: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.voters & self.learners:
            raise MembershipError(f"nodes both voter and learner: {sorted(self.voters & self.learners)}")
        strangers = [node for node, _ in self.addresses if node not in self]
        if strangers:
            raise MembershipError(f"addresses of nodes that are not members: {strangers}")

    def address_map(self) -> dict[str, str]:
        """Node id -> address, for the members that have one."""
        return dict(self.addresses)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.voters or node_id in self.learners

    def members(self) -> list[str]:
        """Voters and learners, sorted by id (the order the core iterates in)."""
        return sorted(self.voters | self.learners)

    def describe(self) -> str:
        """A short readable form, e.g. ``voters=a,b,c learners=d``."""
        text = "voters=" + ",".join(sorted(self.voters))
        if self.learners:
            text += " learners=" + ",".join(sorted(self.learners))
        return text


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """One single-server change: add a voter or learner, promote, or remove.

    ``address`` (optional, for an addition) is recorded in the resulting
    membership's addresses.
    """

    op: MembershipOp
    node_id: str
    address: str = ""

    def describe(self) -> str:
        """A short readable form, e.g. ``add-voter n4``."""
        return f"{self.op.name.lower().replace('_', '-')} {self.node_id}"


def apply_change(membership: Membership, change: MembershipChange) -> Membership:
    """The membership after ``change``.

    Raises:
        MembershipError: the change does not fit the membership (adding a
            member twice, promoting a non-learner, removing a stranger or
            the last voter, or an empty node id).
    """
    node = change.node_id
    if not node:
        raise MembershipError("a membership change needs a node id")
    voters, learners = membership.voters, membership.learners
    kept = tuple(pair for pair in membership.addresses if pair[0] != node)
    if change.op in (MembershipOp.ADD_VOTER, MembershipOp.ADD_LEARNER):
        if node in membership:
            raise MembershipError(f"{node} is already a member")
        added = tuple(sorted((*kept, (node, change.address)))) if change.address else kept
        if change.op == MembershipOp.ADD_VOTER:
            return Membership(voters | {node}, learners, added)
        return Membership(voters, learners | {node}, added)
    if change.op == MembershipOp.PROMOTE_LEARNER:
        if node not in learners:
            raise MembershipError(f"{node} is not a learner")
        return Membership(voters | {node}, learners - {node}, membership.addresses)
    if change.op == MembershipOp.REMOVE_NODE:
        if node not in membership:
            raise MembershipError(f"{node} is not a member")
        if voters == {node}:
            raise MembershipError(f"{node} is the last voter")
        return Membership(voters - {node}, learners - {node}, kept)
    raise MembershipError(f"unknown membership op {change.op!r}")


def encode_membership_entry(change: MembershipChange, result: Membership) -> bytes:
    """The data of a ``MEMBERSHIP`` entry (format in the module docstring)."""
    out = bytearray(_U8.pack(ADDRESSES_FORMAT_VERSION if result.addresses else FORMAT_VERSION))
    out += _U8.pack(int(change.op))
    _put_id(out, change.node_id)
    for group in (result.voters, result.learners):
        out += _U16.pack(len(group))
        for node in sorted(group):
            _put_id(out, node)
    if result.addresses:
        out += _U16.pack(len(result.addresses))
        for node, address in result.addresses:
            _put_id(out, node)
            _put_id(out, address)
    return bytes(out)


def decode_membership_entry(data: bytes | memoryview) -> tuple[MembershipChange, Membership]:
    """The change and resulting membership held by a ``MEMBERSHIP`` entry.

    Raises:
        MembershipError: unknown version or op, truncated or trailing bytes,
            or ids that are not UTF-8.
    """
    reader = _Reader(data)
    version = reader.u8()
    if version not in (FORMAT_VERSION, ADDRESSES_FORMAT_VERSION):
        raise MembershipError(f"membership entry version {version} is not supported")
    op_value = reader.u8()
    try:
        op = MembershipOp(op_value)
    except ValueError:
        raise MembershipError(f"unknown membership op {op_value}") from None
    node = reader.node_id()
    voters = frozenset(reader.node_id() for _ in range(reader.u16()))
    learners = frozenset(reader.node_id() for _ in range(reader.u16()))
    addresses: tuple[tuple[str, str], ...] = ()
    if version == ADDRESSES_FORMAT_VERSION:
        addresses = tuple(sorted((reader.node_id(), reader.node_id())
                                 for _ in range(reader.u16())))
    if reader.remaining():
        raise MembershipError(f"{reader.remaining()} trailing bytes after a membership entry")
    address = dict(addresses).get(node, "") if op in (MembershipOp.ADD_VOTER,
                                                      MembershipOp.ADD_LEARNER) else ""
    return MembershipChange(op, node, address), Membership(voters, learners, addresses)


def _put_id(out: bytearray, node_id: str) -> None:
    encoded = node_id.encode()
    if not encoded or len(encoded) > _MAX_ID_BYTES:
        raise MembershipError(f"node id must be 1..{_MAX_ID_BYTES} bytes, got {len(encoded)}")
    out += _U16.pack(len(encoded))
    out += encoded


class _Reader:
    """Bounds-checked reads from a membership entry."""

    __slots__ = ("_at", "_data")

    def __init__(self, data: bytes | memoryview) -> None:
        self._data = bytes(data)
        self._at = 0

    def _take(self, size: int) -> bytes:
        end = self._at + size
        if end > len(self._data):
            raise MembershipError("membership entry is truncated")
        chunk = self._data[self._at:end]
        self._at = end
        return chunk

    def u8(self) -> int:
        return int(_U8.unpack(self._take(1))[0])

    def u16(self) -> int:
        return int(_U16.unpack(self._take(2))[0])

    def node_id(self) -> str:
        raw = self._take(self.u16())
        if not raw:
            raise MembershipError("empty node id in a membership entry")
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise MembershipError("node id in a membership entry is not UTF-8") from None

    def remaining(self) -> int:
        return len(self._data) - self._at
