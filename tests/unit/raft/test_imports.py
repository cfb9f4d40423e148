"""The Raft core imports only the standard library, and none of its I/O, clock or randomness.

A stand-in for an import-linter contract: the package is parsed, not imported.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import eventstream.server.raft as raft_package

PACKAGE = Path(raft_package.__file__).parent
FORBIDDEN = {"asyncio", "time", "datetime", "random", "secrets", "logging", "threading", "multiprocessing",
             "concurrent", "socket", "ssl", "select", "selectors", "subprocess", "os", "io", "pathlib",
             "shutil", "tempfile", "signal", "sys"}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            modules.add(node.module or "")
    return modules


def test_the_package_has_the_modules_the_design_names():
    names = {path.stem for path in PACKAGE.glob("*.py")}
    assert {"core", "log", "quorum", "progress", "messages", "storage"} <= names


def test_raft_imports_only_the_standard_library_and_itself():
    for path in sorted(PACKAGE.glob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if module.startswith("eventstream.server.raft"):
                continue
            assert top in sys.stdlib_module_names or top == "__future__", f"{path.name} imports {module}"
            assert top not in FORBIDDEN, f"{path.name} imports {module}: no I/O, clock or randomness"


def test_the_guard_notices_a_forbidden_import(tmp_path: Path):
    module = tmp_path / "bad.py"
    module.write_text("import time\nfrom grpc import aio\n")
    assert imported_modules(module) == {"time", "grpc"}
