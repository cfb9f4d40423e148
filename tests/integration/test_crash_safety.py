"""SIGKILL at random moments with fsync=always loses no acknowledged event."""

from __future__ import annotations

import asyncio
import random

import grpc

from tests.support.client import Stubs
from tests.support.durable import assert_contiguous, by_partition, payload_of, publish_batch, read_all

ROUNDS = 6
PUBLISHERS = 3
BATCH = 25


async def test_acknowledged_events_survive_repeated_sigkill(start_server):
    rng = random.Random(20261127)
    server = start_server({"storage": {"partitions": 2, "fsync": "always",
                                       "segment_bytes": 64 * 1024}})
    acked: dict[str, tuple[int, int]] = {}       # id -> (partition, offset)
    order: dict[str, list[str]] = {}             # key -> acknowledged ids in publish order
    for round_number in range(ROUNDS):
        stubs = Stubs(server.target)
        # Kill after a random number of acknowledged events, with batches in flight.
        target = len(acked) + rng.randrange(50, 1500)
        reached = asyncio.Event()

        async def publisher(number: int, stubs: Stubs, round_number: int, target: int,
                            reached: asyncio.Event) -> None:
            key = f"key-{number}"
            sequence = 0
            while True:
                ids = [f"{round_number}.{number}.{sequence + i}" for i in range(BATCH)]
                sequence += BATCH
                try:
                    acks = await publish_batch(stubs, ids, key=key)
                except grpc.aio.AioRpcError:
                    return  # the server died under this batch: it may or may not be stored
                for ack in acks:
                    acked[ack.id] = (ack.partition, ack.offset)
                    order.setdefault(key, []).append(ack.id)
                if len(acked) >= target:
                    reached.set()

        tasks = [asyncio.create_task(publisher(n, stubs, round_number, target, reached))
                 for n in range(PUBLISHERS)]
        async with asyncio.timeout(60):
            await reached.wait()
        server.kill()
        async with asyncio.timeout(60):
            await asyncio.gather(*tasks)
        await stubs.close()

        server.start()
        stubs = Stubs(server.target)
        stored = await read_all(server, stubs)
        await stubs.close()
        assert_contiguous(stored)
        ids = [event.id for event in stored]
        assert len(ids) == len(set(ids)), f"round {round_number}: an event stored twice"
        positions = {event.id: (event.partition, event.offset) for event in stored}
        missing = [i for i in acked if i not in positions]
        assert not missing, f"round {round_number}: acknowledged events lost: {missing[:5]}"
        assert all(positions[i] == place for i, place in acked.items())
        # Whole events only: every stored payload is the one its id was published with.
        assert all(event.payload == payload_of(event.id) for event in stored)
        # Per key, acknowledged events are stored in the order they were published.
        for key, key_ids in order.items():
            offsets = [positions[i][1] for i in key_ids]
            assert offsets == sorted(offsets), key
        assert sum(len(v) for v in by_partition(stored).values()) == len(stored)
