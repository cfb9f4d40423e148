"""Every Python snippet of README.md and docs/*.md runs as written.

Each snippet runs in its own interpreter against a fresh real server; only
the addresses change (``127.0.0.1:9200`` and the raw ports 9000/9001 become the
test server's, ``events.example.com:443`` a TLS-terminating proxy in front of
it, with the snippet's certificate files beside it). A snippet must end by
itself: one that loops forever fails on the timeout.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.test_tls import make_ca, make_signed

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SNIPPET = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
TLS_TARGET = "events.example.com:443"


def snippets() -> list[tuple[str, str]]:
    """(``file:line``, code) of every Python snippet."""
    found = []
    for path in DOCUMENTS:
        text = path.read_text()
        for match in SNIPPET.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return found


SNIPPETS = snippets()


def test_the_snippets_are_found():
    assert len(SNIPPETS) >= 7
    assert any("TemporaryFailure" in code for _, code in SNIPPETS)


def for_server(code: str, server, tls_target: str) -> str:
    """The snippet with its addresses pointed at the test's server."""
    code = code.replace("127.0.0.1:9200", server.target)
    code = code.replace('"127.0.0.1", 9000', f'"127.0.0.1", {server.tcp_port}')
    code = code.replace('"127.0.0.1", 9001', f'"127.0.0.1", {server.udp_port}')
    return code.replace(TLS_TARGET, tls_target)


def tls_proxy(directory: Path, server, start_proxy) -> str:
    """A mutual-TLS proxy in front of ``server``, with ca.pem, client.pem and
    client.key in ``directory``; returns its target."""
    make_ca(directory, "ca")
    make_signed(directory, "server", "ca", "DNS:localhost,IP:127.0.0.1")
    make_signed(directory, "client", "ca", "DNS:client")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    context.load_verify_locations(directory / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    return start_proxy(server.target, tls=context).target


@pytest.mark.parametrize("where,code", SNIPPETS, ids=[where for where, _ in SNIPPETS])
def test_a_snippet_runs_as_written(where, code, server, start_proxy, tmp_path):
    target = tls_proxy(tmp_path, server, start_proxy) if TLS_TARGET in code else TLS_TARGET
    script = tmp_path / "snippet.py"
    script.write_text(for_server(code, server, target))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, f"{where}:\n{result.stdout}\n{result.stderr}"
