"""Consumer groups against careless or hostile members, against the real server.

An ack or nack only applies to events the member holds; groups without
members are forgotten after ``groups.idle_expiry_seconds`` (state, metric
series and stored offsets) and their number is bounded by
``groups.max_groups``; a damaged offsets file refuses the start.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from eventstream.v1 import subscribe_pb2
from tests.support.client import Stubs
from tests.support.server import http_get, metric

from .test_groups import GroupMember, publish, wait_for_metric

EARLIEST = subscribe_pb2.START_FROM_EARLIEST

pytestmark = pytest.mark.timeout(120)
IDLE_GAP_SECONDS = 20.0
"""How much longer one group is idle than the other: far more than a restart takes,
also on a busy machine (where one can take several seconds)."""


def series_of(server, group: str) -> list[str]:
    """The /metrics lines that name ``group``."""
    body = http_get(f"{server.http}/metrics", timeout=10.0)[1].decode()
    return [line for line in body.splitlines() if f'group="{group}"' in line]


async def wait_until(check, what: str, timeout: float = 30.0) -> None:
    """Poll ``check()`` (yielding to the event loop) until true, or fail naming ``what``."""
    give_up = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < give_up, f"never: {what}"
        await asyncio.sleep(0.05)


async def test_a_member_acks_and_nacks_only_what_it_holds(start_server):
    server = start_server({"storage": {"partitions": 1}})
    stubs = Stubs(server.target)
    await publish(stubs, "jobs/new", 20)
    holder = GroupMember(stubs, "workers", patterns=["jobs/#"], start_from=EARLIEST)
    held = await holder.events(20)          # the only partition: holder has it all
    other = GroupMember(stubs, "workers", patterns=["jobs/#"], start_from=EARLIEST)
    assert list((await other.assigned()).partitions) == []
    other.ack(held)                          # not other's to acknowledge
    await wait_for_metric(server, "eventstream_group_acks_ignored_total", 20, group="workers")
    assert metric(server, "eventstream_group_acks_total", group="workers") == 0
    holder.nack(held)                        # so the holder's nack still counts
    async with asyncio.timeout(30):
        again = await holder.events(20)
    assert sorted((e.partition, e.offset) for e in again) == sorted(
        (e.partition, e.offset) for e in held)
    holder.ack(again)
    await wait_for_metric(server, "eventstream_group_acks_total", 20, group="workers")
    other.nack(again)                        # done already: ignored too
    await wait_for_metric(server, "eventstream_group_acks_ignored_total", 40, group="workers")
    assert metric(server, "eventstream_group_lag", group="workers") == 0
    holder.kill()
    other.kill()
    await stubs.close()


async def test_idle_groups_are_forgotten_and_their_number_is_bounded(start_server):
    server = start_server({"storage": {"partitions": 1},
                           "groups": {"idle_expiry_seconds": 1.0, "max_groups": 2}})
    stubs = Stubs(server.target)
    await publish(stubs, "sales/day", 10)
    first = GroupMember(stubs, "reports", patterns=["sales/#"], start_from=EARLIEST)
    first.ack(await first.events(10))
    await wait_for_metric(server, "eventstream_group_acks_total", 10, group="reports")
    first.kill()
    # Without members for a second: its series and its committed offsets (in the log) go.
    await wait_until(lambda: not series_of(server, "reports"), "the series of reports went")
    await wait_until(lambda: metric(server, "eventstream_groups") == 0, "reports was forgotten")
    assert "forgotten (groups.idle_expiry_seconds): reports" in server.log()
    # Coming back, it is a new group: from the earliest event again.
    again = GroupMember(stubs, "reports", patterns=["sales/#"], start_from=EARLIEST)
    async with asyncio.timeout(30):
        assert len(await again.events(10)) == 10
    audit = GroupMember(stubs, "audit", patterns=["sales/#"])
    await audit.assigned()
    # Two groups exist: a third is refused, naming the limit.
    extra = GroupMember(stubs, "extra", patterns=["sales/#"])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await extra.assigned()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "groups.max_groups" in refused.value.details()
    extra.kill()
    # Once one of them is forgotten there is room again.
    audit.kill()
    await wait_until(lambda: metric(server, "eventstream_groups") == 1, "audit was forgotten")
    extra = GroupMember(stubs, "extra", patterns=["sales/#"])
    await extra.assigned()
    extra.kill()
    again.kill()
    await stubs.close()


async def test_stored_groups_count_and_expire_after_a_restart(start_server):
    """Groups of the log no member joined since a restart count, and expire by their last write."""
    server = start_server({"storage": {"partitions": 1}})
    stubs = Stubs(server.target)
    await publish(stubs, "logs/app", 10)
    for name in ("old", "recent"):
        member = GroupMember(stubs, name, patterns=["logs/#"], start_from=EARLIEST,
                             max_in_flight=5)
        member.ack(await member.events(5))
        await wait_for_metric(server, "eventstream_group_acks_total", 5, group=name)
        member.kill()
        if name == "old":
            # Time has to pass between the two groups' last writes (the leader's wall clock
            # in the entries): "old" is idle IDLE_GAP_SECONDS longer than "recent".
            await asyncio.sleep(IDLE_GAP_SECONDS)
    await stubs.close()
    server.stop()
    server.config_path.write_text(server.config_path.read_text() + (
        f"groups:\n  idle_expiry_seconds: {IDLE_GAP_SECONDS}\n  max_groups: 1\n"))
    server.start()
    await wait_until(lambda: "forgotten (groups.idle_expiry_seconds): old" in server.log(),
                     "old was forgotten")
    assert metric(server, "eventstream_groups") == 1
    stubs = Stubs(server.target)
    newcomer = GroupMember(stubs, "newcomer", patterns=["logs/#"])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await newcomer.assigned()       # "recent" counts: it may come back
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    newcomer.kill()
    recent = GroupMember(stubs, "recent", patterns=["logs/#"], start_from=EARLIEST)
    async with asyncio.timeout(30):
        rest = await recent.events(5)   # where it was: the last five events
    assert sorted(e.offset for e in rest) == [5, 6, 7, 8, 9]
    recent.kill()
    await stubs.close()


async def test_a_damaged_application_snapshot_refuses_the_start(start_server):
    """The snapshot holds the groups' offsets and the dedup window: damage refuses the start."""
    server = start_server({"storage": {"partitions": 1, "segment_bytes": 4096}})
    stubs = Stubs(server.target)
    await publish(stubs, "snap/t", 300)    # more than a segment of entries: a snapshot is taken
    await stubs.close()
    server.stop()
    snapshot = server.workdir / "data" / "snapshot"
    assert snapshot.is_file()
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0x01
    snapshot.write_bytes(bytes(data))
    code, output = server.run_to_exit()
    assert code == 2, output
    (line,) = [line for line in output.splitlines() if "storage error" in line]
    assert "snapshot" in line and "CRC32C" in line and "Traceback" not in output, line
    # The documented way on while the log still starts at its first entry: remove it.
    snapshot.unlink()
    server.start()
    stubs = Stubs(server.target)
    member = GroupMember(stubs, "after-repair", patterns=["snap/#"], start_from=EARLIEST)
    assert len(await member.events(300)) == 300  # every event, read back from the log
    member.kill()
    await stubs.close()
