"""Taking changed certificates, rules and tokens without a restart.

One task, owned by :class:`SecurityReload` (``start``/``stop``), polls:

- the certificate files of each :class:`CertificateWatch` at its interval
  (:meth:`.tls.ServerTls.reload`): the public ports' every
  ``tls.reload_interval_seconds``, the cluster port's every
  ``cluster.tls.reload_interval_seconds`` (its transport is then told, to
  move its outbound channels to the new certificate);
- the config file and the tokens file every ``auth.reload_interval_seconds``:
  when either changed, the whole configuration is loaded and validated again,
  and its ``auth`` section and the tokens go into force at once
  (:meth:`.access.AccessControl.replace`). A file with a problem changes
  nothing: the rules in force stay, and the problems are logged. Other
  sections of the file are not applied (they need a restart), nor is a change
  of ``auth.enabled``.

Reads are small and done on the event loop; the polls are seconds apart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..config.model import Config
from ..observability.metrics import Metrics
from ..tasks import cancel_and_wait
from .access import AccessControl
from .tls import ServerTls, file_signature
from .tokens import Tokens, TokensError, parse_tokens

log = logging.getLogger(__name__)


def read_tokens(path: str) -> Tokens:
    """The tokens of a tokens file ("" means none).

    Raises:
        TokensError: the file cannot be read, or a line is bad (each named).
    """
    if not path:
        return Tokens([])
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise TokensError([f"{path}: cannot read the tokens file: {error}"]) from None
    return parse_tokens(text, path)


@dataclass(frozen=True)
class CertificateWatch:
    """Certificate files polled for changes.

    Attributes:
        listener: the ``listener`` label of ``eventstream_tls_reloads_total``
            (``public``, ``cluster``).
        tls: the certificate in use.
        interval: seconds between checks.
        on_change: called after a new set was taken (None: nothing to do,
            the listener asks ``tls`` on every new connection).
    """

    listener: str
    tls: ServerTls
    interval: float
    on_change: Callable[[], None] | None = None


class SecurityReload:
    """Polls the security files and applies what changed (see the module docstring).

    Args:
        config: the configuration the node started with.
        config_file: the file it came from (None: nothing to watch but the tokens).
        reload_config: loads the configuration again, as at start.
        access: where new rules go.
        certificates: the listeners' certificates (none without TLS).
        metrics: where reloads are counted.
    """

    def __init__(self, config: Config, config_file: str | None,
                 reload_config: Callable[[], Config] | None, access: AccessControl,
                 certificates: Sequence[CertificateWatch], metrics: Metrics) -> None:
        self._config = config
        self._config_file = config_file
        self._reload_config = reload_config
        self._access = access
        self._certificates = tuple(certificates)
        self._metrics = metrics
        self._tokens_file = config.auth.tokens_file
        self._watched = self._auth_signature()
        self._task: asyncio.Task[None] | None = None

    def _auth_paths(self) -> list[str]:
        return [path for path in (self._config_file, self._tokens_file) if path]

    def _auth_signature(self) -> tuple[tuple[int, int, int, int], ...]:
        return file_signature(self._auth_paths())

    def start(self) -> None:
        """Start polling (nothing to do without TLS or authentication)."""
        if self._certificates or self._access.enabled:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="security-reload")

    async def stop(self) -> None:
        """Stop polling."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        auth_every = self._config.auth.reload_interval_seconds
        next_auth = loop.time()
        next_tls = [next_auth] * len(self._certificates)
        while True:
            now = loop.time()
            wakes = []
            for number, watch in enumerate(self._certificates):
                if now >= next_tls[number]:
                    next_tls[number] = now + watch.interval
                    self.check_tls(watch)
                wakes.append(next_tls[number])
            if self._access.enabled:
                if now >= next_auth:
                    next_auth = now + auth_every
                    self.check_auth()
                wakes.append(next_auth)
            await asyncio.sleep(max(min(wakes) - loop.time(), 0.0))

    def check_tls(self, watch: CertificateWatch) -> None:
        """Take ``watch``'s changed certificate files, if any."""
        tls = watch.tls
        failed = tls.failed_reloads
        if tls.reload():
            if watch.on_change is not None:
                watch.on_change()
            self._metrics.tls_reloads.add(1, {"listener": watch.listener, "result": "ok"})
        elif tls.failed_reloads != failed:
            self._metrics.tls_reloads.add(1, {"listener": watch.listener, "result": "error"})

    def check_auth(self) -> None:
        """Apply a changed config file's ``auth`` section and tokens file, if any."""
        signature = self._auth_signature()
        if signature == self._watched:
            return
        self._watched = signature
        if self._reload_config is None:
            return
        try:
            config = self._reload_config()
            tokens = read_tokens(config.auth.tokens_file)
        except (ConfigError, TokensError) as error:
            self._metrics.auth_reloads.add(1, {"result": "error"})
            log.error("auth: the changed files are not used, the rules in force stay: %s",
                      "; ".join(error.problems))
            return
        if config.auth.enabled != self._access.enabled:
            log.warning("auth: auth.enabled changed in the file; that takes a restart "
                        "(the rules are applied)")
        self._access.replace(config.auth, tokens)
        if config.auth.tokens_file != self._tokens_file:
            self._tokens_file = config.auth.tokens_file
            self._watched = self._auth_signature()
        self._metrics.auth_reloads.add(1, {"result": "ok"})
        log.info("auth: new rules in force: %d identities, %d tokens",
                 len(config.auth.identities), len(tokens))


__all__ = ["CertificateWatch", "SecurityReload", "read_tokens"]
