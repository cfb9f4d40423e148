"""The age of the oldest entry a peer lacks, from the leader's append marks (no clock)."""

from eventstream.server.cluster.append_times import AppendTimes


def test_a_peer_lacking_entries_is_as_late_as_the_oldest_it_lacks():
    times = AppendTimes()
    times.lead(5, now=100.0)          # the empty entry of the term
    times.mark(6, now=101.0)          # entries 6..9 proposed together
    times.mark(10, now=104.0)
    assert times.lag_seconds(match=10, last_index=10, now=110.0) == 0.0
    assert times.lag_seconds(match=9, last_index=10, now=110.0) == 6.0   # lacks entry 10
    assert times.lag_seconds(match=7, last_index=10, now=110.0) == 9.0   # lacks 8, of the 6..9 mark
    assert times.lag_seconds(match=5, last_index=10, now=110.0) == 9.0
    assert times.lag_seconds(match=4, last_index=10, now=110.0) == 10.0  # lacks the term's first
    # Entries of an earlier leader: as old as this leadership, at least.
    assert times.lag_seconds(match=0, last_index=10, now=110.0) == 10.0


def test_marks_every_peer_passed_are_forgotten_and_a_new_leadership_starts_again():
    times = AppendTimes(max_marks=3)
    times.lead(1, now=0.0)
    for index, now in ((2, 1.0), (3, 2.0), (4, 3.0)):
        times.mark(index, now)
    # Bounded: the oldest marks went; entries before the oldest left count from it.
    assert times.lag_seconds(match=0, last_index=4, now=10.0) == 9.0
    times.forget_through(3)
    assert times.lag_seconds(match=3, last_index=4, now=10.0) == 7.0
    times.mark(4, now=9.0)            # not after the last mark: ignored
    assert times.lag_seconds(match=3, last_index=4, now=10.0) == 7.0
    times.lead(7, now=20.0)
    assert times.lag_seconds(match=3, last_index=7, now=21.0) == 1.0
