"""Rebuild the de-duplication window from the log at start-up.

Decodes stored records with the ``eventstream.v1`` types (so it lives with
the other protobuf code): this runs once, before serving, over the events of
the last ``dedup.window_seconds``.
"""

from __future__ import annotations

import logging
import re

from google.protobuf.message import DecodeError

from eventstream.v1 import common_pb2, subscribe_pb2

from ..broker.dedup import DedupWindow
from ..storage.log import EventLog

# Ids the write path makes itself (16 hex digits, "-", a hex counter) are unique
# and never remembered while serving; skipping them keeps the window for producers' ids.
_SERVER_ID = re.compile(r"[0-9a-f]{16}-[0-9a-f]+")
READ_BATCH = 1000
log = logging.getLogger(__name__)


def restore_dedup(dedup: DedupWindow, event_log: EventLog, now_ns: int) -> int:
    """Remember the producer-chosen ids of the events inside the window; return how many."""
    if dedup.window_ns == 0 or dedup.max_ids == 0:
        return 0
    restored = 0
    for partition in range(event_log.partitions):
        offset = event_log.offset_for_time(partition, now_ns - dedup.window_ns)
        end = event_log.high_watermark(partition)
        while offset < end:
            result = event_log.read(partition, offset, READ_BATCH)
            if not result.records:
                break
            for event in _decode(result.records, partition, offset):
                if not _SERVER_ID.fullmatch(event.id):
                    dedup.remember(event.id.encode(), event.partition, event.offset,
                                   event.ingest_time.ToNanoseconds())
                    restored += 1
            offset += len(result.records)
    dedup.expire(now_ns)
    return restored


def _decode(records: list[bytes], partition: int, offset: int) -> list[common_pb2.Event]:
    """The events of ``records``, leaving out (and logging) any that does not decode."""
    try:
        # A record is field 1 of a SubscribeResponse: the concatenation is one.
        return list(subscribe_pb2.SubscribeResponse.FromString(b"".join(records)).events)
    except DecodeError:
        pass
    events: list[common_pb2.Event] = []
    for index, record in enumerate(records):
        try:
            events.extend(subscribe_pb2.SubscribeResponse.FromString(record).events)
        except DecodeError as error:
            log.warning("de-duplication: the event at partition %d offset %d does not decode "
                        "(%s); its id is not remembered", partition, offset + index, error)
    return events


__all__ = ["restore_dedup"]
