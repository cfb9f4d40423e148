from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ForwardKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FORWARD_KIND_UNSPECIFIED: _ClassVar[ForwardKind]
    FORWARD_KIND_PUBLISH: _ClassVar[ForwardKind]
    FORWARD_KIND_PUBLISH_BATCH: _ClassVar[ForwardKind]
    FORWARD_KIND_PUBLISH_STREAM: _ClassVar[ForwardKind]
    FORWARD_KIND_FRAMES: _ClassVar[ForwardKind]

class FrameTransport(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_TRANSPORT_UNSPECIFIED: _ClassVar[FrameTransport]
    FRAME_TRANSPORT_TCP: _ClassVar[FrameTransport]
    FRAME_TRANSPORT_UDP: _ClassVar[FrameTransport]

class JoinIntent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOIN_INTENT_UNSPECIFIED: _ClassVar[JoinIntent]
    JOIN_INTENT_JOIN: _ClassVar[JoinIntent]
    JOIN_INTENT_REJOIN: _ClassVar[JoinIntent]
    JOIN_INTENT_LEAVE: _ClassVar[JoinIntent]
FORWARD_KIND_UNSPECIFIED: ForwardKind
FORWARD_KIND_PUBLISH: ForwardKind
FORWARD_KIND_PUBLISH_BATCH: ForwardKind
FORWARD_KIND_PUBLISH_STREAM: ForwardKind
FORWARD_KIND_FRAMES: ForwardKind
FRAME_TRANSPORT_UNSPECIFIED: FrameTransport
FRAME_TRANSPORT_TCP: FrameTransport
FRAME_TRANSPORT_UDP: FrameTransport
JOIN_INTENT_UNSPECIFIED: JoinIntent
JOIN_INTENT_JOIN: JoinIntent
JOIN_INTENT_REJOIN: JoinIntent
JOIN_INTENT_LEAVE: JoinIntent

class ExchangeRequest(_message.Message):
    __slots__ = ("group_id", "messages")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    messages: _containers.RepeatedCompositeFieldContainer[RaftMessage]
    def __init__(self, group_id: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[RaftMessage, _Mapping]]] = ...) -> None: ...

class ExchangeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RaftMessage(_message.Message):
    __slots__ = ("term", "append_entries", "append_response", "vote_request", "vote_response", "heartbeat", "heartbeat_response", "timeout_now", "read_index_request", "read_index_response")
    TERM_FIELD_NUMBER: _ClassVar[int]
    APPEND_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    APPEND_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    VOTE_REQUEST_FIELD_NUMBER: _ClassVar[int]
    VOTE_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_NOW_FIELD_NUMBER: _ClassVar[int]
    READ_INDEX_REQUEST_FIELD_NUMBER: _ClassVar[int]
    READ_INDEX_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    term: int
    append_entries: AppendEntries
    append_response: AppendResponse
    vote_request: VoteRequest
    vote_response: VoteResponse
    heartbeat: Heartbeat
    heartbeat_response: HeartbeatResponse
    timeout_now: TimeoutNow
    read_index_request: ReadIndexRequest
    read_index_response: ReadIndexResponse
    def __init__(self, term: _Optional[int] = ..., append_entries: _Optional[_Union[AppendEntries, _Mapping]] = ..., append_response: _Optional[_Union[AppendResponse, _Mapping]] = ..., vote_request: _Optional[_Union[VoteRequest, _Mapping]] = ..., vote_response: _Optional[_Union[VoteResponse, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., heartbeat_response: _Optional[_Union[HeartbeatResponse, _Mapping]] = ..., timeout_now: _Optional[_Union[TimeoutNow, _Mapping]] = ..., read_index_request: _Optional[_Union[ReadIndexRequest, _Mapping]] = ..., read_index_response: _Optional[_Union[ReadIndexResponse, _Mapping]] = ...) -> None: ...

class Entry(_message.Message):
    __slots__ = ("index", "term", "kind", "data")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    index: int
    term: int
    kind: int
    data: bytes
    def __init__(self, index: _Optional[int] = ..., term: _Optional[int] = ..., kind: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class AppendEntries(_message.Message):
    __slots__ = ("index", "log_term", "entries", "commit")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LOG_TERM_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    index: int
    log_term: int
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    commit: int
    def __init__(self, index: _Optional[int] = ..., log_term: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ..., commit: _Optional[int] = ...) -> None: ...

class AppendResponse(_message.Message):
    __slots__ = ("index", "reject", "reject_hint", "log_term")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    REJECT_HINT_FIELD_NUMBER: _ClassVar[int]
    LOG_TERM_FIELD_NUMBER: _ClassVar[int]
    index: int
    reject: bool
    reject_hint: int
    log_term: int
    def __init__(self, index: _Optional[int] = ..., reject: bool = ..., reject_hint: _Optional[int] = ..., log_term: _Optional[int] = ...) -> None: ...

class VoteRequest(_message.Message):
    __slots__ = ("last_index", "last_term", "pre_vote", "transfer")
    LAST_INDEX_FIELD_NUMBER: _ClassVar[int]
    LAST_TERM_FIELD_NUMBER: _ClassVar[int]
    PRE_VOTE_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    last_index: int
    last_term: int
    pre_vote: bool
    transfer: bool
    def __init__(self, last_index: _Optional[int] = ..., last_term: _Optional[int] = ..., pre_vote: bool = ..., transfer: bool = ...) -> None: ...

class VoteResponse(_message.Message):
    __slots__ = ("granted", "pre_vote")
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    PRE_VOTE_FIELD_NUMBER: _ClassVar[int]
    granted: bool
    pre_vote: bool
    def __init__(self, granted: bool = ..., pre_vote: bool = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("commit", "context", "sent_at")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    commit: int
    context: bytes
    sent_at: int
    def __init__(self, commit: _Optional[int] = ..., context: _Optional[bytes] = ..., sent_at: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("context", "sent_at")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    context: bytes
    sent_at: int
    def __init__(self, context: _Optional[bytes] = ..., sent_at: _Optional[int] = ...) -> None: ...

class TimeoutNow(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReadIndexRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: bytes
    def __init__(self, context: _Optional[bytes] = ...) -> None: ...

class ReadIndexResponse(_message.Message):
    __slots__ = ("index", "context")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    index: int
    context: bytes
    def __init__(self, index: _Optional[int] = ..., context: _Optional[bytes] = ...) -> None: ...

class InstallSnapshotRequest(_message.Message):
    __slots__ = ("group_id", "header", "chunk")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    header: SnapshotHeader
    chunk: bytes
    def __init__(self, group_id: _Optional[int] = ..., header: _Optional[_Union[SnapshotHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class SnapshotHeader(_message.Message):
    __slots__ = ("term", "index", "snapshot_term", "voters", "learners", "data_bytes", "data_crc32")
    TERM_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_TERM_FIELD_NUMBER: _ClassVar[int]
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    LEARNERS_FIELD_NUMBER: _ClassVar[int]
    DATA_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_CRC32_FIELD_NUMBER: _ClassVar[int]
    term: int
    index: int
    snapshot_term: int
    voters: _containers.RepeatedScalarFieldContainer[str]
    learners: _containers.RepeatedScalarFieldContainer[str]
    data_bytes: int
    data_crc32: int
    def __init__(self, term: _Optional[int] = ..., index: _Optional[int] = ..., snapshot_term: _Optional[int] = ..., voters: _Optional[_Iterable[str]] = ..., learners: _Optional[_Iterable[str]] = ..., data_bytes: _Optional[int] = ..., data_crc32: _Optional[int] = ...) -> None: ...

class InstallSnapshotResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ForwardRequest(_message.Message):
    __slots__ = ("group_id", "sequence", "kind", "request", "frame_transport")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    FRAME_TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    sequence: int
    kind: ForwardKind
    request: bytes
    frame_transport: FrameTransport
    def __init__(self, group_id: _Optional[int] = ..., sequence: _Optional[int] = ..., kind: _Optional[_Union[ForwardKind, str]] = ..., request: _Optional[bytes] = ..., frame_transport: _Optional[_Union[FrameTransport, str]] = ...) -> None: ...

class ForwardResponse(_message.Message):
    __slots__ = ("sequence", "response", "status_code", "status_message", "status_details", "leader_hint")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_DETAILS_FIELD_NUMBER: _ClassVar[int]
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    response: bytes
    status_code: int
    status_message: str
    status_details: bytes
    leader_hint: str
    def __init__(self, sequence: _Optional[int] = ..., response: _Optional[bytes] = ..., status_code: _Optional[int] = ..., status_message: _Optional[str] = ..., status_details: _Optional[bytes] = ..., leader_hint: _Optional[str] = ...) -> None: ...

class RelayConsumeRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: bytes
    def __init__(self, request: _Optional[bytes] = ...) -> None: ...

class RelayConsumeResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: bytes
    def __init__(self, response: _Optional[bytes] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ("intent", "address")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    intent: JoinIntent
    address: str
    def __init__(self, intent: _Optional[_Union[JoinIntent, str]] = ..., address: _Optional[str] = ...) -> None: ...

class JoinMember(_message.Message):
    __slots__ = ("node_id", "address", "voter")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VOTER_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    address: str
    voter: bool
    def __init__(self, node_id: _Optional[str] = ..., address: _Optional[str] = ..., voter: bool = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("member", "leader_id", "leader_address", "members", "last_index", "applied_index", "detail")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    LEADER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    LAST_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    member: bool
    leader_id: str
    leader_address: str
    members: _containers.RepeatedCompositeFieldContainer[JoinMember]
    last_index: int
    applied_index: int
    detail: str
    def __init__(self, member: bool = ..., leader_id: _Optional[str] = ..., leader_address: _Optional[str] = ..., members: _Optional[_Iterable[_Union[JoinMember, _Mapping]]] = ..., last_index: _Optional[int] = ..., applied_index: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...
