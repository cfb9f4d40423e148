"""Storage faults under the disk entry log, over many seeds.

Each case opens a log whose file operations fail once (or from then on, as a
full disk does) at one write, fsync, directory sync, truncation, rename,
whole-file write (index, hard state, metadata), open or unlink, with ENOSPC
or EIO: a grid covers every call of each kind a run usually makes, with each
errno; more cases are random. Each drives the log like the write path and a Raft follower do: pipelined
appends across partitions and segment rolls, applies, hard states, truncated
suffixes, retention. Then it checks, after reopening with plain file
operations:

- every entry whose append was reported durable is there, byte for byte
  (unless the test itself truncated it away), and the log goes on from there
  (no index handed out twice);
- after any fault the log refused every later write (an fsync is never retried);
- the reopened log is consistent: every partition reads back whole and in order.

``ENTRY_LOG_FAULT_SEEDS`` sets the number of cases (default: the grid, 212).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
from pathlib import Path

import pytest

from eventstream.server.storage.entries import EntryKind
from eventstream.server.storage.entry_api import LogHalted
from eventstream.server.storage.entry_log import DiskEntryLog
from eventstream.server.storage.failure import DataDirRefused
from eventstream.server.storage.fileops import Fault, FaultyFileOps
from eventstream.server.storage.hard_state import HardState
from tests.support.entry_logs import CHECKSUMS, Rounds, disk_config, expected_records, open_disk

PARTITIONS = 4
CALLS = {"write": 24, "fsync": 18, "fsync_dir": 11, "truncate": 3, "rename": 14,
         "write_file": 14, "open": 10, "unlink": 12}
"""Calls of each file operation a run usually makes (the median over seeds): every
one of them is failed, with each errno, by one case of the grid."""
GRID = [(op, nth, error) for op, calls in CALLS.items() for nth in range(1, calls + 1)
        for error in (errno.ENOSPC, errno.EIO)]
SEEDS = int(os.environ.get("ENTRY_LOG_FAULT_SEEDS", str(len(GRID))))
"""Cases to run: the grid, then random ones (``ENTRY_LOG_FAULT_SEEDS`` sets how many)."""
RAN: list[int] = []
INJECTED: list[int] = []
"""Seeds run and seeds whose fault fired while the log was open (for the last test)."""


def plan_for(seed: int) -> tuple[Fault, str]:
    """The fault and fsync policy of a case: the grid's, then random ones."""
    rng = random.Random(seed)
    if seed < len(GRID):
        op, nth, error = GRID[seed]
    else:
        op = rng.choice(list(CALLS))
        nth, error = rng.randint(1, CALLS[op] + 2), rng.choice([errno.ENOSPC, errno.EIO])
    fault = Fault(op, nth=nth, error=error, times=rng.choice([1, 1, 0]))
    if op in ("write", "write_file") and rng.random() < 0.5:
        fault.partial = rng.randint(1, 200)
    policy = rng.choice(["always", "always", "interval", "never"])
    return fault, policy


