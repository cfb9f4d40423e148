"""Every client language runs the same scenario against one real server.

Each language's program (tests/conformance/<language>/) publishes the events of
scenario.json under its own topic prefix, subscribes to ``<prefix>/#`` from
EARLIEST, publishes an event with an empty topic, and prints what it saw as
JSON; :mod:`tests.conformance.checks` compares that with the scenario. A
failing test is named after the language that deviates. The generated
clients' example programs run against the same server.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.checks import deviations
from tests.conformance.languages import HERE, LANGUAGES, Language
from tests.support.server import ServerProcess

SCENARIO_PATH = HERE / "scenario.json"
RUN_TIMEOUT_SECONDS = 120
# Cold builds fetch modules and compile; the scenario itself takes seconds.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for every language, so they all talk to the same node."""
    server = ServerProcess(Path(tmp_path_factory.mktemp("conformance-server")))
    try:
        yield server.start()
    finally:
        server.stop()


def run(language: Language, command: list[str]) -> str:
    """Run a program of ``language``; fail naming the language when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    if result.returncode != 0:
        pytest.fail(f"{language.name}: {' '.join(command)} exited with {result.returncode}:\n"
                    f"{result.stdout[-2000:]}{result.stderr[-4000:]}")
    return result.stdout


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda language: language.name)
def test_language_conforms(language: Language, shared_server: ServerProcess) -> None:
    language.build()
    prefix = f"conformance/{language.name}"
    output = run(language, [*language.conformance(), shared_server.target, prefix, str(SCENARIO_PATH)])
    result = json.loads(output.strip().splitlines()[-1])
    assert result["language"] == language.name
    problems = deviations(result, json.loads(SCENARIO_PATH.read_text()), prefix)
    assert not problems, f"{language.name} deviates:\n" + "\n".join(problems)


@pytest.mark.parametrize("language", [language for language in LANGUAGES if language.example],
                         ids=lambda language: language.name)
def test_example_publishes_subscribes_and_reports_errors(language: Language,
                                                          shared_server: ServerProcess) -> None:
    language.build()
    assert language.example is not None
    output = run(language, language.example(shared_server.target))
    published = output.split("published ", 1)[1].split()[0]
    assert f"received {published} on examples/{language.name}: hello" in output, output
    assert "reason TOPIC_EMPTY, field event.topic" in output, output
