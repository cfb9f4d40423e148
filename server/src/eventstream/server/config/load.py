"""Build a :class:`Config` from defaults, a YAML file, the environment and flags.

Later sources win: defaults < file < environment < flags. Every problem is
collected, each naming its key and source, before :class:`ConfigError` is
raised, so one start-up attempt reports them all.

Environment: ``EVENTSTREAM_<SECTION>__<KEY>`` sets ``<section>.<key>`` (for
example ``EVENTSTREAM_QUEUES__BATCH_CAPACITY=1000``); values are read as YAML
scalars. ``NODE_ID``, then ``POD_NAME``, fill ``cluster.node_id`` when it is
empty, as in the Kubernetes StatefulSet.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .model import Config, sections

DEFAULT_PATH = "/etc/eventstream/config.yaml"
ENV_PREFIX = "EVENTSTREAM_"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` has one line per bad key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# Constraints beyond the type: key -> (check, description of what is allowed).
Check = Callable[[Any], bool]


def _between(low: float, high: float) -> tuple[Check, str]:
    return (lambda v: low <= v <= high), f"between {low:g} and {high:g}"


def _one_of(*choices: str) -> tuple[Check, str]:
    return (lambda v: v in choices), "one of " + ", ".join(choices)


_PORT = _between(1, 65535)
_POSITIVE = _between(1, 2**40)
RULES: dict[str, tuple[Check, str]] = {
    "server.host": ((lambda v: bool(v.strip())),
                    "a host name or address (0.0.0.0 for every IPv4 interface, :: for every interface)"),
    "server.grpc_port": _PORT,
    "server.tcp_port": _PORT,
    "server.udp_port": _PORT,
    "server.warmup_seconds": _between(0, 3600),
    "server.drain_grace_seconds": _between(0, 3600),
    "server.drain_timeout_seconds": _between(0, 3600),
    "server.event_loop": _one_of("uvloop", "asyncio"),
    "queues.realtime_capacity": _between(1, 2**31),
    "queues.batch_capacity": _between(1, 2**31),
    "queues.drain_batch_events": _between(1, 2**20),
    "queues.batch_lane_share": _between(0.01, 1),
    "cluster.discovery": _one_of("static", "dns", "kubernetes"),
    "cluster.port": _PORT,
    "metrics.port": _PORT,
    "metrics.path": ((lambda v: re.fullmatch(r"/[A-Za-z0-9._~/-]*", v) is not None
                      and not v.startswith(("/health", "/status"))),
                     "a path of letters, digits and ._~/- starting with /, "
                     "not under /health or /status"),
    "metrics.max_connections": _between(1, 65536),
    "metrics.header_timeout_seconds": _between(0.1, 3600),
    "storage.partitions": _between(1, 4096),
    "storage.memory_max_bytes": _between(1024, 2**50),
    "storage.engine": _one_of("disk", "memory"),
    "storage.fsync": _one_of("always", "interval", "never"),
    "storage.fsync_interval_ms": _between(1, 3_600_000),
    "storage.segment_bytes": _between(4096, 2**30),
    "storage.segment_ms": _between(1, 2**40),
    "storage.index_interval_bytes": _between(64, 2**24),
    "storage.retention_ms": _between(0, 2**50),
    "storage.retention_bytes": _between(0, 2**50),
    "storage.tail_cache_bytes": _between(0, 2**40),
    "limits.max_message_bytes": _between(1, 2**30),
    "limits.max_event_bytes": _between(0, 2**31 - 1),
    "limits.max_request_bytes": _between(1024, 2**31 - 1),
    "limits.max_batch_events": _between(1, 2**20),
    "limits.max_topic_bytes": _between(1, 65535),
    "limits.max_id_bytes": _between(1, 65535),
    "limits.max_key_bytes": _between(1, 65535),
    "limits.max_headers": _between(0, 4096),
    "limits.max_patterns": _between(1, 4096),
    "ingest.max_frame_bytes": _between(8, 2**30),
    "ingest.max_connections": _between(1, 1_000_000),
    "ingest.idle_timeout_seconds": _between(0, 7 * 24 * 3600),
    "ingest.frame_timeout_seconds": _between(0.01, 3600),
    "ingest.max_buffered_bytes": _between(1024 * 1024, 2**40),
    "ingest.udp_receive_buffer_bytes": _between(4096, 2**31 - 1),
    "ingest.udp_queue_bytes": _between(1024 * 1024, 2**40),
    "dedup.window_seconds": _between(0, 7 * 24 * 3600),
    "dedup.max_ids": _between(0, 2**32),
    "subscribe.max_batch_events": _POSITIVE,
    "subscribe.max_batch_bytes": _between(1024, 2**30),
    "groups.max_in_flight": _POSITIVE,
    "groups.ack_deadline_seconds": _between(0.001, 24 * 3600),
    "groups.max_deliveries": _POSITIVE,
    "groups.max_batch_events": _POSITIVE,
    "groups.max_batch_bytes": _between(1024, 2**30),
    "groups.max_groups": _between(1, 1_000_000),
    "groups.idle_expiry_seconds": _between(0.1, 90 * 86400),
    "log.level": _one_of("debug", "info", "warning", "error"),
    "log.format": _one_of("text", "json"),
}


def load_config(
    path: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load the configuration.

    Args:
        path: YAML file to read. ``None`` reads :data:`DEFAULT_PATH` when it
            exists and runs on the embedded defaults otherwise.
        env: Environment to read overrides from; defaults to ``os.environ``.
        overrides: ``section.key`` -> value from command-line flags. Strings
            are read as YAML scalars, other values are taken as they are.

    Raises:
        ConfigError: listing every unknown key, wrong type and bad value.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    values: dict[str, dict[str, Any]] = {name: {} for name in sections()}
    sources: dict[str, str] = {}

    def put(dotted: str, value: Any, source: str) -> None:
        section, _, key = dotted.partition(".")
        known = _known_keys()
        if section not in known:
            problems.append(f"{source}: unknown key '{dotted}' (sections: {', '.join(known)})")
        elif key not in known[section]:
            problems.append(f"{source}: unknown key '{dotted}'")
        else:
            values[section][key] = value
            sources[dotted] = source

    file_path = path if path is not None else (DEFAULT_PATH if Path(DEFAULT_PATH).exists() else None)
    if file_path is not None:
        for dotted, value in _read_file(file_path, problems):
            put(dotted, value, file_path)
    for name, raw in sorted(env.items()):
        if name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX):].partition("__")
            put(f"{section.lower()}.{key.lower()}", _scalar(raw), f"env {name}")
    for dotted, value in (overrides or {}).items():
        put(dotted, _scalar(value) if isinstance(value, str) else value, f"flag {dotted}")

    built = _build(values, sources, problems)
    if problems:
        raise ConfigError(problems)
    return _fill_node_id(built, env)


def _known_keys() -> dict[str, dict[str, Any]]:
    hints = {}
    for name, cls in sections().items():
        types = typing.get_type_hints(cls)
        hints[name] = {f.name: types[f.name] for f in dataclasses.fields(cls)}
    return hints


def _read_file(path: str, problems: list[str]) -> list[tuple[str, Any]]:
    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        problems.append(f"{path}: cannot read the config file: {exc.strerror}")
        return []
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML: {str(exc).splitlines()[0]}")
        return []
    if document is None:
        return []
    if not isinstance(document, dict):
        problems.append(f"{path}: the top level must be a mapping of sections")
        return []
    pairs = []
    for section, body in document.items():
        if body is None:
            continue
        if not isinstance(body, dict):
            if str(section) in sections():
                problems.append(f"{path}: key '{section}' must be a mapping of keys")
            else:
                pairs.append((str(section), body))
            continue
        pairs.extend((f"{section}.{key}", value) for key, value in body.items())
    return pairs


def _scalar(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError:
        return raw


def _coerce(value: Any, hint: Any) -> tuple[bool, Any, str]:
    """Return (ok, converted value, expected type's name)."""
    if hint is bool:
        return isinstance(value, bool), value, "true or false"
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value, "an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value, "a number"
    if hint is str:
        return isinstance(value, str), value, "a string"
    # tuple[str, ...]: a YAML list of strings, or one comma-separated string.
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
    return ok, tuple(value) if ok else value, "a list of strings"


def _build(values: dict[str, dict[str, Any]], sources: dict[str, str],
           problems: list[str]) -> Config:
    built_sections = {}
    for section, cls in sections().items():
        hints = _known_keys()[section]
        kwargs = {}
        for key, value in values[section].items():
            dotted = f"{section}.{key}"
            ok, converted, expected = _coerce(value, hints[key])
            if not ok:
                problems.append(f"{sources[dotted]}: {dotted}: expected {expected}, got {value!r}")
                continue
            rule = RULES.get(dotted)
            if rule is not None and not rule[0](converted):
                problems.append(f"{sources[dotted]}: {dotted}: must be {rule[1]}, got {value!r}")
                continue
            kwargs[key] = converted
        built_sections[section] = cls(**kwargs)
    config = Config(**built_sections)
    ports = {
        "server.grpc_port": config.server.grpc_port,
        "server.tcp_port": config.server.tcp_port,
        "metrics.port": config.metrics.port,
        "cluster.port": config.cluster.port,
    }
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port in seen:
            problems.append(f"{key}: port {port} is also {seen[port]}")
        seen[port] = key
    return config


def _fill_node_id(config: Config, env: Mapping[str, str]) -> Config:
    if config.cluster.node_id:
        return config
    node_id = env.get("NODE_ID") or env.get("POD_NAME") or socket.gethostname()
    return dataclasses.replace(config, cluster=dataclasses.replace(config.cluster, node_id=node_id))
