"""The NUMA discovery and pinning of :mod:`eventstream.server.native.numa`, in plain Python.

Pure Python over sysfs files: the reference the native functions are compared
with on fixture trees (tests only).
"""

from __future__ import annotations

import os
from pathlib import Path

from eventstream.server.native.errors import EBADMSG, EINVAL, ENOENT, raise_for
from eventstream.server.native.numa import NumaNode, SysfsRoot


def discover(sysfs_root: SysfsRoot = None) -> list[NumaNode]:
    """List the online NUMA nodes and their CPUs, as :func:`.numa.discover`."""
    return [NumaNode(i, tuple(_cpus(sysfs_root, i))) for i in _nodes(sysfs_root)]


def pin_thread(node: int, sysfs_root: SysfsRoot = None) -> None:
    """Restrict the calling thread to the CPUs of ``node``, as :func:`.numa.pin_thread`."""
    cpus = [c for c in _cpus(sysfs_root, node) if c < 1024]
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


def _nodes(sysfs_root: SysfsRoot) -> list[int]:
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


def _cpus(sysfs_root: SysfsRoot, node: int) -> list[int]:
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


