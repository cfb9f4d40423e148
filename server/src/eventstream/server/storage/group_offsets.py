"""Committed offsets of consumer groups, durable beside the log.

One small JSON file per group under ``<data_dir>/groups/``, replaced
atomically (written to a temporary file, fsynced, renamed, directory fsynced),
so a crash leaves either the old offsets or the new ones. Offsets are saved a
little after they move, not at every acknowledgement: after a crash a group
resumes from the last save and sees the events acknowledged since then again
(at-least-once).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .recovery import sync_dir

FORMAT = 1


class GroupOffsets:
    """Load and save the committed offsets of each group.

    Args:
        data_dir: the log's ``storage.data_dir``.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.directory = Path(data_dir) / "groups"
        self.directory.mkdir(parents=True, exist_ok=True)

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
        """Replace the offsets of ``group``, durably."""
        path = self._path(group)
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w") as out:
            json.dump({"format": FORMAT, "group": group, "offsets": offsets}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        sync_dir(self.directory)
