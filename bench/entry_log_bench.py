"""The entry log against today's per-partition DiskLog, in one run, same record batches.

Storage alone (no server, no network): each *round* is what the write path
commits at once, ``--submissions`` submissions of ``--events`` events of
about 130 bytes, spread over 8 partitions by a hash, each submission's
records in one buffer with a run per partition (as the event encoder places them),
so a round is ``submissions x partitions`` record batches.

- ``DiskLog`` (today): ``append`` per (partition, batch) of each submission
  (as today's write path does), then ``commit``:
  one write and, under ``fsync: always``, one fdatasync per touched partition file.
- ``entry log``: the round encoded as one EVENTS entry (``EntryEncoder``: one
  native call for the whole round), ``append``ed, awaited, applied: one write
  and one fdatasync per round.
- ``entry log, 4 in flight``: the same with up to 4 rounds pipelined.

For each fsync policy (``always``, ``interval``) it reports rounds/s and
events/s over ``--rounds`` rounds (bounded by ``--seconds``), fdatasyncs per
round, and the encoding cost of the entry. Then *replay*: the log is closed
and reopened (the tail cache starts empty, so reads go to the files) and one
partition is read from offset 0 to the end, 1000 records per read. Every
setting runs ``--repeat`` times, alternating, in fresh directories; the
median is shown.

    python bench/entry_log_bench.py [--rounds 300] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from array import array
from pathlib import Path

from eventstream.server.config.model import StorageConfig
from eventstream.server.native import NativeWire
from eventstream.server.storage.disk_log import DiskLog
from eventstream.server.storage.entries import EntryEncoder
from eventstream.server.storage.entry_log import DiskEntryLog
from eventstream.server.storage.log import RecordBatch

PARTITIONS = 8
CHECKSUMS = NativeWire()


@dataclasses.dataclass(frozen=True)
class Submission:
    """One submission's records as the event encoder places them: a run per partition."""

    records: bytes
    ends: array
    topics: array
    priorities: bytes
    part_counts: list[int]

    def batches(self) -> list[tuple[int, RecordBatch]]:
        """The same records as today's write path hands them to DiskLog: a batch per partition."""
        placed, first = [], 0
        for partition, count in enumerate(self.part_counts):
            if count:
                last = first + count
                placed.append((partition, RecordBatch(
                    self.records, self.ends[first - 1] if first else 0, self.ends[first:last],
                    self.topics[2 * first:2 * last], self.priorities[first:last], self.records)))
                first = last
        return placed


def make_round(number: int, submissions: int, events: int) -> list[Submission]:
    """A round: per submission, one buffer with a run per partition."""
    round_: list[Submission] = []
    for submission in range(submissions):
        by_partition: list[list[bytes]] = [[] for _ in range(PARTITIONS)]
        for event in range(events):
            key = (number * submissions + submission) * events + event
            body = b"\x0a\x80\x01" + b"sensors/room-%03d" % (key % 64) + bytes(111)
            by_partition[(key * 2654435761) % 2**32 % PARTITIONS].append(body)
        data, ends, topics = bytearray(), array("I"), array("I")
        for bodies in by_partition:
            for body in bodies:
                topics.extend((len(data) + 3, 16))   # the topic is a span inside the record
                data += body
                ends.append(len(data))
        round_.append(Submission(bytes(data), ends, topics, bytes(len(ends)),
                                 [len(bodies) for bodies in by_partition]))
    return round_


@dataclasses.dataclass
class Result:
    rounds_per_s: float
    events_per_s: float
    fsyncs_per_round: float
    encode_us: float | None
    replay_events_per_s: float


def storage(root: Path, fsync: str) -> StorageConfig:
    return StorageConfig(data_dir=str(root), partitions=PARTITIONS, fsync=fsync,
                         fsync_interval_ms=1000, segment_bytes=64 * 1024 * 1024,
                         tail_cache_bytes=64 * 1024 * 1024, retention_ms=0)


async def run_disk_log(root: Path, fsync: str, rounds: list, seconds: float) -> Result:
    fsyncs = [0]
    log = DiskLog(storage(root, fsync), CHECKSUMS, on_fsync=lambda _: fsyncs.__setitem__(
        0, fsyncs[0] + 1))
    log.start()
    events = done = 0
    started = time.perf_counter()
    for submissions in rounds:
        now = time.time_ns()
        for submission in submissions:
            for partition, batch in submission.batches():
                log.append(partition, batch, now)
        await log.commit()
        events += sum(len(s.ends) for s in submissions)
        done += 1
        if time.perf_counter() - started > seconds:
            break
    elapsed = time.perf_counter() - started
    log.close()
    log = DiskLog(storage(root, fsync), CHECKSUMS)
    replay = replay_rate(log)
    log.close()
    # Under fsync: always DiskLog reports one fsync round per commit; count the files it synced.
    per_round = fsyncs[0] / done if fsync != "always" else touched_partitions(rounds[:done])
    return Result(done / elapsed, events / elapsed, per_round, None, replay)


