"""The shell commands of the README's tour (grpcurl and ghz) run as written.

The blocks are read from README.md, so the front page and the test cannot
drift apart: the target address is replaced with a test server's, nothing
else. The Python block of the tour is run by tests/client/test_doc_snippets.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from tests.support.server import ServerProcess

README = Path(__file__).resolve().parents[2] / "README.md"
TARGET = "127.0.0.1:9200"


def shell_blocks() -> list[str]:
    """The ```sh blocks of the README, in order."""
    return re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)


def commands(tool: str) -> list[str]:
    """The commands of the README starting with ``tool``, continuation lines joined."""
    found = []
    for block in shell_blocks():
        for command in re.sub(r"\\\n\s*", "", block).splitlines():
            if command.startswith(tool + " "):
                found.append(command.split("  #")[0].strip())
    return found


def run(command: str, server: ServerProcess, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command.replace(TARGET, server.target)],
                          cwd=README.parent, capture_output=True, text=True, timeout=timeout)


def test_the_ghz_recipe_loads_the_server_without_errors(server):
    assert shutil.which("ghz"), "ghz not on PATH: run `make ghz` (make test does)"
    recipes = commands("ghz")
    assert len(recipes) == 1, recipes
    done = run(recipes[0] + " --format json", server, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["count"] == 10000
    assert report["statusCodeDistribution"] == {"OK": 10000}, report["statusCodeDistribution"]


def test_the_tour_publishes_then_reads_back_with_grpcurl(server):
    assert shutil.which("grpcurl"), "grpcurl not on PATH: run `make grpcurl` (make test does)"
    publish, subscribe = commands("grpcurl")
    published = run(publish, server, timeout=30)
    assert published.returncode == 0, published.stderr
    ack = json.loads(published.stdout)["ack"]
    # Subscribe streams until stopped: bound it and read what arrived.
    try:
        run(subscribe, server, timeout=5)
    except subprocess.TimeoutExpired as stopped:
        output = (stopped.stdout or b"").decode() if isinstance(stopped.stdout, bytes) else (
            stopped.stdout or "")
    else:
        raise AssertionError("the subscription ended by itself")
    assert ack["id"] in output, output
