"""Loading libshardq: clear errors naming the path, ABI check, exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import eventstream.server.native as package
from eventstream.server.native import NativeLibraryError, ShardQueue, _lib, library_path


def test_missing_library_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere" / "libshardq.so"
    monkeypatch.setenv("EVENTSTREAM_NATIVE_LIB", str(missing))
    assert library_path() == missing
    with pytest.raises(NativeLibraryError, match=r"not found at .*nowhere/libshardq\.so.*make install"):
        ShardQueue(capacity_records=1, capacity_bytes=64)


def test_a_file_that_is_not_a_library(tmp_path: Path) -> None:
    junk = tmp_path / "libshardq.so"
    junk.write_bytes(b"not an ELF file")
    with pytest.raises(NativeLibraryError, match=f"cannot load native library {junk}"):
        _lib.load(junk)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build stand-in libraries")
def test_abi_mismatch_and_foreign_library(tmp_path: Path) -> None:
    src = tmp_path / "stub.c"
    src.write_text("unsigned shardq_abi_version(void) { return 99; }\n")
    foreign = tmp_path / "libforeign.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(foreign), str(src)], check=True)
    with pytest.raises(NativeLibraryError, match=f"{foreign} lacks shardq_"):
        _lib.load(foreign)


def test_abi_version_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = _lib.load()
    assert lib.shardq_abi_version() == _lib.ABI_VERSION
    built = _lib.ABI_VERSION
    monkeypatch.setattr(_lib, "ABI_VERSION", built + 1)
    monkeypatch.setattr(_lib, "_loaded", {})
    with pytest.raises(NativeLibraryError,
                       match=f"{library_path()} has ABI version {built}, this package needs {built + 1}"):
        _lib.load()


def test_exports_are_pinned() -> None:
    assert sorted(package.__all__) == sorted([
        "ABI_VERSION", "ACCEPTED_EVENT_BYTES", "MAX_DATAGRAM", "Accepted", "AcceptedEvents",
        "BufferTooSmall", "DedupCheck", "DedupTable", "EntryScan", "EventBatch", "EventEncoder",
        "EventSpans", "Frame", "FrameBatch", "FrameReason", "InvalidArgument", "InvalidPattern",
        "Limits", "RecordArena",
        "MalformedInput", "NativeError", "NativeLibraryError", "NativeWire", "NotUtf8", "NumaNode",
        "NumaNodeNotFound", "PlacedRecords", "QueueClosed", "QueueEmpty", "QueueFull",
        "QueueStats", "ReceiverStats", "RecordTooLarge", "Refusal", "Refused", "SegmentProgress",
        "ShardQueue", "UdpReceiver", "alloc_buffer", "discover", "encode_records", "iter_records",
        "library_path", "pin_thread", "start_receiver",
    ])
    for name in package.__all__:
        assert hasattr(package, name), name


def test_error_codes_are_distinct() -> None:
    from eventstream.server.native import errors

    codes = [errors.EFULL, errors.EEMPTY, errors.E2BIG, errors.ENOBUFS, errors.EINVAL, errors.EBADMSG,
             errors.EILSEQ, errors.ENOMEM, errors.ECLOSED, errors.ENOTEMPTY, errors.ETIMEDOUT,
             errors.ENOENT]
    assert len(set(codes)) == len(codes) and all(c < 0 for c in codes)
    header = (Path(__file__).resolve().parents[3] / "server/native/libshardq/include/shardq.h").read_text()
    for name, value in [("EFULL", errors.EFULL), ("EEMPTY", errors.EEMPTY), ("E2BIG", errors.E2BIG),
                        ("ENOBUFS", errors.ENOBUFS), ("ECLOSED", errors.ECLOSED),
                        ("ENOTEMPTY", errors.ENOTEMPTY), ("EBADMSG", errors.EBADMSG)]:
        assert f"#define SHARDQ_{name} ({value})" in header
