"""Record what clients saw, and check it for linearizability with porcupine.

A :class:`HistoryRecorder` wraps SDK calls: every publish (with its event id)
and every read of a partition (a subscription from an offset up to the end
a node reported) is recorded with its invocation and completion times and
its outcome. :func:`check_history` writes the history as JSON lines and runs
``historycheck`` (``tools/historycheck``, built into ``.tools/bin`` by
``tools/install-cluster-tools.sh``), which checks it with porcupine against a
per-partition append-only log: an acknowledged publish is in every later read
at its offset, no offset holds two events, no event is stored twice, reads
never go backwards, and a publish whose outcome was unknown may have taken
effect or not.

Outcomes of a publish:

- ``ok``: acknowledged with (partition, offset); a duplicate names the first one.
- ``error``: refused with a code in :data:`DEFINITE_REFUSALS` (the server
  stored nothing).
- ``unknown``: any other failure (timeout, UNAVAILABLE, a broken connection):
  stored or not, both are right.

An operation that has not returned when the history is written (a task
cancelled mid-call, a pipelined publish whose stream ended without an
answer) is written as ``unknown``: it may have taken effect.

Timestamps come from ``time.monotonic_ns`` (one clock for every thread and
process of the machine). The recorder is thread-safe: publishers and readers
may run in threads, tasks, or both.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from eventstream.client import (
    AsyncClient,
    AsyncPublisher,
    Client,
    Event,
    EventStreamError,
    PublishAck,
    PublishResult,
)

ROOT = Path(__file__).resolve().parents[2]
HISTORYCHECK = ROOT / ".tools" / "bin" / "historycheck"

DEFINITE_REFUSALS = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED})
"""Codes that mean the server stored nothing. Every other failure is an unknown outcome."""

EndOffset = int | Callable[[], int] | Callable[[], Awaitable[int]]
"""Where a read stops: an offset, or a function asked once the read has begun
(e.g. a node's ``/status`` end offset of the partition)."""


def _failure(error: BaseException) -> dict[str, Any]:
    """The output of a publish that failed with ``error``."""
    code = getattr(error, "code", None)
    status = "error" if code in DEFINITE_REFUSALS else "unknown"
    return {"status": status, "error": str(error)[:200] or type(error).__name__}


def _settled(pending: asyncio.Future[PublishAck]) -> dict[str, Any]:
    """The output of a pipelined publish whose future is done."""
    if pending.cancelled():
        return {"status": "unknown", "error": "cancelled"}
    error = pending.exception()
    return _failure(error) if error is not None else _acknowledged(pending.result())


def _acknowledged(ack: PublishAck) -> dict[str, Any]:
    return {"status": "ok", "partition": ack.partition, "offset": ack.offset}


class Invocation:
    """One operation under way; :meth:`complete` records it with its outcome."""

    def __init__(self, recorder: HistoryRecorder, client: int | str, op: str,
                 arguments: dict[str, Any]) -> None:
        self._recorder = recorder
        self._line = {"client": client, "op": op, "input": arguments}
        self._call = time.monotonic_ns()
        recorder._opened(self)

    def complete(self, output: dict[str, Any]) -> None:
        """Record the operation as returned now, with ``output`` (only the first call counts)."""
        self._recorder._completed(self, self.line(output))

    def line(self, output: dict[str, Any]) -> dict[str, Any]:
        """The history line of this operation returning now with ``output``."""
        return {**self._line, "output": output, "call": self._call, "return": time.monotonic_ns()}


class HistoryRecorder:
    """Thread-safe record of publishes and reads, in the format ``historycheck`` reads.

    Every wrapper takes ``client_id``: who made the call (any int or str; one
    per task or thread reads best in the visualization). Events need ids:
    one left empty gets a fresh one here, so retries can be recognised.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: list[dict[str, Any]] = []
        self._open: dict[int, Invocation] = {}
        self._next_id = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._lines)

    @property
    def operations(self) -> list[dict[str, Any]]:
        """A copy of every completed operation so far, in completion order."""
        with self._lock:
            return list(self._lines)

    @property
    def pending(self) -> int:
        """Operations invoked that have not returned yet."""
        with self._lock:
            return len(self._open)

    def invoke(self, client_id: int | str, op: str, arguments: dict[str, Any]) -> Invocation:
        """Start recording an operation of another kind of call (``op`` publish or read)."""
        return Invocation(self, client_id, op, arguments)

    def _opened(self, invocation: Invocation) -> None:
        with self._lock:
            self._open[id(invocation)] = invocation

    def _completed(self, invocation: Invocation, line: dict[str, Any]) -> None:
        with self._lock:
            if self._open.pop(id(invocation), None) is not None:
                self._lines.append(line)

    def _with_id(self, event: Event) -> Event:
        if event.id:
            return event
        with self._lock:
            self._next_id += 1
            number = self._next_id
        return Event(event.topic, event.payload, key=event.key, priority=event.priority,
                     headers=event.headers, id=f"h-{number}", publish_time=event.publish_time)

    # ------------------------------------------------------------------ publish

    async def publish(self, client: AsyncClient, event: Event, *, client_id: int | str,
                      partition: int | None = None, timeout: float | None = None) -> PublishAck | None:
        """Publish one event; its acknowledgement, or None when it failed (recorded).

        Args:
            client: the SDK client to publish with.
            event: the event (an empty id is filled).
            client_id: who publishes.
            partition: where the event must land, when the caller knows it.
            timeout: the call's deadline (retries of the client included).
        """
        event = self._with_id(event)
        invocation = self.invoke(client_id, "publish", _publish_input(event, partition))
        try:
            ack = await client.publish(event, timeout=timeout)
        except EventStreamError as error:
            invocation.complete(_failure(error))
            return None
        except BaseException as error:  # cancelled, or a bug: it may have taken effect
            invocation.complete(_failure(error))
            raise
        invocation.complete(_acknowledged(ack))
        return ack

    async def publish_batch(self, client: AsyncClient, events: Sequence[Event], *,
                            client_id: int | str, timeout: float | None = None
                            ) -> list[PublishResult] | None:
        """Publish a batch: one operation per event, with the batch's call and return times.

        Returns the per-event results, or None when the call failed (every
        event then has an unknown outcome, or a refused one for a definite code).
        """
        events = [self._with_id(event) for event in events]
        invocations = [self.invoke(client_id, "publish", _publish_input(event, None))
                       for event in events]
        try:
            results = await client.publish_batch(events, timeout=timeout)
        except BaseException as error:
            for invocation in invocations:
                invocation.complete(_failure(error))
            if isinstance(error, EventStreamError):
                return None
            raise
        for invocation, result in zip(invocations, results, strict=True):
            invocation.complete(_acknowledged(result.ack) if result.ack is not None
                                else _failure(result.error or RuntimeError("no ack, no error")))
        return results

    def publish_blocking(self, client: Client, event: Event, *, client_id: int | str,
                         partition: int | None = None, timeout: float | None = None
                         ) -> PublishAck | None:
        """:meth:`publish` with the blocking client (for publisher threads)."""
        event = self._with_id(event)
        invocation = self.invoke(client_id, "publish", _publish_input(event, partition))
        try:
            ack = client.publish(event, timeout=timeout)
        except EventStreamError as error:
            invocation.complete(_failure(error))
            return None
        except BaseException as error:
            invocation.complete(_failure(error))
            raise
        invocation.complete(_acknowledged(ack))
        return ack

    async def send(self, stream: AsyncPublisher, event: Event, *, client_id: int | str,
                   partition: int | None = None) -> asyncio.Future[PublishAck]:
        """Send one event on a pipelined publish stream; the stream's future of its ack.

        The publish returns when the future settles (recorded then, by a done
        callback); one that never settles is written as unknown.

        Args:
            stream: an open :meth:`AsyncClient.publish_stream`.
            event: the event (an empty id is filled).
            client_id: who publishes (one per stream reads best).
            partition: where the event must land, when the caller knows it.
        """
        event = self._with_id(event)
        invocation = self.invoke(client_id, "publish", _publish_input(event, partition))
        try:
            pending = await stream.send(event)
        except BaseException as error:
            invocation.complete(_failure(error))
            raise
        pending.add_done_callback(lambda done: invocation.complete(_settled(done)))
        return pending

    # ------------------------------------------------------------------ read

    async def read(self, client: AsyncClient, partition: int, *, end: EndOffset,
                   client_id: int | str, start: int = 0, complete: bool = True,
                   pattern: str = "#", timeout: float = 30.0) -> list[str] | None:
        """Read a partition's event ids from ``start`` up to ``end`` with a subscription.

        Args:
            client: the SDK client (the node it talks to serves the read).
            partition: the partition read.
            end: where to stop (exclusive): an offset, or a function called
                once the read has begun, e.g. the serving node's end offset.
            client_id: who reads.
            start: the first offset read.
            complete: True claims the ids are the whole log from ``start`` at
                one instant of the read (``end`` was the log's end then): right
                for a node that is up to date, e.g. the only node or the
                leader. False claims only a prefix (a follower's applied log
                may lag behind acknowledged publishes): order, gaps, reused
                offsets and duplicates are still checked, recency is not.
            pattern: the subscription's topic pattern (every topic by default).
            timeout: seconds for the whole read.

        Returns:
            The ids in offset order, or None when the read failed (recorded and
            ignored by the checker).
        """
        invocation = self.invoke(client_id, "read", {"partition": partition, "start": start})
        try:
            async with asyncio.timeout(timeout):
                stop = await _resolve(end)
                ids = await _subscribe_ids(client, partition, start, stop, pattern)
        except (EventStreamError, TimeoutError) as error:
            invocation.complete({"status": "error", "error": str(error)[:200] or "timeout"})
            return None
        invocation.complete({"status": "ok", "ids": ids, "complete": complete})
        return ids

    # ------------------------------------------------------------------ output

    def lines(self) -> Iterator[str]:
        """The history as JSON lines, in completion order.

        Operations still open come last, as unknown outcomes returning now.
        """
        with self._lock:
            lines = list(self._lines)
            still_open = list(self._open.values())
        lines += [invocation.line({"status": "unknown", "error": "no answer yet"})
                  for invocation in still_open]
        for line in lines:
            yield json.dumps(line, separators=(",", ":"))

    def write(self, path: Path) -> Path:
        """Write the history to ``path`` (JSON lines); return ``path``."""
        path.write_text("".join(f"{line}\n" for line in self.lines()))
        return path


def _publish_input(event: Event, partition: int | None) -> dict[str, Any]:
    arguments: dict[str, Any] = {"id": event.id}
    if partition is not None:
        arguments["partition"] = partition
    return arguments


async def _resolve(end: EndOffset) -> int:
    if isinstance(end, int):
        return end
    value = end()
    return await value if inspect.isawaitable(value) else value


async def _subscribe_ids(client: AsyncClient, partition: int, start: int, stop: int,
                         pattern: str) -> list[str]:
    """Ids of ``partition`` from ``start`` up to ``stop`` (exclusive), in delivery order."""
    ids: list[str] = []
    if stop <= start:
        return ids
    async with client.subscribe(pattern, start={partition: start}) as subscription:
        async for event in subscription:
            if event.partition != partition:
                continue  # unlisted partitions start at their latest offset
            ids.append(event.id)
            if event.offset + 1 >= stop:
                break
    return ids


# ---------------------------------------------------------------------- checking

class HistoryCheckError(RuntimeError):
    """The checker could not decide (bad history, no verdict in time, not installed)."""


@dataclass(frozen=True)
class HistoryVerdict:
    """What ``historycheck`` said about one history."""

    ok: bool
    """True when the history is linearizable."""
    report: dict[str, Any]
    """Its JSON report: counts, partitions, failed_partitions, problems, html."""
    history: Path
    """The history file checked."""

    @property
    def html(self) -> Path | None:
        """Porcupine's visualization of a violation (None when the history is linearizable)."""
        return Path(self.report["html"]) if self.report.get("html") else None

    @property
    def problems(self) -> list[str]:
        """Why the history is not linearizable (empty when it is)."""
        return list(self.report["problems"])


def check_history(history: HistoryRecorder | Path, workdir: Path | None = None, *,
                  timeout: float = 60.0) -> HistoryVerdict:
    """Check a history with ``historycheck``.

    Args:
        history: a recorder (written to ``workdir/history.jsonl`` first) or a
            history file already written.
        workdir: where the history and the visualization go (needed for a
            recorder; defaults to the history file's directory).
        timeout: seconds the checker may search before giving up.

    Raises:
        HistoryCheckError: the checker is missing, the history is malformed,
            or no verdict came within ``timeout``.
    """
    if isinstance(history, HistoryRecorder):
        if workdir is None:
            raise ValueError("workdir is needed to write a recorder's history")
        path = history.write(workdir / "history.jsonl")
    else:
        path = history
    html = (workdir or path.parent) / f"{path.stem}.html"
    if not HISTORYCHECK.is_file():
        raise HistoryCheckError(f"{HISTORYCHECK} is missing: run tools/install-cluster-tools.sh")
    done = subprocess.run([str(HISTORYCHECK), "-json", "-timeout", f"{timeout}s", "-html", str(html),
                           str(path)], capture_output=True, timeout=timeout + 60)
    try:
        report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        report = {"error": (done.stdout + done.stderr).decode(errors="replace")[-2000:]}
    if done.returncode not in (0, 1):
        raise HistoryCheckError(f"historycheck exited {done.returncode}: {report.get('error')}")
    return HistoryVerdict(ok=done.returncode == 0, report=report, history=path)


def assert_linearizable(history: HistoryRecorder | Path, workdir: Path | None = None, *,
                        timeout: float = 60.0) -> HistoryVerdict:
    """:func:`check_history`, failing with the problems and the visualization's path."""
    verdict = check_history(history, workdir, timeout=timeout)
    assert verdict.ok, (f"history {verdict.history} is not linearizable: {verdict.problems}; "
                        f"see {verdict.html}")
    return verdict


__all__ = ["DEFINITE_REFUSALS", "HISTORYCHECK", "EndOffset", "HistoryCheckError", "HistoryRecorder",
           "HistoryVerdict", "Invocation", "assert_linearizable", "check_history"]
