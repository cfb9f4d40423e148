"""The replicated state of consumer groups: what GROUPS entries say, applied on every node.

Pure: no I/O or clock (times come from the entries). A GROUPS entry is a
list of operations on the table of groups, proposed by the group
coordinator of the leader and applied by every node in log order, so every
node that applied the same entries holds the same table:

- ``upsert``: a group's settings (patterns, minimum priority, start
  position, delivery settings), its committed offset in every partition and
  how many of its events went to its dead-letter topic. Written when a
  group is created (its first member joins) and whenever its committed
  offsets or dead-letter count moved (the coordinator proposes the moved
  ones periodically, as often as it used to save them).
- ``delete``: the group was forgotten (no member for
  ``groups.idle_expiry_seconds``).

What is *not* in the log: members, assignments, deliveries in flight and
acknowledgements not yet folded into a committed offset. Those belong to
the Consume streams of one node and end with them; a member that comes back
(after a restart or, with replication, on the new leader) resumes from the
committed offsets, and events delivered but not committed are delivered
again (at-least-once). Putting each join, leave or ack in the log would
write it on every rebalance and every ack without making delivery more
exactly-once.

Payload format (append-only; UTF-8 JSON, one object)::

    {"version": 1, "time_ns": <leader's wall clock>, "ops": [
        {"op": "upsert", "group": NAME, "settings": {...}, "offsets": [..],
         "dead_lettered": N},
        {"op": "delete", "group": NAME}]}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """What a member asks for when it joins (defaults already applied)."""

    patterns: tuple[str, ...]
    min_priority: int          # frame byte, 0 delivers all
    start_latest: bool
    max_in_flight: int
    ack_deadline_ns: int
    max_deliveries: int


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """One group as the log says it is."""

    settings: GroupSettings
    offsets: tuple[int, ...]
    """The committed offset of every partition: where the group resumes."""
    dead_lettered: int
    """Events of the group moved to its dead-letter topic, ever."""
    updated_ns: int
    """Leader's wall clock in the entry that last wrote it."""


class GroupEntryError(ValueError):
    """A GROUPS payload that is not one of this format."""


def upsert(name: str, settings: GroupSettings, offsets: list[int] | tuple[int, ...],
           dead_lettered: int) -> dict[str, Any]:
    """The operation that writes group ``name`` whole."""
    return {"op": "upsert", "group": name, "settings": _settings_json(settings),
            "offsets": list(offsets), "dead_lettered": dead_lettered}


def delete(name: str) -> dict[str, Any]:
    """The operation that forgets group ``name``."""
    return {"op": "delete", "group": name}


def encode_entry(ops: list[dict[str, Any]], time_ns: int) -> bytes:
    """A GROUPS entry's payload."""
    return json.dumps({"version": FORMAT_VERSION, "time_ns": time_ns, "ops": ops},
                      separators=(",", ":")).encode()


class GroupTable:
    """Every group the log knows, by name (see the module docstring).

    Args:
        partitions: partitions of the log (each record has one offset per partition).
    """

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.records: dict[str, GroupRecord] = {}

    def get(self, name: str) -> GroupRecord | None:
        """The record of group ``name``, if the log has one."""
        return self.records.get(name)

    def apply(self, payload: bytes | memoryview) -> list[str]:
        """Apply a GROUPS entry; return the names it touched.

        Raises:
            GroupEntryError: a payload of another format (a bug of the
                proposer, or a newer server's entry).
        """
        try:
            document = json.loads(bytes(payload))
            if document["version"] != FORMAT_VERSION:
                raise GroupEntryError(f"GROUPS entry of version {document['version']}")
            time_ns = int(document["time_ns"])
            touched = []
            for op in document["ops"]:
                name = str(op["group"])
                if op["op"] == "upsert":
                    offsets = tuple(int(o) for o in op["offsets"])
                    if len(offsets) != self.partitions:
                        raise GroupEntryError(f"group {name}: {len(offsets)} offsets for "
                                              f"{self.partitions} partitions")
                    self.records[name] = GroupRecord(_settings_of(op["settings"]), offsets,
                                                     int(op["dead_lettered"]), time_ns)
                elif op["op"] == "delete":
                    self.records.pop(name, None)
                else:
                    raise GroupEntryError(f"unknown GROUPS operation {op['op']!r}")
                touched.append(name)
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, GroupEntryError):
                raise
            raise GroupEntryError(f"malformed GROUPS entry: {error!r}") from None
        return touched

    def encode(self) -> bytes:
        """The table as bytes, the same for the same records (for snapshots)."""
        return json.dumps({name: {"settings": _settings_json(record.settings),
                                  "offsets": list(record.offsets),
                                  "dead_lettered": record.dead_lettered,
                                  "updated_ns": record.updated_ns}
                           for name, record in sorted(self.records.items())},
                          separators=(",", ":"), sort_keys=True).encode()

    def restore(self, data: bytes | memoryview) -> None:
        """Replace the table by one :meth:`encode` made."""
        document = json.loads(bytes(data))
        self.records = {name: GroupRecord(_settings_of(item["settings"]),
                                          tuple(item["offsets"]), item["dead_lettered"],
                                          item["updated_ns"])
                        for name, item in document.items()}


def _settings_json(settings: GroupSettings) -> dict[str, Any]:
    document = asdict(settings)
    document["patterns"] = list(settings.patterns)
    return document


def _settings_of(document: dict[str, Any]) -> GroupSettings:
    return GroupSettings(patterns=tuple(str(p) for p in document["patterns"]),
                         min_priority=int(document["min_priority"]),
                         start_latest=bool(document["start_latest"]),
                         max_in_flight=int(document["max_in_flight"]),
                         ack_deadline_ns=int(document["ack_deadline_ns"]),
                         max_deliveries=int(document["max_deliveries"]))


__all__ = ["FORMAT_VERSION", "GroupEntryError", "GroupRecord", "GroupSettings", "GroupTable",
           "delete", "encode_entry", "upsert"]
