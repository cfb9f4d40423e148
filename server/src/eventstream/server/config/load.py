"""Build a :class:`Config` from defaults, a YAML file, the environment and flags.

Later sources win: defaults < file < environment < flags. Every problem is
collected, each naming its key and source, before :class:`ConfigError` is
raised, so one start-up attempt reports them all.

A problem in the file names the line and column of its key
(``config.yaml:3:3: ...``), as do YAML syntax errors; an unknown key close to
a known one gets a "did you mean"; a section or key written twice is refused
(YAML would keep the last one silently).

Environment: ``EVENTSTREAM_<SECTION>__<KEY>`` sets ``<section>.<key>`` (for
example ``EVENTSTREAM_QUEUES__BATCH_CAPACITY=1000``); values are read as YAML
scalars. ``NODE_ID``, then ``POD_NAME``, fill ``cluster.node_id`` when it is
empty, as in the Kubernetes StatefulSet.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import socket
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .auth import Parsed, parse_identities, parse_quotas
from .model import Config, sections
from .peer_tls import parse_peer_tls

DEFAULT_PATH = "/etc/eventstream/config.yaml"
ENV_PREFIX = "EVENTSTREAM_"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` has one line per bad key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


NESTED: dict[str, Callable[[str, yaml.SafeLoader, yaml.Node, list[str]], Parsed | None]] = {
    "auth.identities": parse_identities,
    "auth.default_quotas": parse_quotas,
    "cluster.tls": parse_peer_tls,
}
"""Keys whose values are read from their YAML nodes (file only), by ``section.key``."""

# Constraints beyond the type: key -> (check, description of what is allowed).
Check = Callable[[Any], bool]


def _number(value: float) -> str:
    """A bound as people write it: ``1073741824``, not ``1.07374e+09``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _between(low: float, high: float) -> tuple[Check, str]:
    return (lambda v: low <= v <= high), f"between {_number(low)} and {_number(high)}"


def _one_of(*choices: str) -> tuple[Check, str]:
    return (lambda v: v in choices), "one of " + ", ".join(choices)


_PORT = _between(1, 65535)
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # RFC 1123, as Kubernetes names
_DNS_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


def _address_port(value: str) -> bool:
    """``address:port`` (an IPv6 address in brackets) with a port in 1..65535."""
    host, colon, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        return False
    return (bool(colon and port.isdigit() and 0 < int(port) < 65536)
            and (address.version == 6) == bracketed)


_POSITIVE = _between(1, 2**40)
MAX_VOTERS = 9
"""``cluster.voters`` at most: every write waits for a majority of them."""
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
    "queues.max_rounds_in_flight": _between(1, 1024),
    "queues.batch_ingest_mark": _between(0, 2**31),
    "queues.batch_yield_ms": _between(0, 1000),
    "cluster.discovery": _one_of("static", "dns", "kubernetes"),
    "cluster.port": _PORT,
    "cluster.namespace": ((lambda v: _DNS_LABEL.fullmatch(v) is not None),
                          "a Kubernetes namespace name (lower-case letters, digits and -)"),
    "cluster.service": ((lambda v: _DNS_LABEL.fullmatch(v) is not None),
                        "a Kubernetes service name (lower-case letters, digits and -)"),
    "cluster.replicas": _between(1, 1000),
    "cluster.voters": _between(1, MAX_VOTERS),
    "cluster.name": ((lambda v: v == "" or _DNS_LABEL.fullmatch(v) is not None),
                     "empty or a name of lower-case letters, digits and -"),
    "cluster.cluster_domain": ((lambda v: v == "" or _DNS_NAME.fullmatch(v) is not None),
                               "empty or a DNS domain such as cluster.local"),
    "cluster.dns_server": ((lambda v: v == "" or _address_port(v)),
                           "empty or address:port of a DNS server, e.g. 10.96.0.10:53"),
    "cluster.discovery_timeout_seconds": _between(0, 24 * 3600),
    "cluster.tick_ms": _between(1, 10_000),
    "cluster.election_ticks": _between(2, 10_000),
    "cluster.heartbeat_ticks": _between(1, 10_000),
    "cluster.max_append_bytes": _between(1024, 2**31 - 1),
    "cluster.max_inflight_appends": _between(1, 65536),
    "cluster.max_rounds_in_flight": _between(1, 1024),
    "cluster.further_round_share": _between(0, 1),
    "cluster.send_queue_messages": _between(16, 2**20),
    "cluster.max_batch_bytes": _between(1024, 2**31 - 1),
    "cluster.max_message_bytes": _between(1024 * 1024, 2**31 - 1),
    "cluster.max_snapshot_bytes": _between(1024 * 1024, 2**40),
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
    "ingest.receive_buffer_bytes": _between(4096, 16 * 1024 * 1024),
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
    "ingest.max_connections_per_source": _between(0, 1_000_000),
    "ingest.udp_allowed_networks": ((lambda v: all(_network(n) for n in v)),
                                    "a list of networks in CIDR notation (10.0.0.0/8, fd00::/8) "
                                    "or addresses"),
    "tls.client_auth": _one_of("none", "require"),
    "tls.reload_interval_seconds": _between(0.05, 3600),
    "auth.reload_interval_seconds": _between(0.05, 3600),
}


