"""Topic validation and pattern matching against a plain reference and libshardq's matcher."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstream.server.broker.topics import TopicFilter, pattern_problem, topic_problem
from eventstream.server.errors import EventStreamError
from eventstream.server.native import NativeWire


def reference_match(pattern: str, topic: str) -> bool:
    p, t = pattern.split("/"), topic.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(t) or (level != "*" and level != t[i]):
            return False
    return len(p) == len(t)


def test_examples():
    cases = {
        "sensors/*": {"sensors/a": True, "sensors/b/c": False, "sensors": False},
        "sensors/#": {"sensors/a": True, "sensors/b/c": True, "sensors": True, "sensorsx": False},
        "#": {"a": True, "a/b/c": True},
        "a/*/c": {"a/b/c": True, "a/b/d": False, "a/b/c/d": False},
    }
    for pattern, topics in cases.items():
        topic_filter = TopicFilter([pattern])
        for topic, expected in topics.items():
            assert topic_filter.matches(topic) is expected, (pattern, topic)


def test_publish_topics_are_checked():
    assert topic_problem("", 255)[0] == "TOPIC_EMPTY"
    assert topic_problem("a/*", 255)[0] == "TOPIC_WILDCARD"
    assert topic_problem("a//b", 255)[0] == "TOPIC_EMPTY_LEVEL"
    assert topic_problem("/a", 255)[0] == "TOPIC_EMPTY_LEVEL"
    assert topic_problem("é" * 200, 255)[0] == "TOPIC_TOO_LONG"
    assert topic_problem("ok/topic", 255) is None
    assert pattern_problem("a/#/b") and pattern_problem("a*") and pattern_problem("")


def test_patterns_are_bounded_by_the_longest_topic():
    assert pattern_problem("a" * 255, 255) is None
    assert "longer than 255 bytes" in pattern_problem("a" * 256, 255)
    assert "longer than 255 bytes" in pattern_problem("é" * 128, 255)   # 256 bytes
    assert pattern_problem("a" * 256) is None   # no bound given
    with pytest.raises(EventStreamError) as error:
        TopicFilter(["ok/#", "x/" * 200 + "#"], "start.patterns", 255)
    assert (error.value.reason, error.value.field) == ("PATTERN_INVALID", "start.patterns[1]")


def test_many_long_patterns_match_like_one_at_a_time():
    patterns = ["*/" * 127 + "#", "a/" * 127 + "b", "deep/#", "x/*/z"]
    together = TopicFilter(patterns, max_bytes=255)
    for topic in ["a/" * 127 + "b", "a/" * 128 + "b", "deep", "x/y/z", "q", "q/" * 127 + "q"]:
        alone = any(TopicFilter([p]).matches(topic) for p in patterns)
        assert together.matches(topic) == alone == any(reference_match(p, topic)
                                                       for p in patterns), topic


levels = st.sampled_from(["a", "b", "c.d", "ü"])
topics = st.lists(levels, min_size=1, max_size=5).map("/".join)
patterns = st.lists(st.sampled_from(["a", "b", "*", "ü"]), min_size=1, max_size=5).flatmap(
    lambda parts: st.sampled_from(["/".join(parts), "/".join([*parts, "#"]), "#"]))


@given(patterns, topics)
def test_filter_agrees_with_reference(pattern, topic):
    assert TopicFilter([pattern]).matches(topic) == reference_match(pattern, topic)


@given(st.lists(patterns, min_size=1, max_size=4), topics)
def test_filter_agrees_with_the_native_matcher(group, topic):
    wire = NativeWire()
    assert TopicFilter(group).matches(topic) == any(wire.topic_match(p, topic) for p in group)
