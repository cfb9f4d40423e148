"""Committed offsets of consumer groups, durable beside the log.

One small JSON file per group under ``<data_dir>/groups/``, replaced
atomically through :meth:`.fileops.FileOps.write_file` (a temporary file,
fsynced, renamed, directory fsynced), so a crash leaves either the old offsets
or the new ones. Offsets are saved a little after they move, not at every
acknowledgement: after a crash a group resumes from the last save and sees the
events acknowledged since then again (at-least-once). A failed save leaves
the previous file whole and is tried again later with a new temporary file
(never by fsyncing the failed one again).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .fileops import FileOps
from .recovery import start_refused

FORMAT = 1


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
        return self.directory / f"{group}.json"

    def load(self, group: str) -> list[int] | None:
        """The offsets last saved for ``group`` (one per partition), or None.

        Raises:
            ValueError: the file is not an offsets file of this format.
        """
        try:
            document = json.loads(self._path(group).read_text())
        except FileNotFoundError:
            return None
        if document.get("format") != FORMAT or not all(
                isinstance(o, int) and o >= 0 for o in document.get("offsets", [None])):
            raise ValueError(f"{self._path(group)}: not a group offsets file of format {FORMAT}")
        return list(document["offsets"])

    def save(self, group: str, offsets: list[int]) -> None:
        """Replace the offsets of ``group``, durably.

        Raises:
            OSError: the file could not be replaced; the previous one is whole.
        """
        document = {"format": FORMAT, "group": group, "offsets": offsets}
        self._ops.write_file(self._path(group), json.dumps(document).encode(), sync=True)
