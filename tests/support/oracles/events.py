"""PureEncoder: the plain-Python reference of :class:`eventstream.server.native.EventEncoder`.

Pure: no I/O. Same results, byte for byte, written with the field iterator of
:mod:`.wire` and ``bytes`` joins: the reference the property tests compare
the C code with (tests only: it is slow).
"""

from __future__ import annotations

import struct
from array import array

from eventstream.server.native.errors import EBADMSG, EINVAL, raise_for
from eventstream.server.native.events import (
    FRAME_REFUSAL_BASE,
    ID_PREFIX_MAX,
    ROW_BYTES,
    Accepted,
    AcceptedEvents,
    Buffer,
    Limits,
    PlacedRecords,
    Refusal,
)
from eventstream.server.native.wire import FrameReason

from .wire import PureWire, _Bad, _fields, crc32c, topic_check

_ROW = struct.Struct("=10I")
_DUP = struct.Struct("=3q")
_MEDIUM = 3
_TOPIC_REFUSALS = {
    FrameReason.TOPIC_EMPTY: Refusal.TOPIC_EMPTY,
    FrameReason.TOPIC_WILDCARD: Refusal.TOPIC_WILDCARD,
    FrameReason.TOPIC_EMPTY_LEVEL: Refusal.TOPIC_EMPTY_LEVEL,
}
_NOT_UTF8 = {1: Refusal.ID_NOT_UTF8, 2: Refusal.TOPIC_NOT_UTF8, 3: Refusal.KEY_NOT_UTF8}
# A google.protobuf.Timestamp's range: 0001-01-01 .. 9999-12-31T23:59:59.999999999Z.
_SECONDS = range(-62_135_596_800, 253_402_300_799 + 1)
_NANOS = range(1_000_000_000)