def touched_partitions(rounds: list) -> float:
    """fdatasyncs per round of DiskLog under fsync: always: one per partition file written."""
    return statistics.mean(len({p for s in submissions for p, count in enumerate(s.part_counts)
                                if count}) for submissions in rounds)


async def run_entry_log(root: Path, fsync: str, rounds: list, seconds: float,
                        in_flight: int) -> Result:
    log = DiskEntryLog(storage(root, fsync), CHECKSUMS)
    log.start()
    encoder = EntryEncoder(CHECKSUMS, 1)
    next_offsets = array("Q", [0] * PARTITIONS)
    pending: list[asyncio.Future[int]] = []
    events = done = 0
    encoding = 0.0
    started = time.perf_counter()
    for submissions in rounds:
        began = time.perf_counter()
        encoder.add_events(1, submissions, next_offsets, time.time_ns())
        batch = encoder.finish()
        encoding += time.perf_counter() - began
        pending.append(log.append(batch))
        events += sum(len(s.ends) for s in submissions)
        done += 1
        if len(pending) >= in_flight:
            log.apply(await pending.pop(0))
        if time.perf_counter() - started > seconds:
            break
    for future in pending:
        log.apply(await future)
    elapsed = time.perf_counter() - started
    fsyncs = log.fsyncs
    log.close()
    log = DiskEntryLog(storage(root, fsync), CHECKSUMS)
    log.apply(log.last_index())
    replay = replay_rate(log)
    log.close()
    return Result(done / elapsed, events / elapsed, fsyncs / done, 1e6 * encoding / done, replay)


def replay_rate(log) -> float:  # type: ignore[no-untyped-def]
    """Events/s reading partition 0 from offset 0 to its end, 1000 per read."""
    offset, end = 0, log.high_watermark(0)
    started = time.perf_counter()
    while offset < end:
        offset += len(log.read(0, offset, 1000).records)
    return end / (time.perf_counter() - started)


SETTINGS = [("DiskLog (per-partition files)", None), ("entry log", 1),
            ("entry log, 4 in flight", 4)]


def measure(args: argparse.Namespace) -> dict[tuple[str, str], list[Result]]:
    rounds = [make_round(n, args.submissions, args.events) for n in range(args.rounds)]
    results: dict[tuple[str, str], list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="es-entry-log-bench-", dir=args.tmp) as tmp:
        run = 0
        for repeat in range(args.repeat):
            for fsync in ("always", "interval"):
                for name, in_flight in SETTINGS:
                    run += 1
                    root = Path(tmp) / f"run-{run}"
                    print(f"[{repeat + 1}/{args.repeat}] {name}, fsync {fsync} ...",
                          file=sys.stderr, flush=True)
                    if in_flight is None:
                        result = asyncio.run(run_disk_log(root, fsync, rounds, args.seconds))
                    else:
                        result = asyncio.run(run_entry_log(root, fsync, rounds, args.seconds,
                                                           in_flight))
                    results.setdefault((fsync, name), []).append(result)
    return results


def table(results: dict[tuple[str, str], list[Result]], args: argparse.Namespace,
          markdown: bool) -> str:
    head = ["fsync", "log", "rounds/s", "events/s", "fdatasync/round", "encode/round",
            "replay events/s"]
    rows = []
    for (fsync, name), runs in results.items():
        def median(field: str, runs: list[Result] = runs) -> float:
            return statistics.median(getattr(r, field) for r in runs)
        encode = [r.encode_us for r in runs if r.encode_us is not None]
        rows.append([fsync, name, f"{median('rounds_per_s'):,.0f}",
                     f"{median('events_per_s'):,.0f}", f"{median('fsyncs_per_round'):.2f}",
                     f"{statistics.median(encode):,.0f} µs" if encode else "-",
                     f"{median('replay_events_per_s'):,.0f}"])
    lines = [f"{args.submissions} submissions x {args.events} events (~130 B) per round, "
             f"{PARTITIONS} partitions, up to {args.rounds} rounds or {args.seconds:g} s per "
             f"run, median of {args.repeat} runs", ""]
    if markdown:
        lines += ["| " + " | ".join(head) + " |", "|---|---" + "|---:" * (len(head) - 2) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        lines += ["  ".join(f"{h:>30}" if i == 1 else f"{h:>16}" for i, h in enumerate(head))]
        lines += ["  ".join(f"{c:>30}" if i == 1 else f"{c:>16}" for i, c in enumerate(row))
                  for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="entry log vs DiskLog")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0, help="most seconds per run")
    parser.add_argument("--submissions", type=int, default=16)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tmp", help="directory for the data dirs (default: the system's)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as markdown")
    args = parser.parse_args(argv)
    args.rounds = min(max(args.rounds, 1), 100_000)
    args.seconds = min(max(args.seconds, 0.1), 300.0)
    results = measure(args)
    print(table(results, args, markdown=False))
    if args.markdown:
        Path(args.markdown).write_text(table(results, args, markdown=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
