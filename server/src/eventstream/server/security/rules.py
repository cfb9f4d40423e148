"""What one identity may do: its topic rules, compiled for the publish and subscribe paths.

Pure apart from the native matcher it is given. A :class:`TopicRule` holds
the allow and deny patterns of one kind of access:

- a topic may be used when an allow pattern matches it and no deny pattern
  does; for publishing, a dead-letter topic (first level ``dead-letter``)
  needs an allow pattern that starts with ``dead-letter`` itself, so ``#``
  does not let anyone forge dead letters (the server writes them on its
  own, without these rules);
- a subscription pattern may be used when one allow pattern covers it and no
  deny pattern intersects it (:mod:`.patterns`): a subscription is granted
  whole or refused, never silently given less than it asked for.

Publishing checks a whole batch of accepted events at once (see
:meth:`TopicRule.verdicts`): with no rule that restricts topics it costs
nothing per event; otherwise one native pass per pattern over the batch's
topic spans, combined as bit masks, and an object per event only for
events refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..config.model import (
    ConsumePermissionConfig,
    IdentityConfig,
    PermissionConfig,
    QuotasConfig,
)
from ..native import Accepted, NativeWire
from .patterns import covers, intersects

DEAD_LETTER_LEVEL = "dead-letter"
DEAD_LETTERS = f"{DEAD_LETTER_LEVEL}/#"
_DEAD_LETTER_BYTES = DEAD_LETTER_LEVEL.encode()
_CACHE_LIMIT = 4096


class TopicRule:
    """Allow and deny patterns of one kind of access (see the module docstring).

    Args:
        allow: patterns that grant access.
        deny: patterns that take it back.
        dead_letters_guarded: publishing: dead-letter topics need an allow
            pattern of their own.
    """

    def __init__(self, allow: Iterable[str] = (), deny: Iterable[str] = (),
                 dead_letters_guarded: bool = False) -> None:
        self.allow = tuple(allow)
        self.deny = tuple(deny)
        self.dead_letter_allow = tuple(p for p in self.allow if p.split("/", 1)[0] == DEAD_LETTER_LEVEL) \
            if dead_letters_guarded else ()
        self._guarded = dead_letters_guarded
        self.everything = not self.deny and any(covers(p, "#") for p in self.allow)
        """Every topic is allowed (but dead letters, when guarded)."""
        self.dead_letters_open = not dead_letters_guarded or any(
            covers(p, DEAD_LETTERS) for p in self.dead_letter_allow)
        self._topics: dict[str, bool] = {}

    # ------------------------------------------------------------ topics

    def allows(self, topic: str) -> bool:
        """Whether one topic may be used (answers are remembered per topic)."""
        verdict = self._topics.get(topic)
        if verdict is None:
            verdict = self._decide(topic)
            if len(self._topics) >= _CACHE_LIMIT:
                self._topics.clear()
            self._topics[topic] = verdict
        return verdict

    def _decide(self, topic: str) -> bool:
        if not any(covers(p, topic) for p in self.allow):
            return False
        if any(covers(p, topic) for p in self.deny):
            return False
        if self._guarded and topic.split("/", 1)[0] == DEAD_LETTER_LEVEL:
            return any(covers(p, topic) for p in self.dead_letter_allow)
        return True

    def verdicts(self, accepted: Accepted, wire: NativeWire) -> bytes | None:
        """Which accepted events of a request may be published.

        Returns:
            None when all of them may (the common case); otherwise one byte
            per accepted event, in the order of :meth:`Accepted.good_events`:
            1 allowed, 0 refused.
        """
        count = accepted.good
        if not count:
            return None
        if self.everything and (self.dead_letters_open
                                or _DEAD_LETTER_BYTES not in accepted.bodies):
            return None   # no event can be refused: nothing is looked at per event
        if not self.allow:
            return bytes(count)
        spans = memoryview(accepted.topic_spans())
        bodies = accepted.bodies

        def matching(patterns: Iterable[str]) -> int:
            mask = 0
            for pattern in patterns:
                mask |= int.from_bytes(wire.topic_match_batch(pattern, bodies, spans), "little")
            return mask

        ones = int.from_bytes(b"\x01" * count, "little")
        allowed = (ones if self.everything else matching(self.allow)) & ~matching(self.deny)
        if not self.dead_letters_open:
            dead = matching((DEAD_LETTERS,))
            if dead:
                allowed &= ~(dead & ~matching(self.dead_letter_allow))
        if allowed == ones:
            return None
        return (allowed & ones).to_bytes(count, "little")

    # ------------------------------------------------------------ patterns

    def refusal(self, pattern: str) -> str | None:
        """Why a subscription pattern may not be read, or None when it may."""
        if not any(covers(p, pattern) for p in self.allow):
            granted = ", ".join(self.allow) or "none"
            return f"{pattern!r} is not within a pattern this identity may read (granted: {granted})"
        for denied in self.deny:
            if intersects(denied, pattern):
                return f"{pattern!r} overlaps {denied!r}, which this identity may not read"
        return None


def _group_allowed(patterns: tuple[str, ...], group: str) -> bool:
    for pattern in patterns:
        if pattern == group or pattern == "*" or (
                pattern.endswith("*") and group.startswith(pattern[:-1])):
            return True
    return False


@dataclass(frozen=True)
class IdentityRules:
    """Everything one identity may do."""

    name: str
    label: str
    """Its metric label: its name when it is configured, else ``other``."""
    publish: TopicRule
    subscribe: TopicRule
    consume: TopicRule
    groups: tuple[str, ...] = ()
    admin: bool = False
    quotas: QuotasConfig = field(default_factory=QuotasConfig)

    def may_join(self, group: str) -> bool:
        """Whether it may join consumer group ``group``."""
        return _group_allowed(self.groups, group)


OTHER = "other"
"""Metric label of identities that are not configured."""


def rules_of(identity: IdentityConfig, default_quotas: QuotasConfig) -> IdentityRules:
    """The compiled rules of a configured identity."""
    return IdentityRules(
        identity.name, identity.name, _rule(identity.publish, True), _rule(identity.subscribe),
        _rule(identity.consume), identity.consume.groups, identity.admin,
        identity.quotas or default_quotas)


def _rule(permission: PermissionConfig | ConsumePermissionConfig, publish: bool = False) -> TopicRule:
    return TopicRule(permission.allow, permission.deny, dead_letters_guarded=publish)


def unknown_rules(name: str) -> IdentityRules:
    """An authenticated identity without rules: it may do nothing."""
    return IdentityRules(name, OTHER, TopicRule(), TopicRule(), TopicRule())


def open_rules(name: str) -> IdentityRules:
    """Everything allowed, no quotas: every client while authentication is off."""
    everything = TopicRule(("#",))
    return IdentityRules(name, name, everything, everything, everything, ("*",), True)


__all__ = ["DEAD_LETTERS", "OTHER", "IdentityRules", "TopicRule", "open_rules", "rules_of",
           "unknown_rules"]
