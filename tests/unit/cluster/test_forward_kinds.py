"""The public service's forwarded kinds are the peer protocol's ForwardKind values."""

from eventstream.peer.v1 import raft_pb2
from eventstream.server.cluster.transport import forward
from eventstream.server.ingest import forwarding
from eventstream.server.rpc import publish


def test_the_kinds_match_the_peer_protocol():
    assert (publish.FORWARD_PUBLISH, publish.FORWARD_PUBLISH_BATCH,
            publish.FORWARD_PUBLISH_STREAM, forwarding.FORWARD_FRAMES) == \
        (raft_pb2.FORWARD_KIND_PUBLISH, raft_pb2.FORWARD_KIND_PUBLISH_BATCH,
         raft_pb2.FORWARD_KIND_PUBLISH_STREAM, raft_pb2.FORWARD_KIND_FRAMES) == \
        (forward.PUBLISH, forward.PUBLISH_BATCH, forward.PUBLISH_STREAM, forward.FRAMES)
    assert forward.KINDS == {forward.PUBLISH, forward.PUBLISH_BATCH, forward.PUBLISH_STREAM,
                             forward.FRAMES}
