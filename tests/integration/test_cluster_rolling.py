"""A rolling update of three real members under a steady SDK publisher.

As the StatefulSet controller rolls: highest ordinal first, SIGTERM (drain,
leadership handed over), restart on the same data dir, wait until ready, then
the next (``tests/support/rolling.py``). The publisher is the Python SDK with
its default retry policy, publishing events with ids through one target that
names every member (a "service": one connection, moved to another member
when it breaks). No publish fails, and every acknowledged event is stored
exactly once, at the same position, on every member. The time without a
leader and the longest wait between two acknowledgements are printed, not
asserted (``bench/cluster_bench.py --rolling`` records them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, running_cluster
from tests.support.cluster_reads import assert_stored_once_everywhere
from tests.support.rolling import SdkPublisher, roll_under_load, service_target

MAX_EVENTS = 20_000
"""The publisher's bound; it is stopped long before on any machine that rolls at all."""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, 3, {"storage": {"partitions": 4}}) as nodes:
        yield nodes


async def test_a_rolling_update_under_sdk_load_loses_and_repeats_nothing(cluster: Cluster):
    cluster.wait_leader()
    publisher = SdkPublisher(service_target(cluster), "roll", MAX_EVENTS).start()
    figures = roll_under_load(cluster, publisher)
    print(f"\n{figures.line()}")
    assert publisher.errors == []
    assert figures.acks > 0
    # Every member was replaced, so whoever led at first handed over (the watch saw it).
    assert len(figures.leaders) >= 2, figures.leaders
    ids = [event_id for _, event_id, *_ in publisher.acks]
    assert len(ids) == len(set(ids))
    await assert_stored_once_everywhere(cluster, publisher.acks)
