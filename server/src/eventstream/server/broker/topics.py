"""Topic validation and pattern matching.

Pure. A topic is ``/``-separated levels of UTF-8 text. A pattern may use
``*`` for exactly one non-empty level and ``#`` as its last level for any
number of remaining levels, even none (``orders/#`` matches ``orders``).
"""

from __future__ import annotations

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


def pattern_problem(pattern: str, max_bytes: int | None = None) -> str | None:
    """Describe what is wrong with a subscription pattern, or None.

    Args:
        pattern: the pattern.
        max_bytes: its longest UTF-8 length (None: no bound). The longest
            topic is a sound bound: a longer pattern matches nothing a shorter
            one could not (``p/#`` with ``p`` that long matches only ``p``).
    """
    if not pattern:
        return "must not be empty"
    # The length first: nothing below walks a pattern longer than the bound.
    if max_bytes is not None and len(pattern) > max_bytes // 4 \
            and len(pattern.encode()) > max_bytes:
        return f"longer than {max_bytes} bytes (the longest topic)"
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

    Patterns without wildcards are looked up in a set; the others are kept
    as tuples of levels and compared level by level, so building a filter
    and matching a topic cost time linear in the patterns' lengths (no
    regular expression to compile).

    Args:
        patterns: the patterns; raises INVALID_ARGUMENT for a bad one.
        field: request field named in errors.
        max_bytes: longest pattern in UTF-8 bytes (None: no bound).
    """

    _CACHE_LIMIT = 65536

    def __init__(self, patterns: Iterable[str], field: str = "patterns",
                 max_bytes: int | None = None) -> None:
        self._exact: set[str] = set()
        # (levels before '#' or all levels, whether the pattern ends in '#')
        self._wildcards: list[tuple[tuple[str, ...], bool]] = []
        self.patterns: list[str] = []
        """The patterns, in the order given."""
        count = 0
        for index, pattern in enumerate(patterns):
            count += 1
            self.patterns.append(pattern)
            problem = pattern_problem(pattern, max_bytes)
            if problem is not None:
                raise invalid("PATTERN_INVALID", f"{field}[{index}]", problem)
            levels = pattern.split("/")
            rest = levels[-1] == "#"
            if rest:
                levels.pop()
            if rest or "*" in levels:
                self._wildcards.append((tuple(levels), rest))
            else:
                self._exact.add(pattern)
        if not count:
            raise EventStreamError("PATTERNS_MISSING", f"{field}: at least one pattern is required",
                                   field=field)
        self.match_all = ((), True) in self._wildcards
        self._cache: dict[str, bool] = {}

    def matches(self, topic: str) -> bool:
        """True when ``topic`` matches any of the patterns."""
        if self.match_all:
            return True
        hit = self._cache.get(topic)
        if hit is None:
            hit = topic in self._exact or self._match_wildcards(topic)
            if len(self._cache) >= self._CACHE_LIMIT:
                self._cache.clear()
            self._cache[topic] = hit
        return hit

    def _match_wildcards(self, topic: str) -> bool:
        if not self._wildcards:
            return False
        levels = topic.split("/")
        count = len(levels)
        for pattern, rest in self._wildcards:
            if count < len(pattern) or (count > len(pattern) and not rest):
                continue
            for want, level in zip(pattern, levels):
                if want != level and (want != "*" or not level):
                    break
            else:
                return True
        return False
