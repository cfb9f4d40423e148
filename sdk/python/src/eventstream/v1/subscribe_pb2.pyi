from eventstream.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartFrom(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    START_FROM_UNSPECIFIED: _ClassVar[StartFrom]
    START_FROM_LATEST: _ClassVar[StartFrom]
    START_FROM_EARLIEST: _ClassVar[StartFrom]
    START_FROM_OFFSETS: _ClassVar[StartFrom]
    START_FROM_TIME: _ClassVar[StartFrom]
START_FROM_UNSPECIFIED: StartFrom
START_FROM_LATEST: StartFrom
START_FROM_EARLIEST: StartFrom
START_FROM_OFFSETS: StartFrom
START_FROM_TIME: StartFrom

class SubscribeRequest(_message.Message):
    __slots__ = ("patterns", "min_priority", "start_from", "start_offsets", "start_time", "max_batch_events")
    PATTERNS_FIELD_NUMBER: _ClassVar[int]
    MIN_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    START_FROM_FIELD_NUMBER: _ClassVar[int]
    START_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_EVENTS_FIELD_NUMBER: _ClassVar[int]
    patterns: _containers.RepeatedScalarFieldContainer[str]
    min_priority: _common_pb2.Priority
    start_from: StartFrom
    start_offsets: _containers.RepeatedCompositeFieldContainer[_common_pb2.PartitionOffset]
    start_time: _timestamp_pb2.Timestamp
    max_batch_events: int
    def __init__(self, patterns: _Optional[_Iterable[str]] = ..., min_priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., start_from: _Optional[_Union[StartFrom, str]] = ..., start_offsets: _Optional[_Iterable[_Union[_common_pb2.PartitionOffset, _Mapping]]] = ..., start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., max_batch_events: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_common_pb2.Event]
    def __init__(self, events: _Optional[_Iterable[_Union[_common_pb2.Event, _Mapping]]] = ...) -> None: ...

class ConsumeRequest(_message.Message):
    __slots__ = ("start", "ack", "nack")
    START_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    start: ConsumeStart
    ack: EventPositions
    nack: EventPositions
    def __init__(self, start: _Optional[_Union[ConsumeStart, _Mapping]] = ..., ack: _Optional[_Union[EventPositions, _Mapping]] = ..., nack: _Optional[_Union[EventPositions, _Mapping]] = ...) -> None: ...

class ConsumeStart(_message.Message):
    __slots__ = ("group", "patterns", "min_priority", "start_from", "max_in_flight", "ack_deadline_seconds", "max_deliveries")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PATTERNS_FIELD_NUMBER: _ClassVar[int]
    MIN_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    START_FROM_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    ACK_DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    group: str
    patterns: _containers.RepeatedScalarFieldContainer[str]
    min_priority: _common_pb2.Priority
    start_from: StartFrom
    max_in_flight: int
    ack_deadline_seconds: int
    max_deliveries: int
    def __init__(self, group: _Optional[str] = ..., patterns: _Optional[_Iterable[str]] = ..., min_priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., start_from: _Optional[_Union[StartFrom, str]] = ..., max_in_flight: _Optional[int] = ..., ack_deadline_seconds: _Optional[int] = ..., max_deliveries: _Optional[int] = ...) -> None: ...

class EventPositions(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_common_pb2.PartitionOffset]
    def __init__(self, events: _Optional[_Iterable[_Union[_common_pb2.PartitionOffset, _Mapping]]] = ...) -> None: ...

class ConsumeResponse(_message.Message):
    __slots__ = ("events", "assignment")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_common_pb2.Event]
    assignment: ConsumeAssignment
    def __init__(self, events: _Optional[_Iterable[_Union[_common_pb2.Event, _Mapping]]] = ..., assignment: _Optional[_Union[ConsumeAssignment, _Mapping]] = ...) -> None: ...

class ConsumeAssignment(_message.Message):
    __slots__ = ("member_id", "generation", "partitions")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    generation: int
    partitions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, member_id: _Optional[str] = ..., generation: _Optional[int] = ..., partitions: _Optional[_Iterable[int]] = ...) -> None: ...
