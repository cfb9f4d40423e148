"""NUMA topology from sysfs, and pinning the calling thread to a node.

Reads ``<sysfs_root>/devices/system/node`` (``/sys`` by default; tests pass
fixture trees) through libshardq. A machine without NUMA reports one node, 0,
holding every online CPU. Memory placement happens in the queue
(``numa=True``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from ctypes import byref, c_int32, c_size_t
from dataclasses import dataclass

from . import _lib
from .errors import ENOBUFS, raise_for

SysfsRoot = str | os.PathLike[str] | None


@dataclass(frozen=True, slots=True)
class NumaNode:
    """One NUMA node."""

    id: int
    """Node number, as in ``node<id>``."""
    cpus: tuple[int, ...]
    """CPU numbers of the node, ascending (empty for a memory-only node)."""


def _root(sysfs_root: SysfsRoot) -> bytes | None:
    return os.fsencode(sysfs_root) if sysfs_root is not None else None


def _native_list(call: Callable[..., int], *args: object) -> list[int]:
    capacity = 64
    while True:
        out = (c_int32 * capacity)()
        n = c_size_t()
        rc = call(*args, out, capacity, byref(n))
        if rc != ENOBUFS:
            break
        capacity = n.value
    if rc:
        raise_for(rc, "numa")
    return list(out[:n.value])


def discover(sysfs_root: SysfsRoot = None) -> list[NumaNode]:
    """List the online NUMA nodes and their CPUs.

    Args:
        sysfs_root: sysfs root; None means ``/sys``.

    Raises:
        MalformedInput: a sysfs list cannot be parsed.
        NumaNodeNotFound: a listed node has no cpulist.
        NativeLibraryError: libshardq missing.
    """
    lib = _lib.load()
    root = _root(sysfs_root)
    ids = _native_list(lib.shardq_numa_nodes, root)
    return [NumaNode(i, tuple(_native_list(lib.shardq_numa_node_cpus, root, i))) for i in ids]


def pin_thread(node: int, sysfs_root: SysfsRoot = None) -> None:
    """Restrict the calling thread to the CPUs of ``node``.

    Raises:
        NumaNodeNotFound: no such node.
        InvalidArgument: the node has no CPU this machine can run on.
        NativeError: sched_setaffinity failed.
    """
    rc = _lib.load().shardq_numa_pin_thread(_root(sysfs_root), node)
    if rc:
        raise_for(rc, "pin_thread")


__all__ = ["NumaNode", "discover", "pin_thread"]
