"""The nested keys of the ``auth`` section: identities and quotas, read from YAML nodes.

Pure: works on nodes the loader already composed, so every problem names
its key path and the line and column it is written at, e.g.
``config.yaml:12:9: auth.identities[1].publish.allow[0]: ...``. The loader
(:mod:`.load`) calls :func:`parse_identities` and :func:`parse_quotas` for
``auth.identities`` and ``auth.default_quotas``; these keys can only be set
in the file, not from the environment or flags.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from ..broker.topics import pattern_problem
from .model import ConsumePermissionConfig, IdentityConfig, PermissionConfig, QuotasConfig

IDENTITY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
"""An identity's name: it appears in tokens files and metric labels."""
GROUP_PATTERN = re.compile(r"\*|[A-Za-z0-9._-]{1,128}\*?")
"""A consumer group name, ``*``, or a prefix ending in ``*``."""
MAX_PATTERNS = 1024
"""Most patterns in one allow or deny list."""


@dataclass(frozen=True)
class Parsed:
    """A value built from a nested key (the loader takes it as it is)."""

    value: Any


class Reader:
    """Walks nodes of one file, collecting problems with their positions."""

    def __init__(self, path: str, loader: yaml.SafeLoader, problems: list[str]) -> None:
        self.path = path
        self.loader = loader
        self.problems = problems

    def problem(self, node: yaml.Node, where: str, text: str) -> None:
        """Record ``text`` about the key at ``where``, with the node's line and column."""
        mark = node.start_mark
        self.problems.append(f"{self.path}:{mark.line + 1}:{mark.column + 1}: {where}: {text}")

    def scalar(self, node: yaml.Node) -> Any:
        """The node's value as YAML reads it."""
        return self.loader.construct_object(node, deep=True)  # type: ignore[no-untyped-call]

    def mapping(self, node: yaml.Node, where: str,
                known: tuple[str, ...]) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """Key -> (key node, value node); unknown and repeated keys are problems."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, where, "must be a mapping of keys")
            return None
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(self.scalar(key_node))
            if key in entries:
                self.problem(key_node, f"{where}.{key}", "is written twice; keep one")
            elif key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean '{where}.{close[0]}'?)" if close else \
                    f" (keys: {', '.join(known)})"
                self.problem(key_node, where, f"unknown key '{key}'{hint}")
            else:
                entries[key] = (key_node, value_node)
        return entries

    def strings(self, node: yaml.Node, where: str, check: Callable[[str], str | None],
                limit: int = MAX_PATTERNS) -> tuple[str, ...]:
        """A list of strings, each checked (``check`` returns a problem or None)."""
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, where, "must be a list")
            return ()
        if len(node.value) > limit:
            self.problem(node, where, f"at most {limit} entries")
            return ()
        out = []
        for index, item in enumerate(node.value):
            value = self.scalar(item)
            problem = check(value) if isinstance(value, str) else f"must be a string, got {value!r}"
            if problem is not None:
                self.problem(item, f"{where}[{index}]", problem)
            else:
                out.append(value)
        return tuple(out)

    def flag(self, node: yaml.Node, where: str) -> bool:
        """A boolean (False after a problem)."""
        value = self.scalar(node)
        if not isinstance(value, bool):
            self.problem(node, where, f"expected true or false, got {value!r}")
            return False
        return value

    def number(self, node: yaml.Node, where: str, low: float, high: float,
               integer: bool = False) -> float | None:
        """A number from ``low`` to ``high`` (None after a problem)."""
        value = self.scalar(node)
        kind_ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not kind_ok or not low <= value <= high \
                or (isinstance(value, float) and math.isnan(value)):
            what = "an integer" if integer else "a number"
            self.problem(node, where, f"must be {what} between {_bound(low)} and {_bound(high)}, "
                         f"got {value!r}")
            return None
        return value  # type: ignore[no-any-return]


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _pattern(value: str) -> str | None:
    problem = pattern_problem(value)
    return None if problem is None else f"not a topic pattern: {problem}"


def _group(value: str) -> str | None:
    return None if GROUP_PATTERN.fullmatch(value) else \
        f"must be a group name (letters, digits, '.', '_', '-'), '*', or a prefix ending in '*', " \
        f"got {value!r}"


def _name(value: str) -> str | None:
    return None if value.strip() and len(value) <= 1024 else \
        f"must be a non-empty name of at most 1024 characters, got {value!r}"


def parse_quotas(path: str, loader: yaml.SafeLoader, node: yaml.Node, problems: list[str],
                 where: str = "auth.default_quotas") -> Parsed | None:
    """A :class:`QuotasConfig` from its mapping (None after a problem)."""
    reader = Reader(path, loader, problems)
    quotas = _quotas(reader, node, where)
    return None if quotas is None else Parsed(quotas)


def _quotas(reader: Reader, node: yaml.Node, where: str) -> QuotasConfig | None:
    keys = ("publish_events_per_second", "publish_bytes_per_second", "burst_seconds",
            "max_publish_streams", "max_subscriptions")
    entries = reader.mapping(node, where, keys)
    if entries is None:
        return None
    before = len(reader.problems)
    values: dict[str, Any] = {}
    for key, (_, value_node) in entries.items():
        integer = key.startswith("max_")
        low = 0.001 if key == "burst_seconds" else 0
        values[key] = reader.number(value_node, f"{where}.{key}", low, 2**40 if not integer
                                    else 1_000_000, integer)
    if len(reader.problems) != before:
        return None
    numbers: dict[str, Any] = {key: int(value) if key.startswith("max_") else float(value)
                               for key, value in values.items()}
    return QuotasConfig(**numbers)


def _permission(reader: Reader, node: yaml.Node, where: str,
                consume: bool = False) -> PermissionConfig | ConsumePermissionConfig:
    keys = ("allow", "deny", "groups") if consume else ("allow", "deny")
    entries = reader.mapping(node, where, keys) or {}
    values = {key: reader.strings(value_node, f"{where}.{key}",
                                  _group if key == "groups" else _pattern)
              for key, (_, value_node) in entries.items()}
    return ConsumePermissionConfig(**values) if consume else PermissionConfig(**values)


def parse_identities(path: str, loader: yaml.SafeLoader, node: yaml.Node,
                     problems: list[str]) -> Parsed | None:
    """The ``auth.identities`` list as a tuple of :class:`IdentityConfig` (None after a problem)."""
    reader = Reader(path, loader, problems)
    before = len(problems)
    if not isinstance(node, yaml.SequenceNode):
        reader.problem(node, "auth.identities", "must be a list of identities")
        return None
    identities: list[IdentityConfig] = []
    names: dict[str, int] = {}
    claimed: dict[str, str] = {}
    for index, item in enumerate(node.value):
        where = f"auth.identities[{index}]"
        found = _identity(reader, item, where)
        if found is None:
            continue
        identity, names_node = found
        if identity.name in names:
            reader.problem(item, f"{where}.name", f"{identity.name!r} is also "
                           f"auth.identities[{names[identity.name]}]; keep one")
            continue
        names[identity.name] = index
        for cert_name in identity.certificate_names or (identity.name,):
            other = claimed.setdefault(cert_name, identity.name)
            if other != identity.name:
                reader.problem(names_node, f"{where}.certificate_names",
                               f"{cert_name!r} already names identity {other!r}")
        identities.append(identity)
    if len(problems) != before:
        return None
    return Parsed(tuple(identities))


def _identity(reader: Reader, node: yaml.Node, where: str
              ) -> tuple[IdentityConfig, yaml.Node] | None:
    """The identity, and the node that gives its certificate names (for problems)."""
    keys = ("name", "certificate_names", "publish", "subscribe", "consume", "admin", "quotas")
    entries = reader.mapping(node, where, keys)
    if entries is None:
        return None
    if "name" not in entries:
        reader.problem(node, where, "needs a name")
        return None
    name = reader.scalar(entries["name"][1])
    if not isinstance(name, str) or not IDENTITY_NAME.fullmatch(name):
        reader.problem(entries["name"][1], f"{where}.name",
                       f"must be 1 to 128 letters, digits, '.', '_', '@' or '-' (not first), "
                       f"got {name!r}")
        return None
    values: dict[str, Any] = {"name": name}
    for key, (_, value_node) in entries.items():
        at = f"{where}.{key}"
        if key == "certificate_names":
            values[key] = reader.strings(value_node, at, _name)
        elif key in ("publish", "subscribe", "consume"):
            values[key] = _permission(reader, value_node, at, consume=key == "consume")
        elif key == "admin":
            values[key] = reader.flag(value_node, at)
        elif key == "quotas":
            values[key] = _quotas(reader, value_node, at)
    names_node = entries.get("certificate_names", entries["name"])[1]
    return IdentityConfig(**values), names_node


__all__ = ["Parsed", "Reader", "parse_identities", "parse_quotas"]
