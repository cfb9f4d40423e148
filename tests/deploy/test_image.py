"""The container image definition: a structural lint (no container engine
runs here) and its consistency with the chart: ports, paths, user id."""

from __future__ import annotations

import json
import re

import yaml

from .rendering import REPO, find, helm_template

DOCKER_DIR = REPO / "deploy" / "docker"
KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
         "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in (DOCKER_DIR / "Dockerfile").read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    result = []
    for line in joined:
        word, _, rest = line.strip().partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


def only(stage, word: str) -> str:
    values = [args for name, args in stage if name == word]
    assert len(values) == 1, f"expected one {word} in the runtime stage, found {values}"
    return values[0]


def test_dockerfile_lints() -> None:
    all_instructions = instructions()
    assert {name for name, _ in all_instructions} <= KNOWN
    assert not any(name == "ADD" for name, _ in all_instructions), "use COPY, not ADD"
    build, runtime = stages()
    assert "AS build" in build[0][1] and "AS runtime" in runtime[0][1]
    args = dict(re.match(r"(\w+)=(.*)", a).groups() for n, a in all_instructions
                if n == "ARG" and "=" in a)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", args["PYTHON_IMAGE"])
    assert "latest" not in args["PYTHON_IMAGE"]
    build_runs = " ".join(a for n, a in build if n == "RUN")
    assert "gcc" in build_runs and "make -C server/native" in build_runs
    assert "pip wheel" in build_runs and "./sdk/python" in build_runs and "./server" in build_runs
    runtime_runs = " ".join(a for n, a in runtime if n == "RUN")
    assert not re.search(r"\b(gcc|g\+\+|clang|make|build-essential|apt-get install)\b", runtime_runs), (
        "the runtime stage must not install compilers or build tools")
    assert "--no-index" in runtime_runs, "the runtime installs only the build stage's wheels"
    for name, value in all_instructions:
        if name == "COPY" and "--from" not in value:
            sources = [part for part in value.split() if not part.startswith("--")][:-1]
            for source in sources:
                if source.startswith(("server", "deploy/docker")):
                    continue  # server/native is built by others; checked in the image build
                assert (REPO / source).exists(), f"COPY source {source} does not exist"


def test_image_matches_the_chart() -> None:
    runtime = stages()[-1]
    manifests = helm_template()
    pod = find(manifests, "StatefulSet")["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    # user
    assert only(runtime, "USER") == "10001:10001"
    security = pod["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (10001, 10001)
    # ports
    exposed = set(only(runtime, "EXPOSE").split())
    chart_ports = {f"{p['containerPort']}/{p['protocol'].lower()}" for p in server["ports"]}
    assert exposed == chart_ports
    # data volume and config path
    assert json.loads(only(runtime, "VOLUME")) == ["/var/lib/eventstream"]
    mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
    assert mounts["data"] == "/var/lib/eventstream"
    entrypoint = json.loads(only(runtime, "ENTRYPOINT"))
    assert entrypoint == ["eventstream-server", "--config", "/etc/eventstream/config.yaml"]
    assert server["args"] == entrypoint[1:]
    assert entrypoint[2].startswith(mounts["config"] + "/")
    assert "image" in server and "command" not in server, "the chart keeps the image's entrypoint"
    copy_config = [a for n, a in runtime if n == "COPY" and "deploy/docker/config.yaml" in a]
    assert copy_config and copy_config[0].endswith("/etc/eventstream/config.yaml")


def test_image_default_config_agrees_with_the_image() -> None:
    config = yaml.safe_load((DOCKER_DIR / "config.yaml").read_text())
    assert config["storage"]["data_dir"] == "/var/lib/eventstream"
    exposed = set(only(stages()[-1], "EXPOSE").split())
    ports = {f"{config['server']['tcp_port']}/tcp", f"{config['server']['udp_port']}/udp",
             f"{config['server']['grpc_port']}/tcp", f"{config['cluster']['port']}/tcp",
             f"{config['metrics']['port']}/tcp"}
    assert ports == exposed
    assert config["server"]["host"] == "0.0.0.0"
