"""Storage faults for a real server process: a fault plan drawn from a seed.

The server reads a test-only fault plan from ``EVENTSTREAM_TEST_FAULTS`` and
then fails the planned file operation (the n-th ``write``, ``fsync``,
``rename``, index ``write_file``... of the log's own files) with the planned
errno. A :class:`FaultCase` is one such plan plus the server settings and the
workload it runs under, all derived from one seed, so a failing case can be
run again alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from tests.support.server import ServerProcess

FAULTS_ENV = "EVENTSTREAM_TEST_FAULTS"
"""The server's environment variable for a test-only fault plan."""

LOG_FILES = "/log"
"""Part of every path of the log's segment and index files (``<data_dir>/log/``, the
directory itself for its syncs): a fault counts only calls on those."""

OPS = ("write", "fsync", "rename", "write_file", "open", "fsync_dir")
"""The operations of a commit round: record writes and fsyncs, the index files
written when a segment is sealed (``write_file``, whose ``rename`` and
directory sync count on their own), a new segment's creation and its
directory's sync."""

ERRORS = ("ENOSPC", "EIO")

# The n-th call that fails is drawn below these: every op is called at least
# this often by the workload (rounds roll a segment every few events).
_MOST_NTH = {"write": 40, "fsync": 30, "rename": 8, "write_file": 8, "open": 6, "fsync_dir": 6}


@dataclass(frozen=True)
class FaultCase:
    """One fault, where it strikes, and the server it strikes."""

    seed: int
    op: str
    errno: str
    nth: int
    """The 1-based call of ``op`` on the log's files that fails first."""
    sticky: bool
    """Every later call of ``op`` fails too (as a full disk does), not only the n-th."""
    partial: int
    """For ``write``: bytes of the data written before the failure (-1: none)."""
    fsync: str
    partitions: int
    segment_bytes: int
    crash: bool
    """After the fault, SIGKILL the server (else SIGTERM)."""

    @classmethod
    def draw(cls, seed: int, op: str, errno: str) -> FaultCase:
        """The case of ``seed`` for a fault of ``op`` with ``errno``."""
        rng = random.Random(seed)
        # interval and never only matter for the calls they still make.
        fsync = rng.choice(["always", "always", "interval", "never"])
        if op in ("fsync", "fsync_dir") and fsync == "never":
            fsync = "always"
        return cls(seed=seed, op=op, errno=errno, nth=rng.randint(1, _MOST_NTH[op]),
                   sticky=rng.random() < 0.5,
                   partial=rng.choice([-1, 1, 7, 30, 500]) if op == "write" else -1,
                   fsync=fsync, partitions=rng.randint(1, 3),
                   segment_bytes=rng.choice([4096, 16384]), crash=rng.random() < 0.5)

    @property
    def plan(self) -> str:
        """The fault plan the server is started with."""
        plan = (f"op={self.op},nth={self.nth},errno={self.errno},path={LOG_FILES},"
                f"times={0 if self.sticky else 1}")
        return plan + (f",partial={self.partial}" if self.partial > 0 else "")

    def config(self) -> dict[str, Any]:
        """Server settings (merged over the test defaults)."""
        return {"storage": {"partitions": self.partitions, "fsync": self.fsync,
                            "fsync_interval_ms": 20, "segment_bytes": self.segment_bytes}}

    def __str__(self) -> str:
        return (f"seed {self.seed}: {self.plan} under fsync {self.fsync}, "
                f"{self.partitions} partitions, {self.segment_bytes}-byte segments, "
                f"{'SIGKILL' if self.crash else 'SIGTERM'} after the fault")


def fault_env(plan: str) -> dict[str, str]:
    """The environment that makes a server fail file operations as ``plan`` says."""
    return {FAULTS_ENV: plan}


def restart_without_faults(server: ServerProcess) -> None:
    """Start ``server`` again on the same data dir with no fault plan."""
    server.env.pop(FAULTS_ENV, None)
    server.start()


def injected_faults(log: str) -> int:
    """How many faults the server's log says it injected."""
    return log.count("injected fault:")


__all__ = ["ERRORS", "FAULTS_ENV", "LOG_FILES", "OPS", "FaultCase", "fault_env",
           "injected_faults", "restart_without_faults"]
