"""When and how long to wait before retrying a call.

Pure apart from the clock: the random source and the clock are arguments.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ._errors import EventStreamError


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with jittered exponential backoff, on retryable codes only.

    Only UNAVAILABLE and RESOURCE_EXHAUSTED are retried; INVALID_ARGUMENT and
    every other code fail at once. The wait before retry ``n`` (1-based) is
    drawn uniformly from ``[0, min(max_backoff, initial_backoff *
    multiplier ** (n - 1))]`` ("full jitter", so many clients do not retry in
    step), and is never shorter than the server's retry hint when it sent one.
    A call never waits past its own timeout.

    Publishing is safe to retry: every event carries an id (the SDK fills a
    random one when you give none) and the server acknowledges an id it has
    already stored with the first offset instead of storing it again.

    Attributes:
        max_attempts: attempts in total, the first included (1 disables retries).
        initial_backoff: seconds; upper bound of the first wait.
        max_backoff: seconds; the bound never grows past this.
        multiplier: growth of the bound per attempt.

    Example:
        >>> RetryPolicy(max_attempts=10, max_backoff=1.0).max_attempts
        10
    """

    max_attempts: int = 5
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts: must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and multiplier >= 1")

    def delay(self, error: EventStreamError, attempt: int,
              rng: random.Random | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up.

        Args:
            error: what attempt ``attempt`` (1-based) failed with.
            attempt: the number of attempts made so far.
            rng: random source (the ``random`` module's when None).
        """
        if not error.retryable or attempt >= self.max_attempts:
            return None
        bound = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        wait = (rng or random).uniform(0, bound)
        if error.retry_delay is not None:
            wait = max(wait, error.retry_delay)
        return wait


NO_RETRY = RetryPolicy(max_attempts=1)
"""A policy that never retries."""


class RetryBudget:
    """The attempts and the deadline of one call under a :class:`RetryPolicy`.

    Args:
        policy: the policy.
        timeout: seconds for the whole call, retries and waits included; None for no deadline.
        clock: monotonic clock in seconds.
    """

    def __init__(self, policy: RetryPolicy, timeout: float | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._deadline = None if timeout is None else clock() + timeout
        self.attempts = 0

    def remaining(self) -> float | None:
        """Seconds left for the next attempt (None: no deadline); counts the attempt."""
        self.attempts += 1
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._clock())

    def wait_after(self, error: EventStreamError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up with ``error``."""
        wait = self._policy.delay(error, self.attempts)
        if wait is None or (self._deadline is not None and self._clock() + wait >= self._deadline):
            return None
        return wait

    def reset(self) -> None:
        """Forget the failed attempts (a long-lived call made progress)."""
        self.attempts = 0
