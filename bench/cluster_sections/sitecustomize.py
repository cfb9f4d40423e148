"""CPU time per call of the replication path's steps, in an EventStream server (``--sections``).

``cluster_bench.py --profile PREFIX --sections`` starts the servers with this
directory first on ``PYTHONPATH``, so Python imports this module at start-up.
In a process started as ``eventstream-server`` it wraps a few functions of
the replication path with :func:`time.thread_time` (CPU of the calling
thread only: unlike wall time, it does not grow when the process is
preempted by the others on its core) and writes, at exit, each one's calls
and CPU seconds, with the main thread's CPU since the first peer message, as
JSON to ``$EVENTSTREAM_BENCH_SECTIONS/<pid>.json``. Each wrapped function
runs without suspending (the coroutine ``EntryApplier.apply`` has no await
that waits), so its time is its own.
"""

import atexit
import collections
import functools
import json
import os
import sys
import time

OUT_ENV = "EVENTSTREAM_BENCH_SECTIONS"


def _install(out_dir: str) -> None:
    from eventstream.server.broker import applier
    from eventstream.server.cluster import entry_raft_log
    from eventstream.server.cluster.transport import inbound, outbound
    from eventstream.server.raft import core
    from eventstream.server.storage import entries, entry_log

    seconds: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    started: list[float] = []

    def timed(owner: object, name: str, label: str, first: bool = False) -> None:
        function = getattr(owner, name)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            if first and not started:
                started.append(time.thread_time())
            before = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[label] += time.thread_time() - before
                calls[label] += 1
        setattr(owner, name, wrapper)

    def timed_coroutine(owner: object, name: str, label: str) -> None:
        function = getattr(owner, name)

        @functools.wraps(function)
        async def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            before = time.thread_time()
            try:
                return await function(*args, **kwargs)
            finally:
                seconds[label] += time.thread_time() - before
                calls[label] += 1
        setattr(owner, name, wrapper)

    timed(inbound, "decode_batch", "peer message decode", first=True)
    timed(outbound, "encode_batch", "peer message encode")
    timed(entry_raft_log.EntryRaftLog, "_batches", "persist: entries encoded")
    timed(entries.EntryEncoder, "add", "persist: encoder add")
    timed(entries, "_walk_blocks", "persist: blocks checked")
    timed(entry_raft_log.EntryRaftLog, "_scanned", "persist: payloads checked and scanned")
    timed_coroutine(applier.EntryApplier, "apply", "apply")
    timed(applier.EntryApplier, "_scan", "apply: entry scan")
    timed(entry_log.DiskEntryLog, "apply", "apply: log apply")
    for name in ("step", "ready", "advance", "tick"):
        timed(core.RaftNode, name, f"raft {name}")

    def write() -> None:
        main = time.thread_time() - started[0] if started else 0.0
        sections = {label: {"calls": calls[label], "seconds": seconds[label]} for label in seconds}
        with open(os.path.join(out_dir, f"{os.getpid()}.json"), "w") as out:
            json.dump({"main_thread_seconds": main, "sections": sections}, out)
    atexit.register(write)


if os.environ.get(OUT_ENV) and os.path.basename(sys.argv[0]) == "eventstream-server":
    _install(os.environ[OUT_ENV])
