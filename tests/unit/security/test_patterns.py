"""Pattern containment and intersection against a brute-force search over topics.

The search is complete for these patterns: a topic that tells two patterns
apart can be rewritten to use only their literal levels plus one fresh
level, and to be at most one level longer than the longer pattern.
"""

from itertools import product

from hypothesis import given, settings
from hypothesis import strategies as st

from eventstream.server.broker.topics import TopicFilter
from eventstream.server.security.patterns import covers, intersects

FRESH = "fresh"


@st.composite
def patterns(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.sampled_from(["a", "b", "*"]), min_size=0, max_size=4))
    if not levels or draw(st.booleans()):
        levels.append("#")
    return "/".join(levels)


def topics_for(*pats: str) -> list[str]:
    literals = sorted({level for pat in pats for level in pat.split("/")} - {"*", "#"} | {FRESH})
    longest = max(len(pat.split("/")) for pat in pats) + 1
    return ["/".join(levels) for length in range(1, longest + 1)
            for levels in product(literals, repeat=length)]


def matches(pattern: str, topic: str) -> bool:
    return TopicFilter([pattern]).matches(topic)


def brute_covers(outer: str, inner: str) -> bool:
    return all(matches(outer, t) for t in topics_for(outer, inner) if matches(inner, t))


def brute_intersects(first: str, second: str) -> bool:
    return any(matches(first, t) and matches(second, t) for t in topics_for(first, second))


@settings(max_examples=400)
@given(patterns(), patterns())
def test_covers_agrees_with_the_search(outer, inner):
    assert covers(outer, inner) == brute_covers(outer, inner), (outer, inner)


@settings(max_examples=400)
@given(patterns(), patterns())
def test_intersects_agrees_with_the_search_and_is_symmetric(first, second):
    assert intersects(first, second) == brute_intersects(first, second), (first, second)
    assert intersects(first, second) == intersects(second, first)


@given(patterns(), patterns(), patterns())
def test_covers_is_a_preorder_and_implies_intersection(a, b, c):
    assert covers(a, a)
    if covers(a, b) and covers(b, c):
        assert covers(a, c)
    if covers(a, b):
        assert intersects(a, b)


def test_examples():
    assert covers("#", "orders/#") and covers("*/#", "#") and covers("#", "*/#")
    assert covers("orders/#", "orders") and covers("orders/#", "orders/*/x")
    assert not covers("orders/*", "orders/#") and not covers("orders/*/#", "orders/#")
    assert not covers("orders/a", "orders/*") and covers("orders/*", "orders/a")
    assert intersects("orders/#", "*/secret") and not intersects("orders/*", "orders/a/b")
    assert intersects("a/#", "a") and not intersects("a/b", "a/c")
