"""Storage fault injection: ENOSPC and EIO at each write, fsync, rename and index write.

Each case starts the real server with a test-only fault plan (see
:mod:`tests.support.faults`), publishes with the SDK until the fault strikes,
and then checks, through public interfaces only, that

- the round it struck gets UNAVAILABLE (STORAGE_FAILED) and the node stops
  accepting writes (health NOT_SERVING, later publishes refused) while
  readers still read everything acknowledged;
- the fault is never retried (a sticky fault is hit exactly once: no later
  write, and no fsync after a failed one);
- after a restart without the fault, every acknowledged event is stored
  once, at its acknowledged offset, no offset is reused, events in doubt can
  be published again with the same ids, and the node serves.

``EVENTSTREAM_FAULT_SEEDS`` sets how many cases run (``make test-faults``
runs many more than the default).
"""

from __future__ import annotations

import os
import random

import grpc
import pytest

from tests.support.faults import (
    ERRORS,
    OPS,
    FaultCase,
    fault_env,
    injected_faults,
    restart_without_faults,
)
from tests.support.ledger import Ledger, check_stored, read_back, sdk_client
from tests.support.server import http_get

SEEDS = int(os.environ.get("EVENTSTREAM_FAULT_SEEDS", "24"))
PAIRS = [(op, errno) for op in OPS for errno in ERRORS]
CASES = [FaultCase.draw(seed, *PAIRS[seed % len(PAIRS)]) for seed in range(SEEDS)]
MOST_BATCHES = 1000
"""Bound of the publish loop; every planned fault strikes long before."""
KEYS = [f"key-{number}" for number in range(8)]


def refused_start(server) -> int | None:  # type: ignore[no-untyped-def]
    """Wait until ``server`` serves (None) or exits (its exit code)."""
    try:
        server.wait_healthy()
    except AssertionError:
        if server.process.poll() is None:
            raise
        return server.wait_exit()
    return None


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.seed}-{case.op}-{case.errno}")
async def test_after_a_storage_fault_no_acknowledged_event_is_lost_or_moved(start_server, case):
    server = start_server(case.config(), env=fault_env(case.plan), wait=False)
    if (refused := refused_start(server)) is not None:
        # The fault struck the start's own writes (the log's first entry, the hard state):
        # the start is refused, and without the fault the node starts and serves.
        assert refused == 2 and "cannot start" in server.log(), f"{case}: {server.log()}"
        assert injected_faults(server.log()) == 1, f"{case}: the failed operation was tried again"
        restart_without_faults(server)
        async with sdk_client(server) as client:
            ledger = Ledger()
            assert await ledger.publish(client, ["one", "two"], keys=KEYS), case
        check_stored(ledger, await read_back(server))
        return
    ledger = Ledger()
    rng = random.Random(case.seed)
    async with sdk_client(server) as client:
        for number in range(MOST_BATCHES):
            ids = [f"b{number}.{i}" for i in range(rng.randint(1, 12))]
            if not await ledger.publish(client, ids, keys=rng.sample(KEYS, 3),
                                        size=rng.choice([40, 300, 1200])):
                break
        else:
            pytest.fail(f"{case}: the fault never struck")
        failure = ledger.errors[-1]
        assert (failure.code, failure.reason) == (grpc.StatusCode.UNAVAILABLE,
                                                  "STORAGE_FAILED"), f"{case}: {failure}"
        # Writes stop: no publish is taken any more.
        assert not await ledger.publish(client, ["after-the-fault"]), case
        assert ledger.errors[-1].reason == "STORAGE_FAILED", f"{case}: {ledger.errors[-1]}"
    assert http_get(f"{server.http}/health")[0] == 503, case
    # Readers keep working: everything acknowledged can be read before the restart too.
    check_stored(ledger, await read_back(server))
    if case.crash:
        server.kill()
    else:
        assert server.stop() == 1, f"{case}: a node whose writes halted exited 0"
    assert injected_faults(server.log()) == 1, f"{case}: the failed operation was tried again"

    restart_without_faults(server)
    check_stored(ledger, await read_back(server))
    async with sdk_client(server) as client:
        await ledger.retry_unknown(client)
        assert await ledger.publish(client, [f"next.{i}" for i in range(20)], keys=KEYS), case
    verdict = check_stored(ledger, await read_back(server))
    assert verdict.acknowledged == len(ledger.acked) and not ledger.unknown


@pytest.mark.parametrize("plan, names", [
    ("op=write_file,path=meta.json,errno=ENOSPC", "meta.json"),
    ("op=mkdir,path=/log,errno=EIO", "/log"),
    ("op=fsync,path=/log,errno=ENOSPC", "bytes free"),
])
async def test_a_storage_error_while_starting_is_one_line_and_exit_2(start_server, plan, names):
    server = start_server({"storage": {"partitions": 2}}, env=fault_env(plan), wait=False)
    code = server.wait_exit()
    output = server.log()
    assert code == 2, output
    assert "Traceback" not in output, output
    (line,) = [line for line in output.splitlines() if "storage error" in line]
    assert "cannot start" in line and names in line, line
    restart_without_faults(server)
    async with sdk_client(server) as client:
        ledger = Ledger()
        assert await ledger.publish(client, ["one", "two"], keys=KEYS)
    check_stored(ledger, await read_back(server))


async def test_the_checks_catch_a_disk_that_loses_an_acknowledged_write(start_server):
    """Proof that the checks above can fail: the disk drops a write and says it was done."""
    server = start_server({"storage": {"partitions": 1}},
                          env=fault_env("op=write,nth=6,path=/log,lose=1"))
    ledger = Ledger()
    async with sdk_client(server) as client:
        for number in range(5):  # one round, one write each: the fifth never reaches the file
            assert await ledger.publish(client, [f"e{number}"])
    # A crash: after a clean stop the clean-shutdown record would vouch for the lost
    # write, and the start would refuse the shorter log as damage before any check ran.
    server.kill()
    assert injected_faults(server.log()) == 1
    restart_without_faults(server)
    async with sdk_client(server) as client:
        assert await ledger.publish(client, ["after"])
    with pytest.raises(AssertionError) as caught:
        check_stored(ledger, await read_back(server))
    assert "1 acknowledged events lost: ['e4']" in str(caught.value)
    assert "offsets reused: ['(0, 4) acknowledged to e4 holds after']" in str(caught.value)
