"""NUMA topology from sysfs, and pinning the calling thread to a node.

Reads ``<sysfs_root>/devices/system/node`` (``/sys`` by default; tests pass
fixture trees). A machine without NUMA reports one node, 0, holding every
online CPU. Both backends read the same files the same way; the native one is
libshardq's, the pure one is plain Python (``os.sched_setaffinity`` for
pinning). Memory placement happens in the queue (``numa=True``).
"""

from __future__ import annotations

import os
from ctypes import byref, c_int32, c_size_t
from dataclasses import dataclass
from pathlib import Path

from . import _lib
from .errors import EBADMSG, EINVAL, ENOBUFS, ENOENT, raise_for

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


def _native_list(call, *args: object) -> list[int]:  # noqa: ANN001
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


def discover(sysfs_root: SysfsRoot = None, *, native: bool | None = None) -> list[NumaNode]:
    """List the online NUMA nodes and their CPUs.

    Args:
        sysfs_root: sysfs root; None means ``/sys``.
        native: backend choice (see :func:`._lib.use_native`).

    Raises:
        MalformedInput: a sysfs list cannot be parsed.
        NumaNodeNotFound: a listed node has no cpulist.
        NativeLibraryError: native chosen and libshardq missing.
    """
    if _lib.use_native(native):
        lib = _lib.load()
        root = _root(sysfs_root)
        ids = _native_list(lib.shardq_numa_nodes, root)
        return [NumaNode(i, tuple(_native_list(lib.shardq_numa_node_cpus, root, i))) for i in ids]
    return [NumaNode(i, tuple(_pure_cpus(sysfs_root, i))) for i in _pure_nodes(sysfs_root)]


def pin_thread(node: int, sysfs_root: SysfsRoot = None, *, native: bool | None = None) -> None:
    """Restrict the calling thread to the CPUs of ``node``.

    Raises:
        NumaNodeNotFound: no such node.
        InvalidArgument: the node has no CPU this machine can run on.
        NativeError: sched_setaffinity failed.
    """
    if _lib.use_native(native):
        rc = _lib.load().shardq_numa_pin_thread(_root(sysfs_root), node)
        if rc:
            raise_for(rc, "pin_thread")
        return
    cpus = [c for c in _pure_cpus(sysfs_root, node) if c < 1024]
    if not cpus:
        raise_for(EINVAL, "pin_thread")
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        raise_for(-(exc.errno or EINVAL), "pin_thread")


def _base(sysfs_root: SysfsRoot) -> Path:
    return Path(os.fsdecode(sysfs_root) if sysfs_root is not None else "/sys") / "devices" / "system"


def _parse_list(text: str) -> list[int]:
    line = text.split("\n", 1)[0].strip()
    out: list[int] = []
    if not line:
        return out
    parts = line.split(",")
    if parts[-1] == "":
        parts.pop()  # a trailing comma, as the kernel's parser allows
    for part in parts:
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise_for(EBADMSG, "numa")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a or b > 0x7FFFFFFF or len(out) + b - a + 1 > 1 << 20:
            raise_for(EBADMSG, "numa")
        out.extend(range(a, b + 1))
    return out


def _pure_nodes(sysfs_root: SysfsRoot) -> list[int]:
    node_dir = _base(sysfs_root) / "node"
    try:
        return _parse_list((node_dir / "online").read_text())
    except FileNotFoundError:
        pass
    ids = []
    if node_dir.is_dir():
        for entry in node_dir.iterdir():
            suffix = entry.name[4:]
            if entry.name.startswith("node") and suffix.isdigit():
                ids.append(int(suffix))
    return sorted(ids) or [0]


def _pure_cpus(sysfs_root: SysfsRoot, node: int) -> list[int]:
    if node < 0:
        raise_for(EINVAL, "numa")
    base = _base(sysfs_root)
    try:
        return _parse_list((base / "node" / f"node{node}" / "cpulist").read_text())
    except FileNotFoundError:
        if node == 0 and not (base / "node").is_dir():
            try:
                return _parse_list((base / "cpu" / "online").read_text())
            except FileNotFoundError:
                pass
    raise_for(ENOENT, "numa")


__all__ = ["NumaNode", "discover", "pin_thread"]
