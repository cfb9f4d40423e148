"""Relations between topic patterns: does one cover another, can two match one topic.

Pure: no I/O. Patterns are those of subscriptions (:mod:`..broker.topics`):
``/``-separated non-empty levels, ``*`` for exactly one level, ``#`` as the
last level for any number of remaining levels, even none (``orders/#``
matches ``orders``). A topic has at least one level, so ``#`` means the same
as ``*/#``; both functions rewrite it so before comparing.

Authorization uses them to decide a subscription's patterns as a whole: a
subscription may read a pattern only when one allow pattern covers it and
no deny pattern intersects it, so it is refused rather than silently given
less than it asked for.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4096)
def _split(pattern: str) -> tuple[tuple[str, ...], bool]:
    """(levels before a final ``#``, whether it ends in ``#``); ``#`` alone becomes ``*/#``."""
    levels = tuple(pattern.split("/"))
    rest = levels[-1] == "#"
    if rest:
        levels = levels[:-1] or ("*",)
    return levels, rest


def _compatible(a: str, b: str) -> bool:
    """Some level matches both pattern levels ``a`` and ``b``."""
    return a == "*" or b == "*" or a == b


def covers(outer: str, inner: str) -> bool:
    """True when every topic that matches ``inner`` also matches ``outer``.

    Both must be valid patterns (see :func:`..broker.topics.pattern_problem`).
    """
    outer_levels, outer_rest = _split(outer)
    inner_levels, inner_rest = _split(inner)
    if outer_rest:
        # outer matches any topic of at least len(outer_levels) levels with
        # that prefix: inner's shortest topics must be that long already.
        if len(inner_levels) < len(outer_levels):
            return False
    elif inner_rest or len(inner_levels) != len(outer_levels):
        return False
    return all(want == "*" or want == level != "*"
               for want, level in zip(outer_levels, inner_levels))


def intersects(first: str, second: str) -> bool:
    """True when some topic matches both patterns (valid ones)."""
    first_levels, first_rest = _split(first)
    second_levels, second_rest = _split(second)
    if not first_rest and not second_rest and len(first_levels) != len(second_levels):
        return False
    if not first_rest and len(first_levels) < len(second_levels):
        return False   # first is too short for second's fixed prefix
    if not second_rest and len(second_levels) < len(first_levels):
        return False
    return all(_compatible(a, b) for a, b in zip(first_levels, second_levels))


__all__ = ["covers", "intersects"]
