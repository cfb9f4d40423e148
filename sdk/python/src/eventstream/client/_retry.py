"""When and how long to wait before retrying a call.

Pure apart from the clock: the random source and the clock are arguments.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ._errors import EventStreamError

DEFAULT_DEADLINE = 30.0
"""Seconds a run of failed attempts may last by default: a restart (a second or
two) or a leader failover (a few seconds) fits well inside it."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with capped, jittered exponential backoff, on retryable codes only.

    Only UNAVAILABLE and RESOURCE_EXHAUSTED are retried; INVALID_ARGUMENT and
    every other code fail at once. The wait before retry ``n`` (1-based) is
    drawn uniformly from ``[0, min(max_backoff, initial_backoff *
    multiplier ** (n - 1))]`` ("full jitter", so many clients do not retry in
    step), and is never shorter than the server's retry hint when it sent one.

    The budget is a time: retries go on while a run of failed attempts has
    lasted less than ``deadline`` seconds (counted from the run's first
    failure), and, when ``max_attempts`` is set, for at most that many
    attempts. A unary call never retries past its own timeout either. A
    subscription or a consumer-group member starts a new run whenever its
    stream is accepted again, so it rides out any number of restarts that are
    each shorter than ``deadline``.

    Publishing is safe to retry: every event carries an id (the SDK fills a
    random one when you give none) and the server acknowledges an id it has
    already stored with the first offset instead of storing it again.

    Attributes:
        max_attempts: attempts in a run, the first included (1 disables
            retries); None for no count limit (the default: ``deadline`` bounds it).
        initial_backoff: seconds; upper bound of the first wait.
        max_backoff: seconds; the bound never grows past this.
        multiplier: growth of the bound per attempt.
        deadline: seconds a run of failed attempts may last (default 30);
            None for no time limit (a unary call still stops at its timeout).

    Example:
        >>> RetryPolicy(deadline=120.0).deadline    # a subscriber that waits out longer outages
        120.0
        >>> RetryPolicy(max_attempts=3).max_attempts
        3
    """

    max_attempts: int | None = None
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    multiplier: float = 2.0
    deadline: float | None = DEFAULT_DEADLINE

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts: must be at least 1 (or None)")
        if self.deadline is not None and self.deadline < 0:
            raise ValueError("deadline: must be >= 0 seconds (or None)")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and multiplier >= 1")

    def delay(self, error: EventStreamError, attempt: int,
              rng: random.Random | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up.

        The deadline is not looked at here (see :class:`RetryBudget`).

        Args:
            error: what attempt ``attempt`` (1-based) failed with.
            attempt: the number of attempts made so far.
            rng: random source (the ``random`` module's when None).
        """
        if not error.retryable or (self.max_attempts is not None
                                   and attempt >= self.max_attempts):
            return None
        bound = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        wait = (rng or random).uniform(0, bound)
        if error.retry_delay is not None:
            wait = max(wait, error.retry_delay)
        return wait


NO_RETRY = RetryPolicy(max_attempts=1)
"""A policy that never retries."""


class RetryBudget:
    """The attempts and the deadlines of one call, or one stream's run of failures.

    Args:
        policy: the policy.
        timeout: seconds for the whole call, retries and waits included; None
            for no deadline (a stream that reconnects).
        clock: monotonic clock in seconds.
    """

    def __init__(self, policy: RetryPolicy, timeout: float | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._call_deadline = None if timeout is None else clock() + timeout
        self._run_deadline: float | None = None
        self.attempts = 0

    def remaining(self) -> float | None:
        """Seconds left for the next attempt (None: no deadline); counts the attempt."""
        self.attempts += 1
        if self._call_deadline is None:
            return None
        return max(0.0, self._call_deadline - self._clock())

    def wait_after(self, error: EventStreamError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up with ``error``."""
        now = self._clock()
        if self._run_deadline is None and self._policy.deadline is not None:
            self._run_deadline = now + self._policy.deadline  # the run's first failure
        wait = self._policy.delay(error, self.attempts)
        if wait is None:
            return None
        for deadline in (self._call_deadline, self._run_deadline):
            if deadline is not None and now + wait >= deadline:
                return None
        return wait

    def reset(self) -> None:
        """End the run of failures (the stream was accepted or made progress)."""
        self.attempts = 0
        self._run_deadline = None
