"""The seeded simulation: thousands of faulty histories keep every invariant, and bugs get caught.

``RAFT_SIM_SEEDS`` (default 10,000) sets how many seeds run and
``RAFT_SIM_JOBS`` (default 2) in how many processes; ``make sim`` runs more.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from eventstream.server.raft import InjectedBug
from eventstream.server.testing.raft_sim import Failure, Simulation, run_seeds

SEEDS = int(os.environ.get("RAFT_SIM_SEEDS", "10000"))
JOBS = int(os.environ.get("RAFT_SIM_JOBS", "2"))


def _report(failures: list[Failure]) -> str:
    return "\n".join(f"seed {failure.seed}: {failure.error}\n  replay: {failure.replay_command()}"
                     for failure in failures[:10])


@pytest.mark.timeout(1200)
def test_seeded_histories_keep_every_invariant():
    failures = run_seeds(range(SEEDS), jobs=JOBS)
    assert not failures, _report(failures)


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("bug", list(InjectedBug), ids=[bug.value for bug in InjectedBug])
def test_each_injected_bug_is_caught_within_the_seed_budget(bug: InjectedBug):
    failures = run_seeds(range(SEEDS), jobs=JOBS, bugs=frozenset([bug]), stop_at_first=True)
    assert failures, f"{bug.value}: no violation in {SEEDS} seeds"


def test_a_seed_is_a_pure_function_of_its_number():
    traces: list[list[str]] = [[], []]
    for trace in traces:
        Simulation(7, trace=trace.append).run()
    assert traces[0] == traces[1]
    assert len(traces[0]) > 100


def test_the_printed_command_replays_a_failing_seed_with_a_trace():
    bug = frozenset([InjectedBug.VOTE_WITHOUT_LOG_CHECK])
    failure = run_seeds(range(200), bugs=bug, stop_at_first=True)[0]
    command = failure.replay_command().split()
    assert command[:3] == ["python", "-m", "eventstream.server.testing.raft_sim"]
    replay = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=120)
    assert replay.returncode == 1
    assert f"VIOLATION at tick" in replay.stdout and failure.error in replay.stdout
    assert "deliver n" in replay.stdout and "Ready" in replay.stdout  # the trace

    trace: list[str] = []
    simulation = Simulation(failure.seed, bug, trace=trace.append)
    with pytest.raises(Exception, match="leader completeness|election safety|state-machine|log matching"):
        simulation.run()
    assert "\n".join(trace) in replay.stdout
