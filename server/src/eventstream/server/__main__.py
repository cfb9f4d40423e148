"""``eventstream-server``: load the configuration and run one node.

Exit codes: 0 after a clean shutdown, 1 when the drain timed out, start-up
failed or a storage error had halted writes, 2 for configuration errors (each
printed on its own line, naming the key and its source), for peers that
cannot be found with ``cluster.enabled`` (one line per problem, naming the
key), for a listener that
cannot listen (a port in use: one line per listener, naming the flag and key
that move it) and for a data directory that cannot be used (another format
version or partition count, a corrupt record, or a file operation of the start
that failed, such as on a full disk: one line naming the file, the error and
the free space).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import sys
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import DEFAULT_PATH, ConfigError, load_config
from .config.model import Config
from .listeners import ListenError, check_listeners

if TYPE_CHECKING:
    from .cluster.discovery import PeerDiscovery

# Flag -> config key, for the common overrides.
FLAG_KEYS = {
    "host": "server.host",
    "grpc_port": "server.grpc_port",
    "tcp_port": "server.tcp_port",
    "udp_port": "server.udp_port",
    "http_port": "metrics.port",
    "data_dir": "storage.data_dir",
    "node_id": "cluster.node_id",
    "log_level": "log.level",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="eventstream-server",
        description="Run an EventStream node. Settings come from the config file, then "
                    "EVENTSTREAM_<SECTION>__<KEY> environment variables, then these flags.")
    parser.add_argument("--config", metavar="FILE",
                        help=f"YAML config file (default {DEFAULT_PATH} when it exists, "
                             "else the embedded defaults)")
    parser.add_argument("--host", help="address to listen on (server.host)")
    parser.add_argument("--grpc-port", help="gRPC port (server.grpc_port)")
    parser.add_argument("--tcp-port", help="raw TCP port (server.tcp_port)")
    parser.add_argument("--udp-port", help="raw UDP port (server.udp_port)")
    parser.add_argument("--http-port", help="HTTP port for /health, /metrics, /status "
                                            "(metrics.port)")
    parser.add_argument("--data-dir", help="data directory (storage.data_dir)")
    parser.add_argument("--node-id", help="node id (cluster.node_id)")
    parser.add_argument("--log-level", help="debug, info, warning or error (log.level)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config key; may be repeated")
    parser.add_argument("--check-config", action="store_true",
                        help="load and validate the configuration, print it, and exit")
    parser.add_argument("--version", action="version", version=f"eventstream-server {__version__}")
    return parser.parse_args(argv)


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """Config overrides given on the command line."""
    overrides: dict[str, Any] = {}
    for setting in args.set:
        key, sep, value = setting.partition("=")
        if not sep:
            raise ConfigError([f"flag --set {setting!r}: expected SECTION.KEY=VALUE"])
        overrides[key.strip()] = value
    for attribute, key in FLAG_KEYS.items():
        value = getattr(args, attribute)
        if value is not None:
            overrides[key] = value
    return overrides


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = parse_args(argv)
    try:
        config = load_config(args.config, overrides=overrides_from(args))
    except ConfigError as error:
        for problem in error.problems:
            print(f"eventstream-server: config error: {problem}", file=sys.stderr)
        return 2
    if args.check_config:
        print(_describe(config))
        return 0
    config_file = args.config if args.config is not None else (
        DEFAULT_PATH if Path(DEFAULT_PATH).exists() else None)
    return run(config, config_file, functools.partial(load_config, args.config,
                                                      overrides=overrides_from(args)))


def run(config: Config, config_file: str | None = None,
        reload_config: Callable[[], Config] | None = None) -> int:
    """Run a node with ``config`` until it is told to stop.

    Args:
        config: the configuration.
        config_file: the file it came from (watched for new ``auth`` rules).
        reload_config: loads the configuration again, as it was loaded.
    """
    from .app import Node, Probes
    from .cluster.discovery import DiscoveryError, peer_discovery
    from .cluster.entry_raft_log import SnapshotRefused
    from .observability.logging import configure_logging
    from .security import TlsFileError, TokensError
    from .storage.failure import DataDirRefused
    from .storage.hard_state import HardStateRefused
    from .storage.segment import CorruptSegment

    try:
        check_listeners(config)  # before the data directory is opened
    except ListenError as error:
        return _cannot_listen(error)
    configure_logging(config.log.level, config.log.format, config.cluster.node_id)
    runner: Callable[[Coroutine[Any, Any, int]], int]
    if config.server.event_loop == "uvloop":
        import uvloop

        runner = uvloop.run
    else:
        runner = asyncio.run

    async def serve() -> int:
        node: Node | None = None
        peers = None

        async def moved(found: Mapping[str, str]) -> None:
            # A watching discovery (kubernetes) saw a member come back at a new address.
            if node is not None and node.member is not None:
                await node.member.set_peers(found)

        discovery: PeerDiscovery | None = None
        # /health/live answers from now on: discovery and recovery may take minutes.
        probes = Probes.of(config)
        try:
            await probes.start(config, "discovering" if config.cluster.enabled else "recovering")
        except ListenError as error:
            await probes.http.stop()
            return _cannot_listen(error)
        try:
            if config.cluster.enabled:
                discovery = peer_discovery(config.cluster)
                # The peers must be findable before the node starts (docs/cluster.md "Discovery").
                peers = await discovery.start(moved)
                await probes.health.set(False, "recovering")
            # Opening the log reads the data dir: off the event loop, so the probes answer.
            node = await asyncio.to_thread(Node, config, config_file, reload_config, peers=peers,
                                           probes=probes)
        except DiscoveryError as error:
            for problem in error.problems:
                print(f"eventstream-server: discovery error: {problem}", file=sys.stderr)
            return await _stopped(discovery, 2)
        except TlsFileError as error:
            print(f"eventstream-server: tls error: {error}", file=sys.stderr)
            return await _stopped(discovery, 2)
        except TokensError as error:
            for problem in error.problems:
                print(f"eventstream-server: auth error: {problem}", file=sys.stderr)
            return await _stopped(discovery, 2)
        except (DataDirRefused, CorruptSegment, HardStateRefused, SnapshotRefused) as error:
            # One line naming the file (and byte offset); docs/storage.md "Repairing a refused data
            # dir".
            print(f"eventstream-server: storage error: {error}", file=sys.stderr)
            return await _stopped(discovery, 2)
        finally:
            if node is None:
                await probes.http.stop()
        try:
            return await node.run()
        except ListenError as error:  # a port taken after the check
            return _cannot_listen(error)
        except DataDirRefused as error:  # the start's first writes failed
            print(f"eventstream-server: storage error: {error}", file=sys.stderr)
            return 2
        except OSError as error:
            logging.getLogger("eventstream.server").error("start-up failed: %s", error)
            await node.shutdown()
            return 1
        finally:
            await _stopped(discovery, 0)

    return runner(serve())


async def _stopped(discovery: PeerDiscovery | None, code: int) -> int:
    """Stop watching the peers (when a discovery runs); returns ``code``."""
    if discovery is not None:
        await discovery.stop()
    return code


def _cannot_listen(error: ListenError) -> int:
    for problem in error.problems:
        print(f"eventstream-server: cannot listen: {problem}", file=sys.stderr)
    return 2


def _describe(config: Config) -> str:
    import dataclasses

    import yaml

    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)


if __name__ == "__main__":
    sys.exit(main())
