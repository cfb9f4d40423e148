"""Only the transport imports the peer protocol, and the peer protocol stays out of the SDKs.

A stand-in for an import-linter contract: the server's modules are parsed, not imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import eventstream.server as server_package

SERVER = Path(server_package.__file__).parent
ROOT = SERVER.parents[3]
TRANSPORT = SERVER / "cluster" / "transport"


def imports_peer_protocol(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(name == "eventstream.peer" or name.startswith("eventstream.peer.") for name in names):
            return True
    return False


def test_only_cluster_transport_imports_eventstream_peer():
    importers = {path for path in SERVER.rglob("*.py") if imports_peer_protocol(path)}
    assert importers, "the guard found no importer at all: it is broken"
    outside = sorted(str(path.relative_to(SERVER)) for path in importers if TRANSPORT not in path.parents)
    assert outside == []


def test_the_guard_sees_both_import_forms(tmp_path: Path):
    for text in ("import eventstream.peer.v1.raft_pb2\n", "from eventstream.peer.v1 import raft_pb2\n"):
        module = tmp_path / "m.py"
        module.write_text(text)
        assert imports_peer_protocol(module)


GENERATED_SDKS = ("sdk/python/src/eventstream", "sdk/clients/go/gen", "sdk/clients/typescript/src/gen",
                  "sdk/clients/java/src/gen")


def test_no_sdk_holds_peer_protocol_code():
    for generated in GENERATED_SDKS:
        folder = ROOT / generated
        assert folder.is_dir(), folder
        assert not [path for path in folder.rglob("*") if "peer" in path.relative_to(folder).parts], folder
