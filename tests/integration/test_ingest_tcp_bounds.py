"""Raw TCP ingest against slow and greedy clients: time and memory stay bounded.

Slow senders are closed at ``ingest.frame_timeout_seconds`` and free their
connection slots; connections that would hold large frames or batches wait
for ``ingest.max_buffered_bytes`` instead of filling the server's memory
(read from the real process's /proc/<pid>/status); what they send still
arrives whole, and a client that reads no answers is dropped.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest

from eventstream.client.frames import FrameError, TcpFrameSender, encode_frame
from eventstream.server.config.model import IngestConfig
from tests.support.server import ServerProcess, metric, wait_for_metric

from .test_ingest_tcp import SOCKET_TIMEOUT, connect, parse_error, read_message

MIB = 1024 * 1024
CLOSED = "eventstream_ingest_connections_closed_total"
BUFFERED = "eventstream_ingest_buffered_bytes"

pytestmark = pytest.mark.timeout(180)


class Trickler:
    """Sends ``data`` one byte every ``period`` seconds until the server closes
    the connection or the bytes run out (a bounded loop)."""

    def __init__(self, sock: socket.socket, data: bytes, period: float = 0.1) -> None:
        self.sock = sock
        self._data = data
        self._period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for index in range(len(self._data)):
            if self._stop.wait(self._period):
                return
            try:
                self.sock.send(self._data[index:index + 1])
            except OSError:
                return   # the server closed it

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_slow_senders_are_closed_at_the_frame_timeout_and_free_their_slots(start_server):
    server = start_server({"ingest": {"max_connections": 4, "frame_timeout_seconds": 1.0}})
    half_frame = encode_frame("slow/a", b"x" * 200)
    batch = encode_frame("slow/b", b"y" * 200)
    starts = {
        # a lone length prefix, then nothing at all
        "prefix": (half_frame[:4], b""),
        # two bytes of the handshake, then nothing
        "handshake": (b"ES", b""),
        # a frame at 10 bytes a second
        "frame": (b"", half_frame),
        # an acknowledged batch at 10 bytes a second
        "batch": (b"ESA1" + struct.pack(">I", len(batch)), batch),
    }
    slow = []
    for first, trickled in starts.values():
        sock = connect(server)
        sock.sendall(first)
        slow.append(Trickler(sock, trickled))
    try:
        answers = []
        for trickler in slow:
            message = read_message(trickler.sock)   # the server speaks first
            assert message is not None, "closed without an ERROR"
            answers.append(parse_error(message))
            assert read_message(trickler.sock) is None
    finally:
        for trickler in slow:
            trickler.stop()
            trickler.sock.close()
    for (position, reason, text), name in zip(answers, starts):
        assert reason == "FRAME_TIMEOUT", (name, reason, text)
        assert position == 0, name
        assert "ingest.frame_timeout_seconds" in text, text
    assert "the batch was not complete" in answers[3][2]
    assert metric(server, CLOSED, transport="tcp", reason="FRAME_TIMEOUT") == 4
    assert metric(server, "eventstream_events_rejected_total", transport="tcp",
                  reason="FRAME_TIMEOUT") == 4
    # Their slots are free: four producers at once are served.
    senders = [TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, timeout=SOCKET_TIMEOUT)
               for _ in range(4)]
    for index, sender in enumerate(senders):
        sender.send(f"fresh/{index}", b"z")
        assert len(sender.flush()) == 1
        sender.close()
    assert metric(server, CLOSED, transport="tcp", reason="CONNECTION_LIMIT") == 0


# ----------------------------------------------------------------------- memory

def resident_bytes(server: ServerProcess) -> int:
    """VmRSS of the server process."""
    assert server.process is not None
    with open(f"/proc/{server.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def unread_bytes(server_port: int, client_port: int) -> int | None:
    """Bytes the kernel holds for the server that it has not read yet (the
    server socket's receive queue), or None when the connection is gone."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                return int(fields[4].split(":")[1], 16)
    return None


class Pusher:
    """Sends ``data`` on its own connection from a thread; stops when closed."""

    def __init__(self, server: ServerProcess, data: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.tcp_port))
        self.port = self.sock.getsockname()[1]
        self.sent_all = False
        self._data = data
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.sock.sendall(self._data)
            self.sent_all = True
        except OSError:
            pass

    def close(self) -> None:
        hang_up(self.sock)
        self._thread.join()


