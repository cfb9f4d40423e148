"""A follower's progress: state changes and the window of in-flight appends."""

from __future__ import annotations

from eventstream.server.raft.progress import Inflights, Progress, ProgressState


def test_the_window_closes_by_count_or_bytes_and_frees_in_order():
    window = Inflights(3, max_bytes=100)
    window.add(5, 10)
    window.add(7, 10)
    assert not window.full()
    window.add(9, 90)
    assert window.full() and window.bytes == 110
    window.free_to(7)
    assert len(window) == 1 and window.bytes == 90 and not window.full()
    window.free_first()
    window.free_first()
    assert len(window) == 0 and not window.full()
    window.add(10, 1)
    window.reset()
    assert (len(window), window.bytes) == (0, 0)


def test_probe_sends_one_at_a_time_and_steps_back_on_rejection():
    pr = Progress(10, Inflights(4))
    assert pr.state is ProgressState.PROBE and not pr.is_paused()
    pr.sent(12, 0, 3)
    assert pr.is_paused() and pr.next == 10
    assert not pr.rejected(5, 3)  # not the outstanding probe: stale
    assert pr.rejected(9, 4)
    assert (pr.next, pr.is_paused()) == (4, False)
    assert pr.acknowledged(6) and pr.next == 7
    assert not pr.acknowledged(5)


def test_replicate_streams_within_the_window_and_falls_back_on_rejection():
    pr = Progress(1, Inflights(2))
    pr.acknowledged(3)
    pr.become_replicate()
    pr.sent(5, 0, 2)
    pr.sent(5, 0, 0)  # an empty append takes no slot
    pr.sent(7, 0, 2)
    assert pr.next == 8 and pr.is_paused() and "window-full" in pr.describe()
    assert not pr.rejected(2, 1)  # at or below match: stale
    assert pr.rejected(6, 1) and pr.next == 4


def test_snapshot_state_waits_then_probes_from_after_the_snapshot():
    pr = Progress(1, Inflights(2))
    pr.become_snapshot(20, tick=3)
    assert pr.is_paused() and "snapshot=20" in pr.describe() and pr.snapshot_tick == 3
    pr.become_probe()
    assert pr.next == 21 and pr.state is ProgressState.PROBE
    pr.sent(21, 0, 1)
    assert pr.describe() == "PROBE match=0 next=21 paused"


def test_a_member_that_lost_its_log_is_probed_again_from_what_it_holds():
    # It acknowledged up to 30, then came back on an empty data dir: it rejects the
    # probe after 30 with its last index 0. The leader must go below its old match
    # (to a snapshot, when the log starts later), not probe after 30 for ever.
    pr = Progress(1, Inflights(4))
    pr.acknowledged(30)
    pr.become_replicate()
    pr.become_probe()  # its link failed
    assert pr.next == 31
    pr.sent(30, 0, 0)
    assert pr.rejected(30, 1)
    assert (pr.match, pr.next, pr.is_paused()) == (0, 1, False)
