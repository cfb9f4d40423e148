"""Committed offsets of consumer groups, durable beside the log.

One small JSON file per group under ``<data_dir>/groups/``, replaced
atomically through :meth:`.fileops.FileOps.write_file` (a temporary file,
fsynced, renamed, directory fsynced), so a crash leaves either the old offsets
or the new ones. Offsets are saved a little after they move, not at every
acknowledgement: after a crash a group resumes from the last save and sees the
events acknowledged since then again (at-least-once). A failed save leaves
the previous file whole and is tried again later with a new temporary file
(never by fsyncing the failed one again). Every file is read and checked at
start-up; a damaged one refuses the start, naming the file and what to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .fileops import FileOps
from .recovery import DataDirRefused, start_refused

FORMAT = 1
SUFFIX = ".json"


@dataclass(frozen=True, slots=True)
class SavedOffsets:
    """A group's committed offsets as last saved."""

    offsets: list[int]
    """One per partition."""
    saved_ns: int
    """Wall-clock time of the save (the file's modification time)."""


class GroupOffsets:
    """Load and save the committed offsets of each group.

    Args:
        data_dir: the log's ``storage.data_dir``.
        file_ops: makes every change.

    Raises:
        DataDirRefused: the directory cannot be created.
    """

    def __init__(self, data_dir: str | os.PathLike[str], file_ops: FileOps) -> None:
        self.directory = Path(data_dir) / "groups"
        self._ops = file_ops
        try:
            file_ops.mkdir(self.directory)
        except OSError as error:
            raise start_refused(error, Path(data_dir)) from None

    def _path(self, group: str) -> Path:
        return self.directory / f"{group}{SUFFIX}"

    def load_all(self, partitions: int, valid_name: Callable[[str], bool]) -> dict[str, SavedOffsets]:
        """Every group's saved offsets, by group name (at start-up).

        Temporary files left by a save that a crash interrupted are removed
        (the file they would have replaced is intact).

        Args:
            partitions: the log's partition count: one offset each.
            valid_name: whether a file's name is a group name.

        Raises:
            DataDirRefused: a file that is not a group offsets file of this
                format with one offset per partition; the message names it and
                says how to go on.
        """
        saved: dict[str, SavedOffsets] = {}
        try:
            paths = sorted(self.directory.iterdir())
        except OSError as error:
            raise DataDirRefused(f"group offsets directory {self.directory}: cannot read it: "
                                 f"{error.strerror}") from None
        for path in paths:
            if path.suffix == ".tmp":
                self._ops.unlink(path)
                continue
            name = path.name.removesuffix(SUFFIX)
            try:
                offsets = _read(path, name, partitions, valid_name)
            except ValueError as problem:
                raise DataDirRefused(
                    f"group offsets file {path} is damaged: {problem}. Restore it from a "
                    f"backup, or delete it: group {name!r} then starts again from its "
                    "start_from (LATEST or EARLIEST) when a member joins") from None
            saved[name] = SavedOffsets(offsets, path.stat().st_mtime_ns)
        return saved

    def save(self, group: str, offsets: list[int]) -> None:
        """Replace the offsets of ``group``, durably.

        Raises:
            OSError: the file could not be replaced; the previous one is whole.
        """
        document = {"format": FORMAT, "group": group, "offsets": offsets}
        self._ops.write_file(self._path(group), json.dumps(document).encode(), sync=True)

    def delete(self, group: str) -> None:
        """Forget the offsets of ``group`` (it expired), durably."""
        self._ops.unlink(self._path(group))
        self._ops.fsync_dir(self.directory)


def _read(path: Path, name: str, partitions: int, valid_name: Callable[[str], bool]
          ) -> list[int]:
    """The offsets in the file at ``path``.

    Raises:
        ValueError: what is wrong with it.
    """
    if path.suffix != SUFFIX or not valid_name(name) or not path.is_file():
        raise ValueError(f"not a file named <group>{SUFFIX}")
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"not readable as JSON ({error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"not a group offsets file of format {FORMAT}")
    if document.get("group") != name:
        raise ValueError(f"it names group {document.get('group')!r}")
    offsets = document.get("offsets")
    if not isinstance(offsets, list) or not all(type(o) is int and o >= 0 for o in offsets):
        raise ValueError("its offsets are not a list of offsets")
    if len(offsets) != partitions:
        raise ValueError(f"it holds {len(offsets)} offsets for {partitions} partitions")
    return offsets


__all__ = ["GroupOffsets", "SavedOffsets"]
