"""The nested ``cluster.tls`` key: the members' certificate files, read from its YAML node.

Pure but for looking the files up: every problem names its key path and
where it is written (``config.yaml:9:5: cluster.tls.ca_file: no such file:
...``). The key can only be set in the file, like the ``auth`` identities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .auth import Parsed, Reader
from .model import PeerTlsConfig

FILES = ("cert_file", "key_file", "ca_file")
"""The keys every ``cluster.tls`` needs, each an existing file."""
KEYS = (*FILES, "server_name", "reload_interval_seconds")


def parse_peer_tls(path: str, loader: yaml.SafeLoader, node: yaml.Node,
                   problems: list[str]) -> Parsed | None:
    """A :class:`PeerTlsConfig` from the ``cluster.tls`` mapping (None after a problem)."""
    reader = Reader(path, loader, problems)
    before = len(problems)
    entries = reader.mapping(node, "cluster.tls", KEYS)
    if entries is None:
        return None
    missing = [key for key in FILES if key not in entries]
    if missing:
        reader.problem(node, "cluster.tls", f"needs {', '.join(missing)} (mutual TLS between "
                       "the members: this member's certificate, its key, the members' CA)")
    values: dict[str, Any] = {}
    for key, (_, value_node) in entries.items():
        where = f"cluster.tls.{key}"
        if key == "reload_interval_seconds":
            values[key] = reader.number(value_node, where, 0.05, 3600)
            continue
        value = reader.scalar(value_node)
        if not isinstance(value, str):
            reader.problem(value_node, where, f"expected a string, got {value!r}")
        elif key in FILES and not Path(value).is_file():
            reader.problem(value_node, where, f"no such file: {value}")
        else:
            values[key] = value
    if len(problems) != before:
        return None
    return Parsed(PeerTlsConfig(**values))


__all__ = ["parse_peer_tls"]
