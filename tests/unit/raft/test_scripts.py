"""Golden interaction scripts: every feature and classic trap of the Raft core, step by step.

Each ``testdata/*.txt`` is run by ``eventstream.server.testing.raft_script``
(the command language is documented there). ``pytest --rewrite`` writes the
actual output back into the files: commit that only when the diff is
understood.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstream.server.testing.raft_script import run_script

TESTDATA = Path(__file__).parent / "testdata"
SCRIPTS = sorted(TESTDATA.glob("*.txt"))


def test_there_are_scripts():
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("path", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_script(path: Path, request: pytest.FixtureRequest):
    failures = run_script(path, rewrite=request.config.getoption("--rewrite"))
    assert not failures, "\n\n".join(failures)
