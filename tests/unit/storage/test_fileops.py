"""The fault-injection seam of the durable log: plans parse, and faults fire as planned."""

from __future__ import annotations

import errno
import os

import pytest

from eventstream.server.storage.fileops import FaultyFileOps, FileOps, parse_plan


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


def test_the_rename_and_directory_sync_of_write_file_can_fail_as_planned(tmp_path):
    target = tmp_path / "x.index"
    FileOps().write_file(target, b"old", sync=True)
    ops = FaultyFileOps(parse_plan("op=rename,path=.index;op=fsync_dir,nth=2"))
    with pytest.raises(OSError):
        ops.write_file(target, b"new", sync=True)
    assert target.read_bytes() == b"old"          # the failed rename left the old file whole
    ops.write_file(target, b"new", sync=True)     # the 1st dir sync passes,
    with pytest.raises(OSError):
        ops.write_file(target, b"newer", sync=True)   # the 2nd fails after the rename
    assert target.read_bytes() == b"newer"
    assert ops.injected == 2


def test_errors_name_the_file_even_when_the_call_had_only_a_descriptor(tmp_path):
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError) as failed:
            FileOps().write(fd, b"x", path)
    finally:
        os.close(fd)
    assert failed.value.errno == errno.EBADF and failed.value.filename == str(path)


def test_mkdir_makes_parents_and_can_fail_as_planned(tmp_path):
    FileOps().mkdir(tmp_path / "a" / "b")
    FileOps().mkdir(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    with pytest.raises(OSError) as failed:
        FaultyFileOps(parse_plan("op=mkdir,errno=ENOSPC")).mkdir(tmp_path / "c")
    assert failed.value.errno == errno.ENOSPC and not (tmp_path / "c").exists()


def test_a_lost_write_reports_success_and_writes_nothing(tmp_path):
    ops = FaultyFileOps(parse_plan("op=write,nth=2,lose=1"))
    fd = ops.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    for chunk in (b"a", b"b", b"c"):
        ops.write(fd, chunk, tmp_path / "f")
    ops.close(fd)
    assert (tmp_path / "f").read_bytes() == b"ac" and ops.injected == 1