def _network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


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
        unknown = _unknown(dotted)
        if unknown:
            problems.append(f"{source}: {unknown}")
        else:
            section, _, key = dotted.partition(".")
            values[section][key] = value
            sources[dotted] = source

    file_path = path if path is not None else (DEFAULT_PATH if Path(DEFAULT_PATH).exists() else None)
    if file_path is not None:
        for dotted, value, source in _read_file(file_path, problems):
            put(dotted, value, source)
    for name, raw in sorted(env.items()):
        if name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX):].partition("__")
            put(f"{section.lower()}.{key.lower()}", _scalar(raw), f"env {name}")
    for dotted, value in (overrides or {}).items():
        put(dotted, _scalar(value) if isinstance(value, str) else value, f"flag {dotted}")

    built = _build(values, sources, problems)
    if problems:
        raise ConfigError(problems)
    config = _fill_node_id(built, env)
    from ..cluster.settings import cluster_problems  # here: the cluster package imports config

    problems = cluster_problems(config)
    if problems:
        raise ConfigError(problems)
    return config


def _known_keys() -> dict[str, dict[str, Any]]:
    hints = {}
    for name, cls in sections().items():
        types = typing.get_type_hints(cls)
        hints[name] = {f.name: types[f.name] for f in dataclasses.fields(cls)}
    return hints


def _unknown(dotted: str) -> str:
    """Why ``section.key`` is not a key ("" when it is one), with a "did you mean"."""
    section, _, key = dotted.partition(".")
    known = _known_keys()
    if section not in known:
        return _unknown_section(section)
    if key not in known[section]:
        close = difflib.get_close_matches(key, known[section], n=1)
        elsewhere = [f"{name}.{key}" for name, keys in known.items() if key in keys]
        hint = (f" (did you mean '{section}.{close[0]}'?)" if close
                else f" (did you mean '{elsewhere[0]}'?)" if elsewhere else "")
        return f"unknown key '{dotted}'{hint}"
    return ""


