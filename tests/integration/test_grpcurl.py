"""The grpcurl recipes of docs/api.md run as written, with the real grpcurl,
through server reflection.

The recipes are read from that page's grpcurl block, so the documentation and
the test cannot drift apart: every recipe there must have a check here, and
the checks for list, describe, publish from JSON and subscribe must find their
recipe there.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.recipes import grpcurl_recipes
from tests.support.server import ServerProcess

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
README_TARGET = "127.0.0.1:9200"
SUBSCRIBE_WAIT_SECONDS = 30


def readme_recipes() -> list[str]:
    """The commands of docs/api.md's grpcurl block, comments left out."""
    return grpcurl_recipes(API_DOC, "\n## grpcurl\n")


def run(command: str) -> subprocess.CompletedProcess[str]:
    """Run one recipe through bash, as a reader pasting it would."""
    assert shutil.which("grpcurl"), "grpcurl not on PATH: run `make tools` (make test does)"
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)


def run_stream_until(command: str, wanted: list[str]) -> str:
    """Run a streaming recipe until its output names every id in ``wanted``, then stop it."""
    output = b""
    with subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, start_new_session=True) as process:
        try:
            assert process.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                deadline = time.monotonic() + SUBSCRIBE_WAIT_SECONDS
                while not all(event_id.encode() in output for event_id in wanted):
                    assert time.monotonic() < deadline, f"subscription did not deliver {wanted}:\n{output!r}"
                    if selector.select(timeout=1):
                        # os.read, not readline: a buffered reader would hide data from select.
                        chunk = os.read(process.stdout.fileno(), 65536)
                        assert chunk, f"subscription ended early:\n{output!r}"
                        output += chunk
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
    return output.decode()


def json_messages(output: str) -> list[Any]:
    """The JSON messages grpcurl printed one after another."""
    decoder, messages, position = json.JSONDecoder(), [], 0
    while output[position:].strip():
        position += len(output[position:]) - len(output[position:].lstrip())
        message, position = decoder.raw_decode(output, position)
        messages.append(message)
    return messages


class Checks:
    """One check per README recipe; ``published`` carries ids to the subscription."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.published: list[str] = []
        self.done: set[str] = set()

    def check(self, recipe: str) -> None:
        command = recipe.replace(README_TARGET, self.server.target)
        for name, applies, check in self.table():
            if applies(recipe):
                check(command)
                self.done.add(name)
                return
        raise AssertionError(f"README grpcurl recipe without a check in this test:\n{recipe}")

    def table(self) -> list[tuple[str, Callable[[str], bool], Callable[[str], None]]]:
        return [
            ("list", lambda r: r.endswith(f"{README_TARGET} list"), self.list_services),
            ("list methods", lambda r: " list eventstream.v1.PublishService" in r, self.list_methods),
            ("describe service", lambda r: "describe eventstream.v1.SubscribeService" in r,
             lambda c: self.describe(c, "rpc Subscribe ( .eventstream.v1.SubscribeRequest ) "
                                        "returns ( stream .eventstream.v1.SubscribeResponse )")),
            ("describe message", lambda r: "describe eventstream.v1.Event" in r,
             lambda c: self.describe(c, "map<string, string> headers = 6;")),
            ("template", lambda r: "-msg-template" in r, self.template),
            ("error", lambda r: '"topic": ""' in r, self.error),
            ("publish", lambda r: r.endswith("PublishService/Publish"), self.publish),
            ("publish batch", lambda r: "PublishService/PublishBatch" in r, self.publish_batch),
            ("publish stream", lambda r: "PublishService/PublishStream" in r, self.publish_stream),
            ("subscribe", lambda r: "SubscribeService/Subscribe" in r, self.subscribe),
            ("cluster", lambda r: "ClusterService/GetClusterStatus" in r, self.cluster),
            ("health", lambda r: "Health/Check" in r, self.health),
        ]

    def succeed(self, command: str) -> str:
        result = run(command)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        return result.stdout

    def list_services(self, command: str) -> None:
        services = self.succeed(command).split()
        for name in ("eventstream.v1.PublishService", "eventstream.v1.SubscribeService",
                     "eventstream.v1.ClusterService", "grpc.health.v1.Health",
                     "grpc.reflection.v1alpha.ServerReflection"):
            assert name in services

    def list_methods(self, command: str) -> None:
        assert self.succeed(command).split() == ["eventstream.v1.PublishService.Publish",
                                                 "eventstream.v1.PublishService.PublishBatch",
                                                 "eventstream.v1.PublishService.PublishStream"]

    def describe(self, command: str, expected: str) -> None:
        assert expected in self.succeed(command)

    def template(self, command: str) -> None:
        template = json_messages(self.succeed(command).split("Message template:", 1)[1])[0]
        assert set(template["event"]) >= {"id", "topic", "key", "payload", "priority", "headers"}

    def publish(self, command: str) -> None:
        ack = json.loads(self.succeed(command))["ack"]
        assert ack["durability"] == "DURABILITY_FSYNCED" and ack["id"]  # the default: disk, fsync always
        self.published.append(ack["id"])

    def publish_batch(self, command: str) -> None:
        results = json.loads(self.succeed(command))["results"]
        assert [result["ack"]["partition"] for result in results].count(
            results[0]["ack"]["partition"]) == 2  # one key, one partition

    def publish_stream(self, command: str) -> None:
        responses = json_messages(self.succeed(command))
        assert [response["sequence"] for response in responses] == ["1", "2"]
        self.published += [response["results"][0]["ack"]["id"] for response in responses]

    def subscribe(self, command: str) -> None:
        assert self.published, "the README publishes before it subscribes"
        events = [event for message in json_messages(run_stream_until(command, self.published))
                  for event in message["events"]]
        by_id = {event["id"]: event for event in events}
        first = by_id[self.published[0]]
        assert (first["topic"], first["payload"], first["headers"]) == \
            ("sensors/a", "aGVsbG8=", {"unit": "C"})
        assert [by_id[event_id]["payload"] for event_id in self.published[1:]] == ["MQ==", "Mg=="]

    def error(self, command: str) -> None:
        result = run(command)
        assert result.returncode == 64 + 3, result  # grpcurl exits with 64 + INVALID_ARGUMENT
        assert "Code: InvalidArgument" in result.stderr
        assert '"reason": "TOPIC_EMPTY"' in result.stderr and "google.rpc.BadRequest" in result.stderr

    def cluster(self, command: str) -> None:
        assert json.loads(self.succeed(command))["role"] == "ROLE_LEADER"

    def health(self, command: str) -> None:
        assert json.loads(self.succeed(command))["status"] == "SERVING"


def test_readme_grpcurl_recipes_run_as_written(server: ServerProcess) -> None:
    checks = Checks(server)
    for recipe in readme_recipes():
        checks.check(recipe)
    assert checks.done >= {"list", "list methods", "describe service", "describe message",
                           "publish", "publish stream", "subscribe", "error"}, checks.done
