"""The peer transport over gRPC on the cluster port: the only code that imports ``eventstream.peer.v1``.

``GrpcTransport`` implements the driver's ``Transport`` port: a PeerService
server on the cluster port, checking every call's identity, and one
outbound Exchange stream per peer carrying batches of Raft messages.

| module | job |
|---|---|
| ``convert`` | Raft messages to and from the peer protocol (pure) |
| ``identity`` | the identity metadata of peer calls and its check (pure) |
| ``outbound`` | one peer's bounded queue, stream, batching and reconnection |
| ``inbound`` | the PeerService handlers behind the identity check |
| ``join`` | the Join call: a node asks to be added, to rejoin, or to leave |
| ``grpc_transport`` | the server and the links together |
"""

from eventstream.server.cluster.transport.forward import (
    PUBLISH,
    PUBLISH_BATCH,
    Answer,
    ForwardFailed,
    ForwardTarget,
)
from eventstream.server.cluster.transport.grpc_transport import GrpcTransport
from eventstream.server.cluster.transport.identity import (
    CLUSTER_ID,
    NODE_ID,
    RECIPIENT,
    Admit,
    identity_metadata,
)
from eventstream.server.cluster.transport.join import (
    JoinFailed,
    JoinIntent,
    JoinRefused,
    JoinReply,
    JoinTarget,
)
from eventstream.server.cluster.transport.outbound import LinkStats

__all__ = ["CLUSTER_ID", "NODE_ID", "PUBLISH", "PUBLISH_BATCH", "RECIPIENT", "Admit", "Answer",
           "ForwardFailed", "ForwardTarget", "GrpcTransport", "JoinFailed", "JoinIntent",
           "JoinRefused", "JoinReply", "JoinTarget", "LinkStats", "identity_metadata"]
