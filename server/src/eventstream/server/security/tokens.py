"""Bearer tokens: the tokens file (hashed at rest) and the constant-time check.

Pure: parses text given to it. One token per line, ``<identity> sha256:<hex>``,
where the hex is the SHA-256 of the token's UTF-8 bytes; ``#`` starts a
comment, blank lines are skipped, and an identity may have several tokens
(to rotate them without a gap). Tokens are random secrets, not passwords, so
one unsalted SHA-256 is enough to keep a stolen file from giving them away,
and costs a microsecond per call; a password hash would cost tens of
milliseconds on every call. Make one with::

    TOKEN=$(openssl rand -hex 32)
    echo "billing sha256:$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)" >> tokens
"""

from __future__ import annotations

import hashlib
import hmac
import re

from ..config.auth import IDENTITY_NAME

PREFIX = "sha256:"
_HEX = re.compile(r"[0-9a-f]{64}")
MAX_TOKEN_BYTES = 4096
"""Longest token looked at; longer ones are refused unread."""


class TokensError(ValueError):
    """The tokens file cannot be used; ``problems`` has one line per bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Tokens:
    """The hashed tokens of a tokens file, checked in constant time.

    Args:
        entries: (identity, SHA-256 digest) pairs.
    """

    def __init__(self, entries: list[tuple[str, bytes]]) -> None:
        self._entries = entries

    def __len__(self) -> int:
        """The number of tokens."""
        return len(self._entries)

    def identity_of(self, token: str | bytes) -> str | None:
        """The identity a token belongs to, or None.

        Every entry is compared, each with :func:`hmac.compare_digest`, so the
        time taken says nothing about which entry, if any, was close.
        """
        raw = token.encode() if isinstance(token, str) else token
        if not raw or len(raw) > MAX_TOKEN_BYTES:
            return None
        digest = hashlib.sha256(raw).digest()
        found = None
        for identity, expected in self._entries:
            if hmac.compare_digest(digest, expected) and found is None:
                found = identity
        return found


def parse_tokens(text: str, source: str) -> Tokens:
    """Read a tokens file's text (``source`` names it in problems).

    Raises:
        TokensError: every bad line, with its number; nothing is taken then.
    """
    entries: list[tuple[str, bytes]] = []
    problems = []
    seen: dict[bytes, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        parts = content.split()
        where = f"{source}:{number}"
        if len(parts) != 2:
            problems.append(f"{where}: expected '<identity> sha256:<64 hex digits>'")
            continue
        identity, hashed = parts
        if not IDENTITY_NAME.fullmatch(identity):
            problems.append(f"{where}: {identity!r} is not an identity name (1 to 128 letters, "
                            "digits, '.', '_', '@' or '-')")
            continue
        hex_digest = hashed[len(PREFIX):].lower()
        if not hashed.startswith(PREFIX) or not _HEX.fullmatch(hex_digest):
            problems.append(f"{where}: the hash must be 'sha256:' and 64 hex digits (the "
                            "SHA-256 of the token), never the token itself")
            continue
        digest = bytes.fromhex(hex_digest)
        if digest in seen:
            problems.append(f"{where}: the same token as line {seen[digest]}")
            continue
        seen[digest] = number
        entries.append((identity, digest))
    if problems:
        raise TokensError(problems)
    return Tokens(entries)


__all__ = ["MAX_TOKEN_BYTES", "Tokens", "TokensError", "parse_tokens"]
