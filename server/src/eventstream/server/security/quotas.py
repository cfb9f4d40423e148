"""Per-identity quotas: publish rates (token buckets) and open streams and subscriptions.

Pure: time comes in as an argument (seconds of a monotonic clock). One
:class:`QuotaState` per identity lives as long as the process, so a reload
of the rules changes its limits without refilling or emptying its buckets.

A bucket holds ``rate * burst_seconds`` tokens and refills at ``rate`` per
second. A request is let through when the bucket holds what it costs (or,
for a request larger than the whole bucket, when the bucket is full) and
then takes its cost, going into debt if it must; otherwise it is refused
with the time until it would fit, which the client is told to wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import QuotasConfig


class TokenBucket:
    """A token bucket (see the module docstring).

    Args:
        rate: tokens per second (> 0).
        burst_seconds: the bucket holds this many seconds of ``rate``.
        now: the current time.
    """

    def __init__(self, rate: float, burst_seconds: float, now: float) -> None:
        self.rate = rate
        self.capacity = rate * burst_seconds
        self.tokens = self.capacity
        self._last = now

    def resize(self, rate: float, burst_seconds: float) -> None:
        """New limits; the tokens held stay (at most the new size)."""
        self.rate = rate
        self.capacity = rate * burst_seconds
        self.tokens = min(self.tokens, self.capacity)

    def wait(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` may be taken (0: now); refills first."""
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
        self._last = now
        need = min(amount, self.capacity)
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.rate

    def take(self, amount: float) -> None:
        """Take ``amount`` (after :meth:`wait` said 0); may leave the bucket in debt."""
        self.tokens -= amount

    def charge(self, amount: float, now: float) -> float:
        """Take ``amount`` whatever the bucket holds; seconds until it is out of debt."""
        self.wait(0, now)
        self.tokens -= amount
        return max(0.0, -self.tokens / self.rate)


@dataclass(frozen=True, slots=True)
class Exceeded:
    """A quota that refused something."""

    quota: str
    """Its name as in the config and the metric label, e.g. ``publish_events_per_second``."""
    limit: float
    retry_after: float
    """Seconds to wait before trying again."""


CONCURRENCY_RETRY_SECONDS = 1.0
"""The retry hint when a stream or subscription limit is reached (no rate says when)."""


class QuotaState:
    """One identity's buckets and counts of open calls.

    Args:
        limits: its quotas.
        now: the current time.
    """

    def __init__(self, limits: QuotasConfig, now: float) -> None:
        self.limits = limits
        self._events: TokenBucket | None = None
        self._bytes: TokenBucket | None = None
        self.streams = 0
        """PublishStream calls open."""
        self.subscriptions = 0
        """Subscribe and Consume calls open."""
        self.update(limits, now)

    def update(self, limits: QuotasConfig, now: float) -> None:
        """Take new limits (a reload); buckets keep their tokens."""
        self.limits = limits
        self._events = _bucket(self._events, limits.publish_events_per_second,
                               limits.burst_seconds, now)
        self._bytes = _bucket(self._bytes, limits.publish_bytes_per_second,
                              limits.burst_seconds, now)

    @property
    def limits_publish(self) -> bool:
        """Whether a publish rate is limited at all."""
        return self._events is not None or self._bytes is not None

    def take_publish(self, events: int, size: int, now: float) -> Exceeded | None:
        """Take ``events`` and ``size`` bytes from the rates, both or neither.

        Returns:
            None when taken, else the quota that refused and how long to wait.
        """
        waits = []
        if self._events is not None:
            waits.append((self._events.wait(events, now), "publish_events_per_second",
                          self._events.rate))
        if self._bytes is not None:
            waits.append((self._bytes.wait(size, now), "publish_bytes_per_second",
                          self._bytes.rate))
        worst = max(waits, default=None)
        if worst is not None and worst[0] > 0:
            return Exceeded(worst[1], worst[2], worst[0])
        if self._events is not None:
            self._events.take(events)
        if self._bytes is not None:
            self._bytes.take(size)
        return None

    def charge_publish(self, events: int, size: int, now: float) -> Exceeded | None:
        """Charge what was already let in (TCP); the quota to pause for, if in debt.

        Returns:
            None when both rates have room left, else the one deepest in debt
            and how long until it is even.
        """
        waits = []
        if self._events is not None:
            waits.append((self._events.charge(events, now), "publish_events_per_second",
                          self._events.rate))
        if self._bytes is not None:
            waits.append((self._bytes.charge(size, now), "publish_bytes_per_second",
                          self._bytes.rate))
        worst = max(waits, default=None)
        if worst is None or worst[0] <= 0:
            return None
        return Exceeded(worst[1], worst[2], worst[0])

    def open_stream(self) -> Exceeded | None:
        """Count a PublishStream opening, unless ``max_publish_streams`` are open."""
        limit = self.limits.max_publish_streams
        if limit and self.streams >= limit:
            return Exceeded("max_publish_streams", limit, CONCURRENCY_RETRY_SECONDS)
        self.streams += 1
        return None

    def close_stream(self) -> None:
        """A PublishStream ended."""
        self.streams -= 1

    def open_subscription(self) -> Exceeded | None:
        """Count a subscription opening, unless ``max_subscriptions`` are open."""
        limit = self.limits.max_subscriptions
        if limit and self.subscriptions >= limit:
            return Exceeded("max_subscriptions", limit, CONCURRENCY_RETRY_SECONDS)
        self.subscriptions += 1
        return None

    def close_subscription(self) -> None:
        """A subscription ended."""
        self.subscriptions -= 1


def _bucket(bucket: TokenBucket | None, rate: float, burst_seconds: float,
            now: float) -> TokenBucket | None:
    if not rate:
        return None
    if bucket is None:
        return TokenBucket(rate, burst_seconds, now)
    bucket.resize(rate, burst_seconds)
    return bucket


__all__ = ["CONCURRENCY_RETRY_SECONDS", "Exceeded", "QuotaState", "TokenBucket"]
