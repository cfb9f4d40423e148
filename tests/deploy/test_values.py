"""values.yaml is documented key by key and values.schema.json covers it."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest
import yaml

from .rendering import CHART

VALUES_TEXT = (CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
KEY = re.compile(r"^(\s*)([A-Za-z_][\w.\-/]*):(\s|$)")


def leaf_paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(node, dict) and node:
        return [p for key, value in node.items() for p in leaf_paths(value, (*prefix, key))]
    return [prefix]


def documented_paths() -> set[tuple[str, ...]]:
    """Key paths with a `# --` comment block right above them."""
    stack: list[tuple[int, str]] = []
    documented = set()
    comment: list[str] = []
    for line in VALUES_TEXT.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        match = KEY.match(line)
        if not match or stripped.startswith("-"):
            comment = []
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        if any(c.startswith("# --") for c in comment):
            documented.add(tuple(key for _, key in stack))
        comment = []
    return documented


def test_every_value_is_documented() -> None:
    documented = documented_paths()
    missing = [".".join(path) for path in leaf_paths(VALUES)
               if not any(path[:n] in documented for n in range(1, len(path) + 1))]
    assert missing == []


def schema_at(path: tuple[str, ...]) -> dict[str, Any] | None:
    node = SCHEMA
    for key in path:
        if "properties" not in node:
            return node  # a free-form object (e.g. resources of a securityContext)
        if key not in node["properties"]:
            return None
        node = node["properties"][key]
    return node


def test_schema_covers_every_value() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert [".".join(p) for p in leaf_paths(VALUES) if schema_at(p) is None] == []


def test_every_schema_property_is_described() -> None:
    undescribed = []

    def walk(node: dict[str, Any], path: str) -> None:
        for key, child in node.get("properties", {}).items():
            if "description" not in child and "$ref" not in child and "oneOf" not in child:
                undescribed.append(f"{path}{key}")
            walk(child, f"{path}{key}.")
    walk(SCHEMA, "")
    assert undescribed == []


def test_config_passthrough_keys_are_server_keys() -> None:
    model = pytest.importorskip("eventstream.server.config.model",
                                reason="eventstream.server is not importable")
    sections = model.sections()
    owned = {"server": {"host", "grpc_port", "tcp_port", "udp_port"}, "storage": {"data_dir"}}
    for section, spec in SCHEMA["properties"]["config"]["properties"].items():
        fields = {f.name for f in dataclasses.fields(sections[section])}
        assert set(spec["properties"]) <= fields, section
        assert not set(spec["properties"]) & owned.get(section, set()), section
    assert "cluster" not in SCHEMA["properties"]["config"]["properties"]
    assert "metrics" not in SCHEMA["properties"]["config"]["properties"]


# Sections the chart sets from its own values (ports, cluster, metrics, numa).
CHART_OWNED = {"server.host", "server.grpc_port", "server.tcp_port", "server.udp_port",
               "storage.data_dir"}
CHART_SECTIONS = {"cluster", "metrics", "numa"}


def test_every_server_key_the_chart_does_not_own_can_be_set_with_the_servers_bounds() -> None:
    """A key added to the server is settable through `config`, and the schema
    refuses exactly what the server's loader refuses (probed at the bounds)."""
    model = pytest.importorskip("eventstream.server.config.model",
                                reason="eventstream.server is not importable")
    from eventstream.server.config.load import RULES
    config = SCHEMA["properties"]["config"]["properties"]
    for section, cls in model.sections().items():
        if section in CHART_SECTIONS:
            continue
        for field in dataclasses.fields(cls):
            key = f"{section}.{field.name}"
            if key in CHART_OWNED:
                continue
            spec = config.get(section, {}).get("properties", {}).get(field.name)
            assert spec is not None, f"{key} cannot be set through the chart's config"
            check = RULES.get(key, (lambda value: True, ""))[0]
            if "enum" in spec:
                assert all(check(choice) for choice in spec["enum"]), key
                assert not check("not-a-choice"), key
            if "minimum" in spec:
                step = 1 if spec["type"] == "integer" else 1e-9
                assert check(spec["minimum"]) and not check(spec["minimum"] - step), key
                assert check(spec["maximum"]) and not check(spec["maximum"] + step), key


README_ROW = re.compile(r"^\| `([\w.]+)` \| (.+?) \| .+ \|$", re.M)


def readme_default(value: Any) -> str:
    """A value as deploy/README.md's values table writes its default."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (dict, list)) and value:
        return "see values.yaml"
    if isinstance(value, str) and value:
        return f"`{value}`"
    return f"`{json.dumps(value)}`"


def test_readme_values_table_lists_every_value_with_its_default() -> None:
    """The table once said `replicas` 3 and described a quorum after the chart changed."""
    rows = dict(README_ROW.findall((CHART.parents[1] / "README.md").read_text()))
    wrong = {}
    for path in leaf_paths(VALUES):
        key = next((".".join(path[:n]) for n in range(len(path), 0, -1) if ".".join(path[:n]) in rows),
                   None)
        if key is None:
            wrong[".".join(path)] = "missing"
            continue
        node = VALUES
        for part in key.split("."):
            node = node[part]
        if rows[key] != readme_default(node):
            wrong[key] = f"README says {rows[key]}, values.yaml {readme_default(node)}"
    assert wrong == {}