def _signed(value: int, bits: int) -> int:
    """A varint's value read as a signed integer of ``bits`` bits (its low bits)."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _header_problem(event: bytes, lo: int, hi: int) -> Refusal | None:
    """Why the map entry at event[lo:hi] cannot be decoded, or None (field order).

    Raises:
        _Bad: malformed wire data.
    """
    for number, wire_type, start, end, _ in _fields(event[:hi], lo, hi):
        if number in (1, 2):
            if wire_type != 2:
                return Refusal.MALFORMED
            try:
                event[start:end].decode("utf-8")
            except UnicodeDecodeError:
                return Refusal.HEADER_NOT_UTF8
    return None


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def _timestamp(tag: int, time_ns: int) -> bytes:
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return _field(tag, b"\x08" + _varint(seconds) + (b"\x10" + _varint(nanos) if nanos else b""))


class PureEncoder:
    """See :class:`eventstream.server.native.EventEncoder`."""

    def __init__(self, limits: Limits, id_prefix: bytes) -> None:
        if len(id_prefix) > ID_PREFIX_MAX:
            raise ValueError(f"id_prefix is longer than {ID_PREFIX_MAX} bytes")
        self._limits = limits
        self._prefix = bytes(id_prefix)
        self.id_counter = 0

    def accept(self, msg: bytes, field: int, varint_field: int = 0) -> Accepted:
        """See :meth:`eventstream.server.native.EventEncoder.accept`."""
        msg = bytes(msg)
        spans, varint = [], 0
        try:
            for number, wire_type, lo, hi, value in _fields(msg):
                if number == field:
                    if wire_type != 2:
                        raise _Bad(EBADMSG)
                    spans.append((lo, hi))
                elif number == varint_field and varint_field:
                    if wire_type != 0:
                        raise _Bad(EBADMSG)
                    varint = value
        except _Bad as bad:
            raise_for(bad.code, "accept")
        groups: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
        bodies = bytearray()
        for index, (lo, hi) in enumerate(spans):
            event = msg[lo:hi]
            reason, cleaned, id_span, topic_span, digest, priority = self._check(event)
            if reason:
                groups[2].append(_ROW.pack(index, reason, lo, hi - lo, 0, 0, 0, 0, 0, 0))
                continue
            base = len(bodies)
            bodies += cleaned
            frame_byte = priority - 1
            groups[0 if frame_byte >= 3 else 1].append(_ROW.pack(
                index, 0, base, len(cleaned), *id_span, *topic_span, digest, frame_byte))
        return Accepted(bytes(bodies), b"".join(groups[0] + groups[1] + groups[2]),
                        len(groups[0]), len(groups[1]), len(groups[2]), varint)

    def accept_frames(self, data: Buffer, *, max_frame: int, final: bool = False
                      ) -> tuple[Accepted, int, int]:
        """See :meth:`eventstream.server.native.EventEncoder.accept_frames`."""
        data = bytes(data)
        table = PureWire().parse_frames(data, max_frame=max_frame, final=final)
        groups: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
        bodies = bytearray()
        fatal = 0
        for i in range(table.count):
            frame = table.row(i)
            if frame.reason in (FrameReason.TRUNCATED, FrameReason.TOO_LONG):
                fatal = int(frame.reason)
                break
            reason = FRAME_REFUSAL_BASE + frame.reason if frame.reason else 0
            if not reason and frame.topic_len > self._limits.max_topic:
                reason = Refusal.TOPIC_TOO_LONG
            elif not reason and frame.payload_len > self._limits.max_payload:
                reason = Refusal.PAYLOAD_TOO_LARGE
            if reason:
                groups[2].append(_ROW.pack(i, reason, frame.offset, frame.length, 0, 0, 0, 0, 0, 0))
                continue
            topic = data[frame.topic_off:frame.topic_off + frame.topic_len]
            payload = data[frame.payload_off:frame.payload_off + frame.payload_len]
            head = b"\x12" + _varint(len(topic))
            event = (head + topic + (_field(0x22, payload) if payload else b"")
                     + bytes([0x28, frame.priority + 1]))
            groups[0 if frame.priority >= 3 else 1].append(_ROW.pack(
                i, 0, len(bodies), len(event), 0, 0, len(head), len(topic), crc32c(topic),
                frame.priority))
            bodies += event
        accepted = Accepted(bytes(bodies), b"".join(groups[0] + groups[1] + groups[2]),
                            len(groups[0]), len(groups[1]), len(groups[2]), 0)
        return accepted, table.consumed, fatal

    def accept_datagrams(self, batch: Buffer, *, max_frame: int) -> Accepted:
        """See :meth:`eventstream.server.native.EventEncoder.accept_datagrams`."""
        batch = bytes(batch)
        groups: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
        bodies = bytearray()
        at = index = 0
        while at < len(batch):
            if len(batch) - at < 4 or int.from_bytes(batch[at:at + 4], "big") > len(batch) - at - 4:
                raise_for(EBADMSG, "accept_datagrams")
            start = at + 4
            at = start + int.from_bytes(batch[start - 4:start], "big")
            data = batch[start:at]
            accepted, consumed, fatal = self.accept_frames(data, max_frame=max_frame, final=True)
            rows = [_ROW.unpack_from(accepted.rows, i * ROW_BYTES)
                    for i in range(len(accepted.rows) // ROW_BYTES)]
            good = accepted.realtime + accepted.batch
            if accepted.refused:
                bad = rows[good]
                before = sum(1 for row in rows[:good] if row[0] < bad[0])
                groups[2].append(_ROW.pack(index, bad[1], start + bad[2], bad[3], before,
                                           0, 0, 0, 0, 0))
            elif fatal:
                declared = int.from_bytes(data[consumed:consumed + 4], "big") + 4
                size = min(declared, len(data) - consumed) if len(data) - consumed >= 4 \
                    else len(data) - consumed
                groups[2].append(_ROW.pack(index, FRAME_REFUSAL_BASE + fatal, start + consumed,
                                           size, good, 0, 0, 0, 0, 0))
            else:
                for row_number, row in enumerate(rows):
                    lane = 0 if row_number < accepted.realtime else 1
                    groups[lane].append(_ROW.pack(index, row[1], row[2] + len(bodies), *row[3:]))
                bodies += accepted.bodies
            index += 1
        return Accepted(bytes(bodies), b"".join(groups[0] + groups[1] + groups[2]),
                        len(groups[0]), len(groups[1]), len(groups[2]), 0)

    def _check(self, event: bytes):
        """(reason, cleaned body, id span, topic span, hash, priority) of one Event."""
        kept: list[bytes] = []
        strings = {1: (0, 0), 2: (0, 0), 3: (0, 0)}
        cleaned_at = {1: 0, 2: 0}
        payload_len, headers, priority, size, start = 0, 0, 0, 0, 0
        time = [0, 0]   # publish_time: seconds, nanos (occurrences merge)
        try:
            # A field starts where the one before it ended.
            for number, wire_type, lo, hi, value in _fields(event):
                if number in (1, 2, 3, 4, 6, 7, 8) and wire_type != 2:
                    return (Refusal.MALFORMED,) + (None,) * 5
                if number in (5, 9, 10) and wire_type != 0:
                    return (Refusal.MALFORMED,) + (None,) * 5
                if number in (1, 2, 3):
                    try:
                        event[lo:hi].decode("utf-8")
                    except UnicodeDecodeError:
                        return (_NOT_UTF8[number],) + (None,) * 5
                    strings[number] = (lo, hi - lo)
                    if number in cleaned_at:
                        cleaned_at[number] = size + (lo - start)
                elif number == 4:
                    payload_len = hi - lo
                elif number == 5:
                    priority = _signed(value, 32)
                elif number == 6:
                    problem = _header_problem(event, lo, hi)
                    if problem is not None:
                        return (problem,) + (None,) * 5
                    headers += 1
                elif number == 7:
                    for inner, inner_type, _, _, inner_value in _fields(event[:hi], lo, hi):
                        if inner in (1, 2):
                            if inner_type != 0:
                                return (Refusal.MALFORMED,) + (None,) * 5
                            time[inner - 1] = _signed(inner_value, 64 if inner == 1 else 32)
                elif number == 8:
                    for _ in _fields(event[:hi], lo, hi):
                        pass
                if number not in (5, 8, 9, 10):
                    kept.append(event[start:hi])
                    size += hi - start
                start = hi
        except _Bad:
            return (Refusal.MALFORMED,) + (None,) * 5
        if time[0] not in _SECONDS or time[1] not in _NANOS:
            return (Refusal.PUBLISH_TIME_OUT_OF_RANGE,) + (None,) * 5
        limits = self._limits
        topic = event[strings[2][0]:sum(strings[2])]
        problem = topic_check(topic)
        if problem in _TOPIC_REFUSALS:
            return (_TOPIC_REFUSALS[problem],) + (None,) * 5
        checks = (
            (len(topic) > limits.max_topic, Refusal.TOPIC_TOO_LONG),
            (payload_len > limits.max_payload, Refusal.PAYLOAD_TOO_LARGE),
            (not 0 <= priority <= 5, Refusal.PRIORITY_UNKNOWN),
            (strings[1][1] > limits.max_id, Refusal.ID_TOO_LONG),
            (strings[3][1] > limits.max_key, Refusal.KEY_TOO_LONG),
            (headers > limits.max_headers, Refusal.TOO_MANY_HEADERS),
            (0 < limits.max_event < len(event), Refusal.TOO_LARGE),
        )
        for failed, reason in checks:
            if failed:
                return (reason,) + (None,) * 5
        effective = priority or _MEDIUM
        key = event[strings[3][0]:sum(strings[3])]
        digest = crc32c(key if key else topic)
        cleaned = b"".join(kept) + bytes([0x28, effective])
        id_span = (cleaned_at[1] if strings[1][1] else 0, strings[1][1])
        topic_span = (cleaned_at[2] if strings[2][1] else 0, strings[2][1])
        return Refusal.OK, cleaned, id_span, topic_span, digest, effective

    def place(self, events: AcceptedEvents, dups: bytes | None, next_offsets: array,
              *, time_ns: int, durability: int, result_tag: int) -> PlacedRecords:
        """See :meth:`eventstream.server.native.EventEncoder.place`."""
        bodies, rows = events.bodies, events.rows
        n = len(rows) // ROW_BYTES
        table = [_ROW.unpack_from(rows, i * ROW_BYTES) for i in range(n)]
        verdicts = ([_DUP.unpack_from(dups, i * _DUP.size) for i in range(n)] if dups
                    else [(-1, 0, 0)] * n)
        if any(row[1] for row in table) or time_ns < 0:
            raise_for(EINVAL, "place")
        partitions = len(next_offsets)
        positions: list[tuple[int, int]] = []
        ids: list[bytes] = []
        generated_ids: list[bytes | None] = []
        for i, row in enumerate(table):
            _, _, body_off, _, id_off, id_len, *_rest = row
            dup = verdicts[i][0]
            given = bodies[body_off + id_off:body_off + id_off + id_len] if id_len else None
            generated = None
            if dup == -1:
                partition = row[8] % partitions
                positions.append((partition, next_offsets[partition]))
                next_offsets[partition] += 1
                if given is None:
                    self.id_counter += 1
                    generated = self._prefix + format(self.id_counter, "x").encode()
            elif dup >= 0:
                positions.append((dup, verdicts[i][1]))
            else:
                j = -2 - dup
                if j >= i or verdicts[j][0] != -1:
                    raise_for(EINVAL, "place")
                positions.append(positions[j])
            generated_ids.append(generated)
            ids.append(given if given is not None else generated or b"")
        time_field = _timestamp(0x42, time_ns)
        records, ends, topics, priorities = bytearray(), [], [], bytearray()
        part_counts = [0] * partitions
        new_rows = [i for i in range(n) if verdicts[i][0] == -1]
        for i in sorted(new_rows, key=lambda i: positions[i][0]):  # stable: row order kept
            row = table[i]
            partition, offset = positions[i]
            body = bodies[row[2]:row[2] + row[3]]
            id_field = _field(0x0a, ids[i]) if generated_ids[i] is not None else b""
            content = (body + id_field + time_field + b"\x48" + _varint(partition)
                       + b"\x50" + _varint(offset))
            header = b"\x0a" + _varint(len(content))
            topics += [len(records) + len(header) + row[6], row[7]]
            records += header + content
            ends.append(len(records))
            priorities.append(row[9])
            part_counts[partition] += 1
        results = bytearray()
        for i in range(n):
            dup, _, dup_time = verdicts[i]
            partition, offset = positions[i]
            ack = (_field(0x0a, ids[i]) + b"\x10" + _varint(partition) + b"\x18" + _varint(offset)
                   + (b"\x20\x01" if dup != -1 else b"") + b"\x28" + _varint(durability)
                   + _timestamp(0x32, dup_time if dup >= 0 else time_ns))
            result = _field(0x0a, ack)
            results += _field(result_tag, result) if result_tag else result
        flat_positions = array("Q", [value for pair in positions for value in pair])
        return PlacedRecords(bytes(records), memoryview(array("I", ends)),
                             memoryview(array("I", topics)), bytes(priorities), part_counts,
                             memoryview(flat_positions), bytes(results))

