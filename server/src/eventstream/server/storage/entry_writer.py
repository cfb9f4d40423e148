"""The entry log's I/O thread: every write, fsync, truncation and deletion, in order.

The event loop thread submits :class:`Job` s; the thread takes every job
queued so far as one *group*, runs them in submission order and, under
``fsync: always``, ends the group with one ``fdatasync`` of the files it
wrote (and a sync of directories that got a new file): while a group is
being written and synced, the next appends queue up and form the next group,
so appends pipeline and share fsyncs without waiting for each other. Then it
reports the group back to the event loop thread, which resolves the jobs'
futures in order.

The first error of any file operation halts the writer: the failed job and
every job after it fail, and no file operation runs again until the log is
reopened. An fsync is never retried (after a failed fsync the kernel may have
dropped the pages it could not write, so a second fsync would report success
for lost data).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .entry_segment import EntrySegment
from .fileops import FileOps

log = logging.getLogger(__name__)

TEST_BUGS = frozenset({"ignore_fsync_errors", "ack_before_write", "install_old_log_first"})
"""Known bugs a test can switch back on (``bugs=``), to prove its checks can fail:
``ignore_fsync_errors`` logs a failed fsync and goes on (the bug PostgreSQL had
until 2018); ``ack_before_write`` completes a group's jobs before running them;
``install_old_log_first`` moves the old log away before an install's commit point
(a crash then leaves neither log)."""


@dataclass(slots=True, eq=False)
class Job:
    """One unit of work for the I/O thread.

    ``run`` is called on the I/O thread; ``wrote`` names the segment it
    appended to (so the group's fsync covers it) and ``new_dir`` a directory
    that got a new file. ``barrier``: sync every written file before running
    it (a hard state must never cover entries that are not durable).
    ``sync_after``: sync every written file after it, whatever the policy
    (the periodic sync, close). ``last_after`` is the log's last index once
    the job is done: the durable mark moves to it when the job completes.
    ``done`` is called on the event loop thread with None or the exception.
    """

    run: Callable[[Job], None] | None
    last_after: int
    done: Callable[[BaseException | None], None] | None = None
    barrier: bool = False
    sync_after: bool = False
    wrote: EntrySegment | None = field(default=None)
    new_dir: Path | None = None
    synced: bool = False
    """Set by the thread: the job's effects were fdatasynced before it completed."""
    reported: bool = False
    """Set on the event loop thread once ``done`` was called."""


class Writer:
    """The I/O thread of one entry log.

    Args:
        ops: the file operations (faults can be injected through them).
        policy: ``always``, ``interval`` or ``never``.
        report: called (through ``call_soon`` on the event loop thread) with
            the completed jobs, the failed ones and the error, once per group.
        on_fsync: called with the seconds each fsync round took (I/O thread).
        bugs: test-only: known bugs to re-introduce (see :data:`TEST_BUGS`).
    """

    def __init__(self, ops: FileOps, policy: str,
                 report: Callable[[list[Job], list[Job], BaseException | None], None],
                 call_soon: Callable[..., Any],
                 on_fsync: Callable[[float], None] | None = None,
                 bugs: frozenset[str] = frozenset()) -> None:
        if not bugs <= TEST_BUGS:
            raise ValueError(f"unknown test bugs {sorted(bugs - TEST_BUGS)}")
        self.bugs = bugs
        self.ops = ops
        self.policy = policy
        self.fsyncs = 0
        """fdatasync calls made on segment files (for tests and metrics)."""
        self.halted: BaseException | None = None
        self._report = report
        self._call_soon = call_soon
        self._on_fsync = on_fsync
        self._jobs: list[Job] = []
        self._stop = False
        self._cond = threading.Condition()
        self._dirty: set[EntrySegment] = set()
        self._dirty_dirs: set[Path] = set()
        self._thread = threading.Thread(target=self._loop, name="eventstream-entry-log-io",
                                        daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue a job (event loop thread)."""
        with self._cond:
            self._jobs.append(job)
            self._cond.notify()

    def submit_all(self, jobs: list[Job]) -> None:
        """Queue jobs at once, so the thread takes them in one group (event loop thread)."""
        with self._cond:
            self._jobs.extend(jobs)
            self._cond.notify()

    def stop(self) -> None:
        """Run what is queued, then end the thread (blocks until it has)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join()

    # -- the I/O thread -------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stop:
                    self._cond.wait()
                if not self._jobs:
                    return
                jobs, self._jobs = self._jobs, []
            completed, failed, error = self._run_group(jobs)
            # RuntimeError: the event loop is closed, nobody waits any more.
            with contextlib.suppress(RuntimeError):
                self._call_soon(self._report, completed, failed, error)

    def _run_group(self, jobs: list[Job]) -> tuple[list[Job], list[Job], BaseException | None]:
        """Run a group; return (completed, failed, error)."""
        if self.halted is not None:
            return [], jobs, self.halted
        if "ack_before_write" in self.bugs:
            self._call_soon(self._report, jobs, [], None)
        always = self.policy == "always"
        settled = 0  # jobs[:settled] are complete by the policy, whatever fails later
        number = 0
        try:
            for number, job in enumerate(jobs):
                if job.barrier:
                    self._sync()
                    settled = number
                if job.run is not None:
                    job.run(job)
                if job.wrote is not None:
                    self._dirty.add(job.wrote)
                if job.new_dir is not None:
                    self._dirty_dirs.add(job.new_dir)
                if job.sync_after:
                    self._sync()
                if not always or job.sync_after:
                    settled = number + 1
            number = len(jobs)
            if always:
                self._sync()
                settled = len(jobs)
        except OSError as exc:
            self.halted = exc
            log.error("the entry log halts: %s", exc)
            completed = jobs[:min(settled, number)]
            for job in completed:
                job.synced = not self._dirty
            return completed, jobs[len(completed):], exc
        synced = not self._dirty and not self._dirty_dirs
        for job in jobs:
            job.synced = synced
        return jobs, [], None

    def _sync(self) -> None:
        """Fdatasync every written file, then sync directories that got a file."""
        if not self._dirty and not self._dirty_dirs:
            return
        started = time.perf_counter()
        for segment in list(self._dirty):
            if segment.write_fd is not None and segment.synced < segment.written:
                try:
                    self.ops.fsync(segment.write_fd, segment.path)
                except OSError:
                    if "ignore_fsync_errors" not in self.bugs:
                        raise
                    log.exception("fsync failed; going on (a test-only bug)")
                self.fsyncs += 1
            segment.synced = segment.written
            self._dirty.discard(segment)
        for directory in list(self._dirty_dirs):
            self.ops.fsync_dir(directory)
            self._dirty_dirs.discard(directory)
        if self._on_fsync is not None:
            self._on_fsync(time.perf_counter() - started)

    def forget(self, segment: EntrySegment) -> None:
        """A segment closed or deleted by a job: nothing of it is left to sync (I/O thread)."""
        self._dirty.discard(segment)


__all__ = ["TEST_BUGS", "Job", "Writer"]