async def drive(log, rng: random.Random, durable: dict[int, bytes]) -> None:  # type: ignore[no-untyped-def]
    """The workload; returns when done or when the log refuses a write."""
    builder = Rounds.following(log)
    in_flight: list[asyncio.Future[int]] = []

    def record(batch):  # type: ignore[no-untyped-def]
        def done(future: asyncio.Future[int]) -> None:
            if not future.cancelled() and future.exception() is None:
                for number in range(batch.count):
                    durable[batch.first_index + number] = bytes(
                        batch.data[batch.start(number):batch.ends[number]])
        return done

    try:
        await steps(log, rng, durable, builder, in_flight, record)
    finally:
        outcomes = await asyncio.gather(*in_flight, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def steps(log, rng, durable, builder, in_flight, record) -> None:  # type: ignore[no-untyped-def]
    commit = 0
    time_ns = 1000
    for _ in range(40):
        action = rng.random()
        if action < 0.6:
            for _ in range(rng.randint(1, 3)):
                time_ns += rng.randint(0, 10)
                if rng.random() < 0.15:
                    builder.add(1, EntryKind.NOOP, b"")
                spread = {p: rng.randint(0, 12) for p in rng.sample(range(PARTITIONS), 2)}
                builder.add_events(1, spread, time_ns)
            batch = builder.finish()
            future = log.append(batch)
            future.add_done_callback(record(batch))
            in_flight.append(future)
        elif action < 0.75:
            await asyncio.gather(*in_flight, return_exceptions=True)
            in_flight.clear()
            log.apply(log.durable_index())
        elif action < 0.85 and log.last_index() > max(log.applied_index(), commit):
            await asyncio.gather(*in_flight, return_exceptions=True)
            in_flight.clear()
            cut = rng.randint(max(log.applied_index(), commit), log.last_index() - 1)
            truncated = log.truncate_after(cut)
            for index in [i for i in durable if i > cut]:  # asked for: gone or not, not owed
                del durable[index]
            await truncated
            builder = Rounds.following(log)
        elif action < 0.93:
            await asyncio.gather(*in_flight, return_exceptions=True)
            in_flight.clear()
            commit = log.durable_index()
            await log.set_hard_state(HardState(1, "", commit))
        else:
            first = log.drop_before(log.applied_index())
            for index in [i for i in durable if i < first]:
                del durable[index]
        if log.halted is not None:
            return


@pytest.mark.parametrize("seed", range(SEEDS))
async def test_no_durable_entry_is_lost_and_the_log_halts(seed, tmp_path):
    RAN.append(seed)
    if await run_case(seed, tmp_path):
        INJECTED.append(seed)


async def run_case(seed: int, root: Path, bugs: frozenset[str] = frozenset()) -> bool:
    """Run one case and check it (AssertionError when a check fails); True when the fault fired."""
    fault, policy = plan_for(seed)
    config = disk_config(root / "data", PARTITIONS, segment_bytes=3000, fsync=policy,
                         fsync_interval_ms=5)
    ops = FaultyFileOps([fault])
    durable: dict[int, bytes] = {}
    rng = random.Random(seed)
    try:
        log = DiskEntryLog(config, CHECKSUMS, ops=ops, test_bugs=bugs)
    except DataDirRefused:
        assert ops.injected  # a fault at start-up: the start is refused, the log never opened
    else:
        log.start()
        with contextlib.suppress(LogHalted):
            await drive(log, rng, durable)
        if ops.injected:
            assert log.halted is not None, f"a {fault.op} fault was injected but the log goes on"
            with pytest.raises(LogHalted):
                log.append(Rounds.following(log).events(1, {0: 1}, 1 << 40))
            with pytest.raises(LogHalted):
                log.set_hard_state(HardState(2, "", 0))
        else:
            assert log.halted is None
        first_index = log.first_index()
        log.close()
        for index in [i for i in durable if i < first_index]:
            del durable[index]

    log = open_disk(config)   # plain file operations: recovery must accept what is there
    try:
        assert log.last_index() >= max(durable, default=0)
        for index, data in sorted(durable.items()):
            assert bytes(log.entries(index, index + 1, 1).data) == data, index
        log.apply(log.last_index())
        for partition in range(PARTITIONS):
            start, end = log.start_offset(partition), log.high_watermark(partition)
            records, offset = [], start
            while offset < end:
                chunk = log.read(partition, offset, 500)
                records += chunk.records
                offset += len(chunk.records)
            assert records == expected_records(partition, start, end)
        # The log goes on after the last entry it holds: no index is handed out twice.
        last = log.last_index()
        assert await log.append(Rounds.following(log).events(1, {1: 2}, 1 << 40)) == last + 1
    finally:
        log.close()
    return bool(ops.injected)


@pytest.mark.parametrize("bug, op", [("ignore_fsync_errors", "fsync"),
                                     ("ack_before_write", "write")])
async def test_the_checks_catch_a_bug_switched_back_on(bug, op, tmp_path):
    """Each known bug, switched back on, fails the checks above in some case of the grid."""
    caught = 0
    for seed in [n for n, case in enumerate(GRID) if case[0] == op][:12]:
        try:
            await run_case(seed, tmp_path / str(seed), frozenset({bug}))
        except AssertionError:
            caught += 1
    assert caught, f"{bug}: no case failed"


def test_most_seeds_injected_their_fault():
    """The seeds exercised faults, not only the happy path (runs after them)."""
    if len(RAN) < 20:
        pytest.skip("too few seeds ran to judge")
    assert len(INJECTED) >= len(RAN) // 2, (len(INJECTED), len(RAN))
