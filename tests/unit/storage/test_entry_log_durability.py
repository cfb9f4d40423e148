"""The disk entry log's durability: fsyncs counted at the file-operation seam, and kill -9.

Under ``fsync: always`` an append costs one ``fdatasync`` however many
partitions its entries touch (the old layout paid one per partition file),
and appends in flight together share one. A writer process SIGKILLed in the
middle of pipelined appends loses none of the entries it reported durable.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from eventstream.server.storage.fileops import FileOps
from tests.support.entry_log_writer import round_of
from tests.support.entry_logs import Rounds, disk_config, open_disk

ROOT = Path(__file__).resolve().parents[3]
PARTITIONS = 12


class CountingFileOps(FileOps):
    """Plain file operations that remember the path of every fdatasync."""

    def __init__(self) -> None:
        self.synced: list[str] = []

    def fsync(self, fd: int, path: Path | str = "") -> None:
        self.synced.append(str(path))
        super().fsync(fd, path)

    def segment_syncs(self) -> int:
        return sum(path.endswith(".log") for path in self.synced)


def every_partition(records: int) -> dict[int, int]:
    return dict.fromkeys(range(PARTITIONS), records)


async def test_one_fdatasync_per_append_whatever_the_partitions(tmp_path):
    ops = CountingFileOps()
    log = open_disk(disk_config(tmp_path, PARTITIONS, segment_bytes=64 << 20), ops)
    try:
        builder = Rounds(PARTITIONS)
        before = ops.segment_syncs()
        for number in range(20):   # awaited one by one, as a write path without pipelining
            await log.append(builder.events(1, every_partition(5), number))
        assert ops.segment_syncs() - before == 20
        assert log.fsyncs == 20

        before = ops.segment_syncs()   # 20 in flight at once: they share fsyncs
        await asyncio.gather(*[log.append(builder.events(1, every_partition(5), 100 + number))
                               for number in range(20)])
        assert 1 <= ops.segment_syncs() - before <= 20
        assert log.durable_index() == 40
    finally:
        log.close()


async def test_no_fdatasync_per_append_under_fsync_interval(tmp_path):
    ops = CountingFileOps()
    log = open_disk(disk_config(tmp_path, PARTITIONS, fsync="interval", segment_bytes=64 << 20,
                                fsync_interval_ms=3_600_000), ops)
    builder = Rounds(PARTITIONS)
    try:
        log.start()
        before = ops.segment_syncs()
        for number in range(20):
            await log.append(builder.events(1, every_partition(5), number))
        assert ops.segment_syncs() == before   # the periodic sync is an hour away
    finally:
        log.close()
    assert ops.segment_syncs() == before + 1   # a clean stop syncs what was written


async def test_the_periodic_fsync_comes(tmp_path):
    ops = CountingFileOps()
    log = open_disk(disk_config(tmp_path, PARTITIONS, fsync="interval", fsync_interval_ms=5),
                    ops)
    try:
        log.start()
        before = ops.segment_syncs()
        await log.append(Rounds(PARTITIONS).events(1, every_partition(5), 1))
        deadline = time.monotonic() + 30
        while ops.segment_syncs() == before and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert ops.segment_syncs() == before + 1
    finally:
        log.close()


async def test_a_killed_writer_loses_no_entry_it_reported_durable(tmp_path):
    partitions = 4
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.entry_log_writer", str(tmp_path / "data"),
         str(partitions)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    durable = 0
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        while durable < 300 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            durable = max(durable, int(line.split()[1]))
        assert durable >= 300, child.stderr.read().decode() if child.stderr else ""
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]

    assert await _reopen_and_check(tmp_path / "data", partitions, durable) >= durable


async def _reopen_and_check(root: Path, partitions: int, durable: int) -> int:
    log = open_disk(disk_config(root, partitions, segment_bytes=64 * 1024))
    try:
        assert log.last_index() >= durable
        builder = Rounds(partitions)
        expected = b"".join(bytes(round_of(builder, number).data) for number in range(durable))
        assert bytes(log.entries(1, durable + 1, 1 << 40).data) == expected
        return log.last_index()
    finally:
        log.close()