def hang_up(sock: socket.socket) -> None:
    """Close ``sock``, waking a thread blocked sending on it."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def settle(server: ServerProcess, pushers: list[Pusher], deadline: float = 90.0
           ) -> list[tuple[bool, int | None]]:
    """Wait until the server reads no more: every connection either sent all
    its bytes and the server read them, or has bytes the server leaves unread;
    and that picture stays the same for 2 s (20 looks). Returns it: per
    connection, whether all was sent and the bytes the server left unread."""
    stable, last = 0, None
    give_up = time.monotonic() + deadline
    while stable < 20:
        assert time.monotonic() < give_up, "the server never stopped reading"
        picture = [(p.sent_all, unread_bytes(server.tcp_port, p.port)) for p in pushers]
        done = all(unread is not None and (unread > 0 or sent) for sent, unread in picture)
        stable = stable + 1 if done and picture == last else 0
        last = picture
        time.sleep(0.1)
    return last


def large_batch(size: int) -> bytes:
    """An acknowledged batch of ``size`` bytes of valid frames (plus its header)."""
    frame = encode_frame("big/batch", b"b" * (64 * 1024))
    body = frame * (size // len(frame))
    body += encode_frame("big/tail", b"t" * (size - len(body) - 7 - len("big/tail")))
    assert len(body) == size
    return struct.pack(">I", size) + body


def large_frame() -> bytes:
    """One fire-and-forget frame of 1 MiB."""
    return encode_frame("big/frame", b"f" * (MIB - 16))


GREEDY = [
    # 8 acknowledged batches of 16 MiB (limits.max_request_bytes), each missing its last byte
    pytest.param(8, lambda: b"ESA1" + large_batch(16 * MIB)[:-1], id="batches"),
    # 96 fire-and-forget frames of 1 MiB, each missing its last byte
    pytest.param(96, lambda: large_frame()[:-1], id="frames"),
]


@pytest.mark.parametrize(("connections", "make"), GREEDY)
def test_greedy_connections_wait_for_the_budget_instead_of_filling_memory(
        start_server: Callable[..., ServerProcess], connections: int, make: Callable[[], bytes]):
    budget = 16 * MIB
    server = start_server({"ingest": {"max_buffered_bytes": budget,
                                      "frame_timeout_seconds": 120}})
    # Warm up every path once (decoder scratch, lanes, log) before the baseline.
    with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, timeout=SOCKET_TIMEOUT) as sender:
        sender.send("warm/up", b"w" * 1000)
        sender.flush()
    baseline = resident_bytes(server)
    data = make()
    pushers = [Pusher(server, data) for _ in range(connections)]
    try:
        picture = settle(server, pushers)
        grown = resident_bytes(server) - baseline
        held = metric(server, BUFFERED, transport="tcp")
        waiting = sum(bool(unread) for _, unread in picture)
    finally:
        for pusher in pushers:
            pusher.close()
    # Before the budget the server held every byte it was sent: 8 x 16 MiB
    # (~130 MiB more resident) and 96 x 1 MiB (~100 MiB). Now: the budget,
    # a receive buffer per connection, and room for the allocator.
    allowed = budget + connections * IngestConfig().receive_buffer_bytes + 24 * MIB
    assert grown < allowed, f"resident memory grew by {grown / MIB:.1f} MiB"
    assert 0 < held <= budget + 2 * MIB
    assert waiting > 0, "every connection was read: the budget held nothing back"
    assert metric(server, "eventstream_ingest_backpressure_total", transport="tcp") > 0
    # Everything taken is given back when the connections go.
    assert wait_for_metric_below(server, BUFFERED, 1, transport="tcp") == 0
    with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, timeout=SOCKET_TIMEOUT) as sender:
        sender.send("after/greedy", b"a")
        assert len(sender.flush()) == 1


def wait_for_metric_below(server: ServerProcess, name: str, wanted: float, timeout: float = 30.0,
                          **labels: str) -> float:
    """Poll a series until it is below ``wanted`` or ``timeout`` passes; return its last value."""
    give_up = time.monotonic() + timeout
    while True:
        value = metric(server, name, **labels)
        if value < wanted or time.monotonic() > give_up:
            return value
        time.sleep(0.05)


# ------------------------------------------------------- whole under the budget

def test_large_frames_and_batches_arrive_whole_through_a_small_budget(start_server):
    """More than the budget at once, in frames and batches larger than the
    receive buffer: everything is acknowledged, in order, and nothing waits forever."""
    server = start_server({"ingest": {"max_buffered_bytes": MIB}, "storage": {"partitions": 1}})
    results: dict[str, object] = {}

    def acked(name: str) -> None:
        with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, batch_bytes=3 * MIB,
                            timeout=60) as sender:
            positions = []
            for batch in range(3):
                for index in range(40):
                    sender.send(f"whole/{name}", b"%d-%d-" % (batch, index) + b"p" * 70_000)
                positions += sender.flush()
            results[name] = positions

    def streamed(name: str) -> None:
        with TcpFrameSender("127.0.0.1", server.tcp_port, batch_bytes=MIB, timeout=60) as sender:
            for index in range(20):
                sender.send(f"whole/{name}", b"%d-" % index + b"q" * 300_000)
        results[name] = True

    threads = [threading.Thread(target=acked, args=(f"a{n}",)) for n in range(3)]
    threads += [threading.Thread(target=streamed, args=(f"s{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(results) == ["a0", "a1", "a2", "s0", "s1", "s2"]
    for name in ("a0", "a1", "a2"):
        offsets = [offset for _, offset in results[name]]
        assert len(offsets) == 120 and offsets == sorted(offsets), name
    total = 3 * 120 + 3 * 20
    assert wait_for_metric(server, "eventstream_events_committed_total", total,
                           transport="tcp") == total
    assert metric(server, "eventstream_ingest_backpressure_total", transport="tcp") > 0
    assert wait_for_metric_below(server, BUFFERED, 1, transport="tcp") == 0


def test_bad_frame_deep_in_a_large_batch_refuses_all_of_it(start_server):
    server = start_server({"storage": {"partitions": 1}})
    sender = TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, batch_bytes=64 * MIB,
                            timeout=SOCKET_TIMEOUT)
    for index in range(300):
        sender.send("deep/ok", b"%d" % index + b"d" * 10_000)   # ~3 MiB before the bad frame
    sender.send_encoded(encode_frame("deep/#", b"wildcard"))
    for _ in range(10):
        sender.send("deep/after", b"a")
    with pytest.raises(FrameError) as caught:
        sender.flush()
    assert (caught.value.reason, caught.value.position) == ("TOPIC_WILDCARD", 0)
    assert caught.value.message.startswith("batch 0 frame 300: ")
    assert metric(server, "eventstream_events_committed_total", transport="tcp") == 0
    assert metric(server, CLOSED, transport="tcp", reason="TOPIC_WILDCARD") == 1
    assert wait_for_metric_below(server, BUFFERED, 1, transport="tcp") == 0


def test_a_client_that_reads_no_answers_is_dropped(start_server):
    server = start_server({"ingest": {"frame_timeout_seconds": 1.0}})
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # ACKs pile up on the server
    sock.connect(("127.0.0.1", server.tcp_port))
    body = encode_frame("quiet/x", b"") * 1000
    batch = struct.pack(">I", len(body)) + body        # answered by an ACK of 12 KB

    def push() -> None:
        try:
            sock.sendall(b"ESA1")
            for _ in range(2000):   # far more ACKs than the socket buffers hold
                sock.sendall(batch)
        except OSError:
            pass

    thread = threading.Thread(target=push, daemon=True)
    thread.start()
    try:
        assert wait_for_metric(server, CLOSED, 1, timeout=90, transport="tcp",
                               reason="SEND_TIMEOUT") == 1
    finally:
        hang_up(sock)
        thread.join()
    assert "read no answer" in server.log()
    with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, timeout=SOCKET_TIMEOUT) as sender:
        sender.send("quiet/after", b"a")
        assert len(sender.flush()) == 1
