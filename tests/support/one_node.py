"""A node's replicated log in one process, for tests below the gRPC layer.

Built by the server's own :func:`~eventstream.server.cluster.one_voter.one_voter`
(entry log, Raft log adapter, driver, applier): records reach the log the
way a follower's do, as EVENTS entries proposed whole and applied in order.
"""

from __future__ import annotations

from array import array
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventstream.server.cluster.one_voter import ReplicatedLog, one_voter
from eventstream.server.native import DedupTable
from eventstream.server.raft import Config
from eventstream.server.storage.entries import ENTRY_HEADER_SIZE, EntryEncoder, EntryKind
from eventstream.server.storage.entry_api import EntryLog
from tests.support.entry_logs import CHECKSUMS, Source

LEAD_SECONDS = 30.0


@asynccontextmanager
async def leading(event_log: EntryLog, window: DedupTable | None = None,
                  node_id: str = "n1") -> AsyncIterator[ReplicatedLog]:
    """The replicated log over ``event_log``, leading and with every entry applied; stopped after."""
    replicated = one_voter(event_log, Config(node_id), window or DedupTable(10**15, 100_000),
                           tick_seconds=0.01)
    await replicated.lead(LEAD_SECONDS)
    try:
        yield replicated
    finally:
        await replicated.stop()


def events_payload(event_log: EntryLog, partition: int, payloads: list[bytes], topics: list[str],
                   priorities: bytes, time_ns: int = 1000) -> bytes:
    """An EVENTS entry's payload: events of ``topics`` for ``partition``, following the log.

    Each record is an ``eventstream.v1.Event`` (topic, payload) framed for delivery.
    """
    data, ends, spans = bytearray(), array("I"), array("I")
    for payload, topic in zip(payloads, topics):
        event = b"\x12" + bytes([len(topic)]) + topic.encode() + b"\x22" + bytes([len(payload)]) \
            + payload
        assert len(event) < 128
        spans.extend((len(data) + 4, len(topic)))
        data += b"\x0a" + bytes([len(event)]) + event
        ends.append(len(data))
    counts = [0] * event_log.partitions
    counts[partition] = len(payloads)
    encoder = EntryEncoder(CHECKSUMS, event_log.last_index() + 1)
    encoder.add_events(1, [Source(bytes(data), ends, spans, priorities, counts)],
                       array("Q", [event_log.next_offset(p) for p in range(event_log.partitions)]),
                       time_ns)
    batch = encoder.finish()
    return bytes(batch.data[batch.start(0) + ENTRY_HEADER_SIZE:batch.ends[0]])


async def commit_records(replicated: ReplicatedLog, partition: int, topics: list[str],
                         priority: int = 0) -> None:
    """Propose one EVENTS entry of records on ``topics`` and wait until it is applied."""
    start = replicated.event_log.next_offset(partition)
    payloads = [b"#%d" % (start + i) for i in range(len(topics))]
    payload = events_payload(replicated.event_log, partition, payloads, topics,
                             bytes([priority]) * len(topics))
    index, term = replicated.proposer.propose(EntryKind.EVENTS, payload)
    await replicated.proposer.wait_applied(index, term)
