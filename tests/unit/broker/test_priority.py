"""The priority mapping between the protobuf enum, the frame byte and the lanes."""

from eventstream.server.broker import priority
from eventstream.server.broker.priority import Lane
from eventstream.v1 import common_pb2


def test_mapping_is_the_documented_one():
    table = {
        common_pb2.PRIORITY_UNSPECIFIED: (2, Lane.BATCH),  # UNSPECIFIED means MEDIUM
        common_pb2.PRIORITY_BATCH: (0, Lane.BATCH),
        common_pb2.PRIORITY_LOW: (1, Lane.BATCH),
        common_pb2.PRIORITY_MEDIUM: (2, Lane.BATCH),
        common_pb2.PRIORITY_HIGH: (3, Lane.REALTIME),
        common_pb2.PRIORITY_CRITICAL: (4, Lane.REALTIME),
    }
    for value, (byte, lane) in table.items():
        assert priority.frame_byte(value) == byte
        assert priority.lane_of_frame_byte(byte) == lane
    for byte in priority.FRAME_VALUES:
        assert priority.frame_byte(priority.proto_value(byte)) == byte
        assert common_pb2.Priority.Name(priority.proto_value(byte)) == f"PRIORITY_{priority.name(byte)}"
