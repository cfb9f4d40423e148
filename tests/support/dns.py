"""A DNS responder the tests control (dnslib), on 127.0.0.1 and a free UDP port.

It answers A records from a table the test edits while it runs (a name not in
the table gets NXDOMAIN, as a pod's name does before the pod has an address)
and counts the questions per name, so a test can wait until a client asked.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer


class Responder(BaseResolver):
    """Answers from ``records`` (name without the final dot -> IPv4 address)."""

    def __init__(self) -> None:
        self.records: dict[str, str] = {}
        self.questions: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: DNSServer | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``: what ``cluster.dns_server`` takes."""
        assert self._server is not None, "start() first"
        return f"127.0.0.1:{self._server.server.server_address[1]}"

    def start(self) -> Responder:
        """Serve UDP on a free port in a thread."""
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False,
                          logf=lambda _line: None)
        self._server = DNSServer(self, address="127.0.0.1", port=0, logger=quiet)
        self._server.start_thread()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.stop()
            self._server.server.server_close()
            self._server = None

    def set(self, name: str, address: str) -> None:
        """Answer ``name`` with ``address`` from now on."""
        with self._lock:
            self.records[name.rstrip(".")] = address

    def asked(self, name: str) -> int:
        """Questions seen for ``name`` (any type)."""
        with self._lock:
            return self.questions[name.rstrip(".")]

    def wait_asked(self, name: str, times: int, timeout: float = 30) -> None:
        """Block until ``name`` was asked ``times`` times; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.asked(name) < times:
            assert time.monotonic() < deadline, f"{name} asked {self.asked(name)} times, not {times}"
            time.sleep(0.01)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        """Answer one question (the hook dnslib calls)."""
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        with self._lock:
            self.questions[name] += 1
            address = self.records.get(name)
        if address is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=1))
        return reply
