"""Requests the server must refuse cleanly: start offsets past the end, bytes that
are not protobuf, a config that would hide the health checks, slow HTTP clients."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import grpc
import pytest

from eventstream.v1 import common_pb2, publish_pb2, subscribe_pb2
from tests.support.client import Stubs, collect, error_info, event, subscribe_request
from tests.support.server import SERVER_COMMAND, http_get, metric

pytestmark = pytest.mark.timeout(120)


async def test_start_offsets_past_the_end_are_out_of_range_naming_the_partition(start_server):
    server = start_server({"storage": {"partitions": 2}})
    stubs = Stubs(server.target)
    await stubs.publish.PublishBatch(publish_pb2.PublishBatchRequest(
        events=[event("o/t", b"%d" % i, key="k") for i in range(3)]))
    partition = (await stubs.publish.Publish(publish_pb2.PublishRequest(
        event=event("o/t", b"3", key="k")))).ack.partition
    start = subscribe_pb2.START_FROM_OFFSETS
    # The end offset itself is fine: the next event written there is delivered.
    call = stubs.subscribe.Subscribe(subscribe_request("o/#", start_from=start, start_offsets=[
        common_pb2.PartitionOffset(partition=partition, offset=4)]))
    await stubs.publish.Publish(publish_pb2.PublishRequest(event=event("o/t", b"4", key="k")))
    assert [e.payload for e in await collect(call, 1)] == [b"4"]
    call.cancel()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await collect(stubs.subscribe.Subscribe(subscribe_request("o/#", start_from=start,
            start_offsets=[common_pb2.PartitionOffset(partition=partition, offset=50)])), 1)
    assert error.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert error.value.details().startswith("start_offsets[0].offset: 50 is past the end of "
                                            f"partition {partition}")
    assert "is 5)" in error.value.details()
    assert error_info(error.value) == ("OFFSET_OUT_OF_RANGE", "start_offsets[0].offset")
    await stubs.close()


async def test_requests_that_are_not_protobuf_are_invalid_argument(server):
    not_protobuf = b"\x0a\x20cut short"
    async with grpc.aio.insecure_channel(server.target) as channel:
        subscribe = channel.unary_stream("/eventstream.v1.SubscribeService/Subscribe")
        consume = channel.stream_stream("/eventstream.v1.SubscribeService/Consume")
        status = channel.unary_unary("/eventstream.v1.ClusterService/GetClusterStatus")
        start = subscribe_pb2.ConsumeRequest(start=subscribe_pb2.ConsumeStart(
            group="g", patterns=["#"])).SerializeToString()

        async def read_all(call) -> None:
            async for _ in call:
                pass

        cases = [
            ("Subscribe", lambda: read_all(subscribe(not_protobuf)), "REQUEST_MALFORMED", ""),
            ("Consume first", lambda: read_all(consume(iter([not_protobuf]))),
             "REQUEST_MALFORMED", ""),
            ("Consume later", lambda: read_all(consume(iter([start, not_protobuf]))),
             "REQUEST_MALFORMED", ""),
            ("GetClusterStatus", lambda: status(not_protobuf), "REQUEST_MALFORMED", ""),
            # Protobuf, but a string that is not UTF-8: the field is named.
            ("pattern", lambda: read_all(subscribe(b"\x0a\x01#\x0a\x02\xff\xfe")),
             "PATTERN_INVALID", "patterns[1]"),
            ("group", lambda: read_all(consume(iter([b"\x0a\x03\x0a\x01\xc3"]))),
             "GROUP_INVALID", "start.group"),
        ]
        for name, call, reason, field in cases:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call()
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
            assert error_info(error.value) == (reason, field), name
            if not field:
                assert "not a valid protobuf message" in error.value.details(), name
        # Good requests still work.
        assert (await status(b"")) is not None


CONFIG_CASES = [
    ("metrics:\n  path: /health/ready\n", "metrics.path"),
    ("metrics:\n  path: /health\n", "metrics.path"),
    ("metrics:\n  path: /status/x\n", "metrics.path"),
    ("metrics:\n  path: /metrics?x=1\n", "metrics.path"),
    ("server:\n  host: ''\n", "server.host"),
]


@pytest.mark.parametrize("text,key", CONFIG_CASES, ids=[t.split()[-1] for t, _ in CONFIG_CASES])
def test_config_that_hides_health_or_binds_nothing_is_refused(tmp_path, text, key):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    result = subprocess.run([SERVER_COMMAND, "--config", str(path), "--check-config"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{key}: must be" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


async def _slow_client(port: int, rounds: int) -> bytes:
    """Send a request head a header line at a time and never end it; return what
    the server answered before it closed the connection (b"" if it never did)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        for _ in range(rounds):
            try:
                first = await asyncio.wait_for(reader.read(4096), 0.2)
            except TimeoutError:
                writer.write(b"X-Slow: 1\r\n")   # keeps trickling: each read is recent
                continue
            return first + await reader.read()
        return b""
    finally:
        writer.close()


async def test_slow_http_clients_are_cut_off_and_bounded(start_server):
    server = start_server({"metrics": {"max_connections": 8, "header_timeout_seconds": 1}})
    clients = [asyncio.create_task(_slow_client(server.http_port, rounds=300))
               for _ in range(50)]
    answers = await asyncio.gather(*clients)
    statuses = [answer.split(b"\r\n", 1)[0] for answer in answers]
    # Nobody kept a connection: beyond the 8 allowed at once the server answered
    # 503 at once, and each of the others got 408 once its head took too long.
    assert b"" not in statuses
    assert set(statuses) == {b"HTTP/1.1 503 Service Unavailable", b"HTTP/1.1 408 Request Timeout"}
    timed_out = statuses.count(b"HTTP/1.1 408 Request Timeout")
    assert timed_out >= 1
    assert http_get(f"{server.http}/health")[0] == 200
    assert metric(server, "eventstream_http_connections_closed_total",
                  reason="HEADER_TIMEOUT") == timed_out
    assert metric(server, "eventstream_http_connections_closed_total",
                  reason="CONNECTION_LIMIT") == 50 - timed_out



async def test_a_refused_http_client_reads_its_answer_not_a_reset(start_server):
    """A connection closed with unread request bytes is reset (RST), and a client
    that reads after the reset loses the answer: the server must read and discard
    them (a lingering close) before it closes."""
    server = start_server({"metrics": {"max_connections": 2, "header_timeout_seconds": 30}})
    holders = [await asyncio.open_connection("127.0.0.1", server.http_port) for _ in range(2)]
    refused = []
    try:
        for _, writer in holders:
            writer.write(b"GET /health HTTP/1.1\r\n")   # a head that never ends holds a slot
        assert http_get(f"{server.http}/health")[0] == 503   # both slots are taken
        # Stopped, the server accepts nothing: every request is in its socket's
        # buffer, unread, when it refuses the connection.
        server.signal(signal.SIGSTOP)
        try:
            for _ in range(5):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
                writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                await writer.drain()
                refused.append((reader, writer))
        finally:
            server.signal(signal.SIGCONT)
        # To the end of each stream: a reset instead of its end raises here.
        answers = [await reader.read() for reader, _ in refused]
    finally:
        for _, writer in holders + refused:
            writer.close()
    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [
        b"HTTP/1.1 503 Service Unavailable"] * 5
