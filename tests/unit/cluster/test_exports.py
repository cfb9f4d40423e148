"""The cluster package's public names are pinned, so they cannot change by accident."""

from __future__ import annotations

import eventstream.server.cluster as cluster

EXPECTED = {"Applier", "DriverHalted", "DriverStopped", "Inbox", "MemoryRaftLog", "ProposalDropped",
            "RaftDriver", "RaftLog", "TooManyReads", "Transport"}


def test_all_is_pinned_and_resolves():
    assert set(cluster.__all__) == EXPECTED
    for name in cluster.__all__:
        assert getattr(cluster, name) is not None