def _unknown_section(section: str) -> str:
    known = sections()
    close = difflib.get_close_matches(section, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"sections: {', '.join(known)}"
    return f"unknown section '{section}' ({hint})"


def _at(path: str, node: yaml.Node) -> str:
    """``path:line:column`` of a node (1-based, as editors count)."""
    mark = node.start_mark
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def _read_file(path: str, problems: list[str]) -> list[tuple[str, Any, str]]:
    """(``section.key``, value, where it is written) for every key of the file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        problems.append(f"{path}: cannot read the config file: {exc.strerror}")
        return []
    # Composed, not loaded: the nodes keep their positions, and a key written
    # twice is still there to be refused.
    loader = yaml.SafeLoader(text)
    try:
        document = loader.get_single_node()
        return [] if document is None else _read_sections(path, loader, document, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        context = f" ({exc.context})" if exc.context else ""
        problems.append(f"{where}: not valid YAML: {exc.problem}{context}")
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML: {exc}")
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
    return []


def _entries(path: str, loader: yaml.SafeLoader, mapping: yaml.MappingNode, prefix: str,
             problems: list[str]) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """(name, key node, value node) of a mapping; a name written twice is refused."""
    entries: list[tuple[str, yaml.Node, yaml.Node]] = []
    first: dict[str, yaml.Node] = {}
    what = "key" if prefix else "section"
    for key_node, value_node in mapping.value:
        name = str(loader.construct_object(key_node, deep=True))  # type: ignore[no-untyped-call]
        if name in first:
            line = first[name].start_mark.line + 1
            problems.append(f"{_at(path, key_node)}: {what} '{prefix}{name}' is written twice "
                            f"(first at line {line}); keep one")
            continue
        first[name] = key_node
        entries.append((name, key_node, value_node))
    return entries


def _read_sections(path: str, loader: yaml.SafeLoader, document: yaml.Node,
                   problems: list[str]) -> list[tuple[str, Any, str]]:
    if not isinstance(document, yaml.MappingNode):
        problems.append(f"{_at(path, document)}: the top level must be a mapping of sections")
        return []
    pairs = []
    for section, section_node, body in _entries(path, loader, document, "", problems):
        if isinstance(body, yaml.MappingNode) and section not in sections():
            problems.append(f"{_at(path, section_node)}: {_unknown_section(section)}")
            continue
        if isinstance(body, yaml.MappingNode):
            for key, key_node, value in _entries(path, loader, body, f"{section}.", problems):
                dotted = f"{section}.{key}"
                nested = NESTED.get(dotted)
                if nested is not None:
                    parsed = nested(path, loader, value, problems)
                    if parsed is not None:
                        pairs.append((dotted, parsed, _at(path, key_node)))
                    continue
                pairs.append((dotted, loader.construct_object(value, deep=True),  # type: ignore[no-untyped-call]
                              _at(path, key_node)))
            continue
        value = loader.construct_object(body, deep=True)  # type: ignore[no-untyped-call]
        if value is None:
            continue  # an empty section
        if section in sections():
            problems.append(f"{_at(path, section_node)}: section '{section}' must be a mapping "
                            "of keys")
        else:
            pairs.append((section, value, _at(path, section_node)))
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
            if dotted in NESTED:
                if isinstance(value, Parsed):
                    kwargs[key] = value.value
                else:
                    problems.append(f"{sources[dotted]}: {dotted}: can only be set in the "
                                    "config file")
                continue
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
    problems.extend(_security_problems(config, sources))
    cluster = config.cluster
    if cluster.heartbeat_ticks >= cluster.election_ticks:
        problems.append(f"cluster.heartbeat_ticks: must be below cluster.election_ticks "
                        f"({cluster.election_ticks}), got {cluster.heartbeat_ticks}")
    return config


def _security_problems(config: Config, sources: dict[str, str]) -> list[str]:
    """What the ``tls`` and ``auth`` sections need of each other and of ``ingest``."""
    problems = []

    def where(key: str) -> str:
        source = sources.get(key)
        return f"{source}: {key}" if source else key

    tls = config.tls
    if tls.enabled:
        for key in ("cert_file", "key_file"):
            if not getattr(tls, key):
                problems.append(f"{where('tls.enabled')}: tls.{key} is required with tls.enabled")
    for key in ("cert_file", "key_file", "client_ca_file"):
        name = getattr(tls, key)
        if tls.enabled and name and not Path(name).is_file():
            problems.append(f"{where(f'tls.{key}')}: no such file: {name}")
    if tls.client_auth == "require" and not tls.client_ca_file:
        problems.append(f"{where('tls.client_auth')}: 'require' needs tls.client_ca_file "
                        "(the CAs that sign client certificates)")
    if tls.client_auth == "require" and not tls.enabled:
        problems.append(f"{where('tls.client_auth')}: 'require' needs tls.enabled")
    auth = config.auth
    if auth.enabled and config.ingest.udp_enabled and not config.ingest.udp_allowed_networks:
        problems.append(f"{where('auth.enabled')}: UDP carries no credentials: set "
                        "ingest.udp_allowed_networks (the networks that may send datagrams) "
                        "or ingest.udp_enabled: false")
    if auth.enabled and not auth.tokens_file and tls.client_auth != "require":
        problems.append(f"{where('auth.enabled')}: clients have no way to authenticate: set "
                        "auth.tokens_file (bearer tokens) or tls.client_auth: require "
                        "(client certificates)")
    if auth.tokens_file and not Path(auth.tokens_file).exists():
        problems.append(f"{where('auth.tokens_file')}: no such file: {auth.tokens_file}")
    return problems


def _fill_node_id(config: Config, env: Mapping[str, str]) -> Config:
    if config.cluster.node_id:
        return config
    node_id = env.get("NODE_ID") or env.get("POD_NAME") or socket.gethostname()
    return dataclasses.replace(config, cluster=dataclasses.replace(config.cluster, node_id=node_id))
