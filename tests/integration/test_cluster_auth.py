"""Authentication and permissions in a replicated cluster.

A follower forwards publishes to the leader over the cluster link; it is the
follower that knows the caller, so it decides what the caller may publish
before anything is forwarded, and the leader serves what a member forwarded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstream.client import NO_RETRY, Client, Event, PermissionDeniedError, UnauthenticatedError
from tests.support.certs import new_token, token_line
from tests.support.cluster import Cluster

WRITER = {"name": "writer", "publish": {"allow": ["orders/#"]},
          "subscribe": {"allow": ["orders/#"]}}


@pytest.fixture
def token(tmp_path: Path) -> tuple[str, Path]:
    value = new_token()
    path = tmp_path / "tokens"
    path.write_text(token_line("writer", value))
    return value, path


@pytest.fixture
def cluster(tmp_path: Path, token: tuple[str, Path]) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path / "nodes", 3, {
        "storage": {"partitions": 2}, "ingest": {"udp_enabled": False},
        "auth": {"enabled": True, "identities": [WRITER], "tokens_file": str(token[1])}})
    try:
        yield nodes.start()
    finally:
        nodes.stop()


def test_a_follower_forwards_only_what_the_caller_may_publish(cluster: Cluster,
                                                              token: tuple[str, Path]) -> None:
    leader = cluster.wait_leader()
    follower = next(node for node in cluster.nodes if node != leader)
    target = cluster.nodes[follower].target
    with Client(target, token=token[0], retry=NO_RETRY) as client:
        ack = client.publish(Event(topic="orders/eu", payload=b"allowed", id="a-1"))
        assert ack.offset >= 0
        with pytest.raises(PermissionDeniedError, match="payments/eu"):
            client.publish(Event(topic="payments/eu", payload=b"denied", id="d-1"))
        with pytest.raises(PermissionDeniedError, match="payments/eu"):
            client.publish_batch([Event(topic="orders/eu", payload=b"x", id="a-2"),
                                  Event(topic="payments/eu", payload=b"y", id="d-2")])
        with client.publish_stream() as stream:
            allowed = stream.send(Event(topic="orders/eu", payload=b"streamed", id="a-3"))
            assert allowed.result(timeout=30).offset >= 0
            # A stream request with nothing left to write is answered by the follower itself.
            denied = stream.send(Event(topic="payments/eu", payload=b"streamed", id="d-3"))
            with pytest.raises(PermissionDeniedError, match="payments/eu"):
                denied.result(timeout=30)
    with Client(target, token="not-a-token", retry=NO_RETRY) as stranger:
        with pytest.raises(UnauthenticatedError):
            stranger.publish(Event(topic="orders/eu", payload=b"stranger", id="s-1"))
    # What the follower refused never reached the log: only the allowed events are there
    # (an ack is sent once the leader applied the event).
    assert sum(cluster.status(leader)["log"]["end_offsets"]) == 2
