"""The end of the newest data file at start-up: a torn write is forgiven, damage is not.

A write cut short (a crash, a full disk) leaves the beginning of the last
entry (one round of events): the start cuts it away. Zeros where fsynced events were are damage:
under ``fsync: always`` the start is refused naming the file and the byte;
under ``interval``, which may lose what the OS had not flushed, the start
keeps what checks out and says exactly what it dropped.
"""

from __future__ import annotations

import re

import pytest

from tests.support.damage import newest_data_file, zero_fill
from tests.support.ledger import Ledger, check_stored, read_back, sdk_client
from tests.support.server import ServerProcess

EVENT_BYTES = 200


async def publish_events(server: ServerProcess, ledger: Ledger, count: int) -> list[str]:
    """``count`` events in batches of 8; return their ids in order."""
    ids = [f"e{i:03d}" for i in range(count)]
    async with sdk_client(server) as client:
        for start in range(0, count, 8):
            assert await ledger.publish(client, ids[start:start + 8], size=EVENT_BYTES)
    return ids


def storage_error(output: str) -> str:
    (line,) = [line for line in output.splitlines() if "storage error" in line]
    return line


@pytest.mark.parametrize("zeroed", ["whole file", "second half"])
async def test_zeros_in_place_of_fsynced_events_are_refused_naming_file_and_byte(
        start_server, zeroed):
    """Issue item 3: 48 acknowledged, fsynced events are not dropped as a torn write."""
    server = start_server({"storage": {"partitions": 1, "fsync": "always"}})
    ledger = Ledger()
    await publish_events(server, ledger, 48)
    server.stop()
    newest = newest_data_file(server.workdir / "data")
    size = newest.stat().st_size
    zero_fill(newest, 0 if zeroed == "whole file" else size // 2)
    code = server.start_or_exit()
    assert code == 2, server.log()
    line = storage_error(server.log())
    assert str(newest) in line and "zeros" in line, line
    byte = int(re.search(r"at byte (\d+)", line).group(1))
    assert byte <= (0 if zeroed == "whole file" else size // 2), line
    # The repair the documentation gives: keep what is before that byte, and drop the
    # records that vouch for the lost entries (the hard state, the clean-shutdown record).
    with open(newest, "r+b") as damaged:
        damaged.truncate(byte)
    for voucher in ("hard-state", "clean-shutdown"):
        (server.workdir / "data" / voucher).unlink(missing_ok=True)
    server.start()
    stored = await read_back(server)
    kept = [event.id for event in stored]
    assert kept == [i for i in ledger.acked][:len(kept)]
    assert (len(kept) == 0) == (zeroed == "whole file")


@pytest.mark.parametrize("cut", [1, 3, 20, EVENT_BYTES // 2])
async def test_a_torn_last_event_is_cut_away_and_the_rest_kept(start_server, cut):
    """The end of the last event missing (a write cut short by a crash): the start forgives it."""
    server = start_server({"storage": {"partitions": 1, "fsync": "always"}})
    ledger = Ledger()
    ids = await publish_events(server, ledger, 16)
    server.kill()  # a crash: no clean-shutdown record vouches for the end of the log
    newest = newest_data_file(server.workdir / "data")
    data = newest.read_bytes()
    newest.write_bytes(data[:-cut])
    assert server.start_or_exit() is None, server.log()
    assert "torn tail" in server.log()
    stored = await read_back(server)
    # A round is one entry, written whole or not at all: cutting its last event's bytes
    # tears the last round (the last batch of 8), the rounds before it stay.
    assert [event.id for event in stored] == ids[:-8]
    # The cut round stands for a write that was never acknowledged: numbering goes on
    # from the kept events.
    for event_id in ids[-8:]:
        del ledger.acked[event_id]
    async with sdk_client(server) as client:
        assert await ledger.publish(client, ["next"], size=EVENT_BYTES)
    check_stored(ledger, await read_back(server))


async def test_under_fsync_interval_a_zeroed_tail_is_dropped_saying_exactly_what(start_server):
    server = start_server({"storage": {"partitions": 1, "fsync": "interval"}})
    ledger = Ledger()
    ids = await publish_events(server, ledger, 48)
    server.kill()  # a crash, which under interval may lose what the OS had not written
    newest = newest_data_file(server.workdir / "data")
    size = newest.stat().st_size
    dropped = zero_fill(newest, size // 2)
    assert server.start_or_exit() is None, server.log()
    (warning,) = [line for line in server.log().splitlines() if "tail of" in line]
    assert str(newest) in warning and "torn tail" in warning, warning
    cut_at = int(re.search(r"at byte (\d+)", warning).group(1))
    assert cut_at <= size // 2
    assert f"{dropped + size // 2 - cut_at} bytes of an unfinished write" in warning, warning
    kept = [event.id for event in await read_back(server)]
    assert kept == ids[:len(kept)] and 0 < len(kept) < len(ids)
    # Rounds of 8 events, one entry each (after the leader's first entry, index 1).
    assert f"after index {len(kept) // 8 + 1} dropped" in warning, warning
