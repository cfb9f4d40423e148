"""The one table mapping priorities between the API, the wire and the lanes.

Pure. The raw TCP/UDP frame numbers priorities 0..4 (BATCH..CRITICAL); the
protobuf enum adds UNSPECIFIED at 0, so its values are the frame's plus one,
and UNSPECIFIED means MEDIUM. HIGH and CRITICAL wait in the realtime lane,
the rest in the batch lane.
"""

from __future__ import annotations

import enum


class Lane(enum.IntEnum):
    """The two lanes events wait in before they are committed."""

    REALTIME = 0
    BATCH = 1

    @property
    def label(self) -> str:
        """Name used in metrics and status, e.g. ``realtime``."""
        return self.name.lower()


# Index: protobuf enum value. Value: (frame byte, lane, name).
_TABLE = (
    (2, Lane.BATCH, "MEDIUM"),     # 0 PRIORITY_UNSPECIFIED -> MEDIUM
    (0, Lane.BATCH, "BATCH"),      # 1 PRIORITY_BATCH
    (1, Lane.BATCH, "LOW"),        # 2 PRIORITY_LOW
    (2, Lane.BATCH, "MEDIUM"),     # 3 PRIORITY_MEDIUM
    (3, Lane.REALTIME, "HIGH"),    # 4 PRIORITY_HIGH
    (4, Lane.REALTIME, "CRITICAL"),  # 5 PRIORITY_CRITICAL
)
PROTO_VALUES = range(len(_TABLE))
FRAME_VALUES = range(5)


def frame_byte(proto_value: int) -> int:
    """The frame's priority byte (0..4) for a protobuf enum value (0..5)."""
    return _TABLE[proto_value][0]


def proto_value(frame_byte_value: int) -> int:
    """The protobuf enum value for a frame's priority byte (0..4)."""
    return frame_byte_value + 1


def lane_of_frame_byte(frame_byte_value: int) -> Lane:
    """The lane of an event with this frame priority byte."""
    return Lane.REALTIME if frame_byte_value >= 3 else Lane.BATCH


def name(frame_byte_value: int) -> str:
    """Upper-case name of a frame priority byte, e.g. ``HIGH``."""
    return _TABLE[frame_byte_value + 1][2]
