"""Topic validation and pattern matching.

Pure. A topic is ``/``-separated levels of UTF-8 text. A pattern may use
``*`` for exactly one level and ``#`` as its last level for any number of
remaining levels, even none (``orders/#`` matches ``orders``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import EventStreamError, invalid


def topic_problem(topic: str, max_bytes: int) -> tuple[str, str] | None:
    """Return (reason, problem) when ``topic`` may not be published to, else None."""
    if not topic:
        return "TOPIC_EMPTY", "must not be empty"
    if "*" in topic or "#" in topic:
        return "TOPIC_WILDCARD", f"wildcards ('*', '#') are for subscriptions only, got {topic!r}"
    if topic.startswith("/") or topic.endswith("/") or "//" in topic:
        return "TOPIC_EMPTY_LEVEL", f"levels must not be empty, got {topic!r}"
    if len(topic) > max_bytes // 4 and len(topic.encode()) > max_bytes:
        return "TOPIC_TOO_LONG", f"longer than {max_bytes} bytes"
    return None


def check_topic(topic: str, max_bytes: int, field: str = "topic") -> None:
    """Raise INVALID_ARGUMENT naming ``field`` when the topic is not publishable."""
    problem = topic_problem(topic, max_bytes)
    if problem is not None:
        raise invalid(problem[0], field, problem[1])


def _pattern_regex(pattern: str) -> str:
    levels = pattern.split("/")
    parts = []
    for index, level in enumerate(levels):
        last = index == len(levels) - 1
        if level == "#" and last:
            # '#' also matches zero levels: 'a/#' matches 'a'.
            return ("/".join(parts) + "(?:/.*)?" if parts else ".*")
        if level == "*":
            parts.append("[^/]+")
        else:
            parts.append(re.escape(level))
    return "/".join(parts)


def pattern_problem(pattern: str) -> str | None:
    """Describe what is wrong with a subscription pattern, or None."""
    if not pattern:
        return "must not be empty"
    levels = pattern.split("/")
    for index, level in enumerate(levels):
        if level == "":
            return f"levels must not be empty, got {pattern!r}"
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return f"'#' must be a whole level and the last one, got {pattern!r}"
        if "*" in level and level != "*":
            return f"'*' must be a whole level, got {pattern!r}"
    return None


class TopicFilter:
    """Matches topics against a set of patterns, remembering answers per topic.

    Args:
        patterns: validated patterns; raises INVALID_ARGUMENT for a bad one.
        field: request field named in errors.
    """

    _CACHE_LIMIT = 65536

    def __init__(self, patterns: Iterable[str], field: str = "patterns") -> None:
        regexes = []
        for index, pattern in enumerate(patterns):
            problem = pattern_problem(pattern)
            if problem is not None:
                raise invalid("PATTERN_INVALID", f"{field}[{index}]", problem)
            regexes.append(_pattern_regex(pattern))
        if not regexes:
            raise EventStreamError("PATTERNS_MISSING", f"{field}: at least one pattern is required",
                                   field=field)
        self.match_all = ".*" in regexes
        self._regex = re.compile("|".join(f"(?:{r})" for r in regexes))
        self._cache: dict[str, bool] = {}

    def matches(self, topic: str) -> bool:
        """True when ``topic`` matches any of the patterns."""
        if self.match_all:
            return True
        hit = self._cache.get(topic)
        if hit is None:
            hit = self._regex.fullmatch(topic) is not None
            if len(self._cache) >= self._CACHE_LIMIT:
                self._cache.clear()
            self._cache[topic] = hit
        return hit
