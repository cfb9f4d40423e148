"""How each language's conformance program and example are built and started.

Builds run once per test session, from the repository's pinned manifests
(go.mod/go.sum, package-lock.json, pom.xml), fetching only from the Go module
proxy, npm and Maven Central.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "conformance"
BUILD = HERE / "build"
GO_SDK = ROOT / "sdk" / "clients" / "go"
TS_SDK = ROOT / "sdk" / "clients" / "typescript"
JAVA_SDK = ROOT / "sdk" / "clients" / "java"
BUILD_TIMEOUT_SECONDS = 600


def _java_classpath() -> str:
    dependencies = (JAVA_SDK / "target" / "classpath.txt").read_text().strip()
    return f"{JAVA_SDK / 'target' / 'classes'}:{dependencies}"


@dataclass(frozen=True)
class Language:
    """One client language: build steps and the commands of its programs.

    ``conformance`` returns the command without the arguments; ``example``
    and ``secure`` (the TLS example: a CA, a client certificate and a token)
    take the target and the TLS options as ``--name value`` pairs. Both are
    None for Python, whose hand-written SDK has its own tests.
    """

    name: str
    steps: tuple[tuple[tuple[str, ...], Path], ...]
    conformance: Callable[[], list[str]]
    example: Callable[[str], list[str]] | None
    secure: Callable[[str, dict[str, str]], list[str]] | None = None

    def build(self) -> None:
        """Run the build steps once per session; fail naming the language."""
        _build(self)


@functools.cache
def _build(language: Language) -> None:
    BUILD.mkdir(exist_ok=True)
    for command, cwd in language.steps:
        try:
            result = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                                    timeout=BUILD_TIMEOUT_SECONDS)
        except FileNotFoundError:
            pytest.fail(f"{language.name}: `{command[0]}` is not installed "
                        f"(needed by the {language.name} client)")
        if result.returncode != 0:
            pytest.fail(f"{language.name}: `{' '.join(command)}` failed in {cwd}:\n"
                        f"{result.stdout[-4000:]}{result.stderr[-4000:]}")


def _pairs(options: dict[str, str], dash: str) -> list[str]:
    """``{"ca": "x"}`` as ``[dash + "ca", "x"]``."""
    return [part for name, value in options.items() for part in (dash + name, value)]


TSX = str(TS_SDK / "node_modules" / ".bin" / "tsx")
TSC = str(TS_SDK / "node_modules" / ".bin" / "tsc")
MAVEN = ("mvn", "-q", "-B")

LANGUAGES = (
    Language(
        name="python",
        steps=(),
        conformance=lambda: [sys.executable, str(HERE / "python" / "conformance.py")],
        example=None,
    ),
    Language(
        name="go",
        steps=((("go", "vet", "./..."), GO_SDK),
               (("go", "build", "-o", str(BUILD / "go-quickstart"), "./examples/quickstart"), GO_SDK),
               (("go", "build", "-o", str(BUILD / "go-secure"), "./examples/secure"), GO_SDK),
               (("go", "build", "-o", str(BUILD / "go-conformance"), "."), HERE / "go")),
        conformance=lambda: [str(BUILD / "go-conformance")],
        example=lambda target: [str(BUILD / "go-quickstart"), "-target", target],
        # Go's flag package takes -name value.
        secure=lambda target, options: [str(BUILD / "go-secure"), "-target", target,
                                        *_pairs(options, "-")],
    ),
    Language(
        name="typescript",
        steps=((("npm", "ci", "--no-audit", "--no-fund"), TS_SDK),
               ((TSC, "-p", "."), TS_SDK),
               ((TSC, "-p", "."), HERE / "typescript")),
        conformance=lambda: [TSX, str(HERE / "typescript" / "conformance.ts")],
        example=lambda target: ["node", str(TS_SDK / "dist" / "examples" / "quickstart.js"), f"http://{target}"],
        secure=lambda target, options: ["node", str(TS_SDK / "dist" / "examples" / "secure.js"),
                                        f"https://{target}", *_pairs(options, "--")],
    ),
    Language(
        name="java",
        steps=(((*MAVEN, "package"), JAVA_SDK),),
        conformance=lambda: ["java", "-cp", _java_classpath(), str(HERE / "java" / "Conformance.java")],
        example=lambda target: ["java", "-cp", _java_classpath(), "eventstream.examples.Quickstart", target],
        secure=lambda target, options: ["java", "-cp", _java_classpath(), "eventstream.examples.Secure",
                                        target, *_pairs(options, "--")],
    ),
)
