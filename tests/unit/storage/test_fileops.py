"""The fault-injection seam of the durable log: plans parse, and faults fire as planned."""

from __future__ import annotations

import errno
import os

import pytest

from eventstream.server.storage.fileops import FileOps, FaultyFileOps, parse_plan


def test_plain_write_file_replaces_whole(tmp_path):
    target = tmp_path / "state"
    FileOps().write_file(target, b"one", sync=True)
    FileOps().write_file(target, b"two", sync=True)
    assert target.read_bytes() == b"two"
    assert not (tmp_path / "state.tmp").exists()


def test_nth_call_fails_once_then_succeeds(tmp_path):
    ops = FaultyFileOps(parse_plan("op=write,nth=2,errno=ENOSPC"))
    fd = ops.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    ops.write(fd, b"a", tmp_path / "f")
    with pytest.raises(OSError) as failed:
        ops.write(fd, b"b", tmp_path / "f")
    assert failed.value.errno == errno.ENOSPC
    ops.write(fd, b"c", tmp_path / "f")
    ops.close(fd)
    assert (tmp_path / "f").read_bytes() == b"ac"
    assert ops.injected == 1


def test_sticky_fault_with_partial_write_and_path_filter(tmp_path):
    ops = FaultyFileOps(parse_plan("op=write,path=.log,partial=2,times=0"))
    fd = ops.open(tmp_path / "x.index", os.O_WRONLY | os.O_CREAT)
    ops.write(fd, b"index", tmp_path / "x.index")   # another path: not counted
    ops.close(fd)
    fd = ops.open(tmp_path / "x.log", os.O_WRONLY | os.O_CREAT)
    for _ in range(3):
        with pytest.raises(OSError):
            ops.write(fd, b"abcd", tmp_path / "x.log")
    ops.close(fd)
    assert (tmp_path / "x.log").read_bytes() == b"ab" * 3
    assert ops.injected == 3


@pytest.mark.parametrize("plan, names", [
    ("op=copy", "unknown op"),
    ("op=write,errno=ENOTHING", "unknown errno"),
    ("op=write,when=later", "unknown keys"),
])
def test_bad_plans_are_refused_naming_the_part(plan, names):
    with pytest.raises(ValueError, match=names):
        parse_plan(plan)
