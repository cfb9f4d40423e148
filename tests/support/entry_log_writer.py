"""A child process that appends to a disk entry log until it is killed.

    python -m tests.support.entry_log_writer DATA_DIR PARTITIONS

Appends round ``n`` (one EVENTS entry, index ``n + 1``, see :func:`round_of`)
with up to eight appends in flight, and prints ``durable <index>`` (flushed)
each time an append is reported durable: what a test that SIGKILLs it then
holds the reopened log to. Stops by itself after ``MAX_ROUNDS``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.support.entry_logs import Rounds, disk_config, open_disk

MAX_ROUNDS = 200_000
IN_FLIGHT = 8


def round_of(builder: Rounds, number: int):  # type: ignore[no-untyped-def]
    """Round ``number``: a few partitions, sizes varying with the number."""
    spread = {p: (number * 7 + p) % 11 for p in range(builder.partitions) if (number + p) % 3}
    return builder.events(1 + number // 500, spread, 1000 + number)


async def main(root: Path, partitions: int) -> None:
    """Append rounds to the disk entry log under ``root`` until killed."""
    log = open_disk(disk_config(root, partitions, segment_bytes=64 * 1024))
    builder = Rounds(partitions)
    pending: list[asyncio.Future[int]] = []

    def report(future: asyncio.Future[int]) -> None:
        sys.stdout.write(f"durable {future.result()}\n")
        sys.stdout.flush()

    for number in range(MAX_ROUNDS):
        future = log.append(round_of(builder, number))
        future.add_done_callback(report)
        pending.append(future)
        if len(pending) >= IN_FLIGHT:
            await pending.pop(0)
    await asyncio.gather(*pending)
    log.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
