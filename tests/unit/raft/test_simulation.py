"""The seeded simulation: thousands of faulty histories keep every invariant, and bugs get caught.

``RAFT_SIM_SEEDS`` (default 10,000) sets how many seeds run and
``RAFT_SIM_JOBS`` (default 2) in how many processes; ``make sim`` runs more.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eventstream.server.raft import InjectedBug
from eventstream.server.testing.raft_sim import Failure, Simulation, Violation, run_seeds

SEEDS = int(os.environ.get("RAFT_SIM_SEEDS", "10000"))
JOBS = int(os.environ.get("RAFT_SIM_JOBS", "2"))
ROOT = Path(__file__).resolve().parents[3]


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
    command = failure.replay_command()
    assert command == f"make sim SEED={failure.seed} BUG=vote-without-log-check"
    recipe = subprocess.run(["make", "-n", "-s", *command.split()[1:]], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True).stdout.splitlines()[-1]
    module = recipe.split(" -m ", 1)[1].split()
    assert module == ["eventstream.server.testing.raft_sim", "--seed", str(failure.seed), "--trace",
                      "--bug", "vote-without-log-check"]
    replay = subprocess.run([sys.executable, "-m", *module], capture_output=True, text=True, timeout=120)
    assert replay.returncode == 1
    assert "VIOLATION at tick" in replay.stdout and failure.error in replay.stdout

    # The same trace as in this process: the run depends on nothing but its seed.
    trace: list[str] = []
    with pytest.raises(Violation):
        Simulation(failure.seed, bug, trace=trace.append).run()
    assert "deliver n" in trace[-1] or any("deliver n" in line for line in trace)
    assert "\n".join(trace) in replay.stdout
