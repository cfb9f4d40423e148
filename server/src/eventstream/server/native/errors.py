"""Exceptions of the native core, and the one place return codes become them.

Pure: no I/O. Every wrapper of libshardq raises exactly these, so callers
never see a raw errno. The codes are
libshardq's negative errno values (``SHARDQ_E*`` in ``shardq.h``).
"""

from __future__ import annotations

import errno
import queue as _stdlib_queue
from typing import NoReturn

EFULL = -errno.ENOSPC
EEMPTY = -errno.EAGAIN
E2BIG = -errno.EMSGSIZE
ENOBUFS = -errno.ENOBUFS
EINVAL = -errno.EINVAL
EBADMSG = -errno.EBADMSG
EILSEQ = -errno.EILSEQ
ENOMEM = -errno.ENOMEM
ECLOSED = -errno.EPIPE
ENOTEMPTY = -errno.ENOTEMPTY
ETIMEDOUT = -errno.ETIMEDOUT
ENOENT = -errno.ENOENT


class NativeLibraryError(RuntimeError):
    """libshardq is missing, cannot be loaded, or has another ABI version."""


class NativeError(Exception):
    """A negative code returned by the native core .

    Attributes:
        code: the negative errno value.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class QueueFull(NativeError, _stdlib_queue.Full):
    """The shard had no room: nothing was pushed (all-or-nothing, or not even one record fitted)."""


class QueueEmpty(NativeError, _stdlib_queue.Empty):
    """Nothing to pop."""


class QueueClosed(NativeError):
    """The queue was closed: pushes are refused; a wait finds it closed and empty."""


class RecordTooLarge(NativeError, ValueError):
    """A record is larger than the queue's ``max_record``; nothing was pushed.

    Attributes:
        index: position of the first oversized record in the batch.
    """

    def __init__(self, code: int, message: str, index: int) -> None:
        super().__init__(code, message)
        self.index = index


class BufferTooSmall(NativeError, ValueError):
    """The output buffer cannot hold the first waiting record (or all results).

    Attributes:
        needed: bytes (pop) or entries (walkers) the call needs.
    """

    def __init__(self, code: int, message: str, needed: int) -> None:
        super().__init__(code, message)
        self.needed = needed


class MalformedInput(NativeError, ValueError):
    """Input is not well formed.

    A record batch that does not end on a record boundary, or protobuf wire
    data that does not parse.

    Attributes:
        index: for protobuf event batches, the index of the offending event.
    """

    def __init__(self, code: int, message: str, index: int = -1) -> None:
        super().__init__(code, message)
        self.index = index


class NotUtf8(MalformedInput):
    """A protobuf string field (id, topic, key) is not valid UTF-8."""


class InvalidArgument(NativeError, ValueError):
    """An argument the native core refused (shard out of range, bad options...)."""


class InvalidPattern(InvalidArgument):
    """A subscription pattern is invalid (empty level, misplaced ``#`` or ``*``)."""


class NumaNodeNotFound(NativeError, LookupError):
    """The NUMA node, or the sysfs file describing it, does not exist."""


def raise_for(
    code: int, what: str, *, index: int = -1, needed: int = 0,
    invalid: type[InvalidArgument] = InvalidArgument,
) -> NoReturn:
    """Raise the exception for a negative ``code`` returned by ``what``.

    The single translation from codes to exceptions.

    Args:
        code: the negative errno value.
        what: the operation, for the message (e.g. ``"push"``).
        index: record/event index, for RecordTooLarge and MalformedInput.
        needed: size needed, for BufferTooSmall.
        invalid: the exception for EINVAL (InvalidPattern for pattern matching).
    """
    if code == EFULL:
        raise QueueFull(code, f"{what}: queue shard is full")
    if code == EEMPTY:
        raise QueueEmpty(code, f"{what}: queue is empty")
    if code == ECLOSED:
        raise QueueClosed(code, f"{what}: queue is closed")
    if code == E2BIG:
        raise RecordTooLarge(code, f"{what}: record {index} is larger than max_record", index)
    if code == ENOBUFS:
        raise BufferTooSmall(code, f"{what}: output buffer too small, {needed} needed", needed)
    if code == EILSEQ:
        raise NotUtf8(code, f"{what}: string field of event {index} is not UTF-8", index)
    if code == EBADMSG:
        where = f" (event {index})" if index >= 0 else ""
        raise MalformedInput(code, f"{what}: malformed input{where}", index)
    if code == ENOENT:
        raise NumaNodeNotFound(code, f"{what}: no such NUMA node or sysfs file")
    if code == ENOMEM:
        raise MemoryError(f"{what}: out of memory")
    if code == EINVAL:
        raise invalid(code, f"{what}: invalid argument")
    name = errno.errorcode.get(-code, str(code))
    raise NativeError(code, f"{what}: failed with {name}")
