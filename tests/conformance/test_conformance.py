"""Every client language runs the same scenario against one real server.

Each language's program (tests/conformance/<language>/) publishes the events of
scenario.json under its own topic prefix, subscribes to ``<prefix>/#`` from
EARLIEST, publishes an event with an empty topic, and prints what it saw as
JSON; :mod:`tests.conformance.checks` compares that with the scenario. A
failing test is named after the language that deviates. The generated
clients' example programs run against the same server, and their TLS examples
against a server with mutual TLS and bearer tokens.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.checks import deviations
from tests.conformance.languages import HERE, LANGUAGES, Language
from tests.support.certs import new_token, token_line
from tests.support.server import ServerProcess
from tests.support.tls import Pki

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


@pytest.fixture(scope="module")
def secure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Pki, str]]:
    """A server with mutual TLS and tokens: the token's identity may publish to
    ``examples/#``; the client certificate names no identity (so it may not)."""
    directory = Path(tmp_path_factory.mktemp("conformance-tls"))
    pki = Pki.make(directory / "pki")
    token = new_token()
    tokens = directory / "tokens"
    tokens.write_text(token_line("examples", token))
    (directory / "server").mkdir()
    server = ServerProcess(directory / "server", {
        "tls": pki.tls_section(), "ingest": {"udp_enabled": False},
        "auth": {"enabled": True, "tokens_file": str(tokens), "identities": [
            {"name": "examples", "certificate_names": ["not-the-client"],
             "publish": {"allow": ["examples/#"]}}]}})
    try:
        yield server.start(), pki, token
    finally:
        server.stop()


@pytest.mark.parametrize("language", [language for language in LANGUAGES if language.secure],
                         ids=lambda language: language.name)
def test_tls_example_publishes_with_mutual_tls_and_a_token(
        language: Language, secure_server: tuple[ServerProcess, Pki, str]) -> None:
    language.build()
    assert language.secure is not None
    server, pki, token = secure_server
    options = {"ca": str(pki.ca.cert_path), "cert": str(pki.client.cert_path),
               "key": str(pki.client.key_path), "server-name": "localhost"}
    output = run(language, language.secure(server.target, {**options, "token": token}))
    assert re.search(r"^published \S+ at partition \d+ offset \d+$", output, re.M), output

    def refused(options: dict[str, str]) -> str:
        result = subprocess.run(language.secure(server.target, options), capture_output=True,
                                text=True, timeout=RUN_TIMEOUT_SECONDS)
        assert result.returncode != 0, result.stdout
        return result.stdout + result.stderr

    # The certificate alone names no identity that may publish: the token let it in.
    assert re.search(r"permission.?denied", refused(options), re.I)
    # Without the client certificate the connection is refused before any
    # authorization (UNAVAILABLE, or CANCELED where TLS 1.3 ends the stream):
    # the example presented it.
    without_certificate = {key: value for key, value in options.items() if key not in ("cert", "key")}
    assert re.search(r"unavailable|cancel", refused({**without_certificate, "token": token}), re.I)
