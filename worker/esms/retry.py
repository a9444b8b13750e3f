"""Retries inside one attempt (decision 3), with tenacity.

Only :class:`TransportError` (timeouts, connection errors, HTTP 5xx, a non-JSON body) and
:class:`RateLimited` (HTTP 429, eSMS 160) are retried here: exponential backoff with full
jitter (``ESMS_BACKOFF_BASE_S`` doubling up to ``ESMS_BACKOFF_MAX_S``), at most
``ESMS_ATTEMPT_TRIES`` tries and ``ESMS_ATTEMPT_BUDGET_S`` seconds in all, waits included.
A ``Retry-After`` (read by :func:`voicecall.formats.retry_after.parse_retry_after`: ASCII delta-seconds
or an HTTP-date, at most a day; anything else is no hint and the backoff decides) is waited
exactly; when it (or any wait) would end past the budget, the
last error is re-raised at once so Dramatiq reschedules the attempt instead of a worker
thread sleeping. Permanent errors, invalid parameters and NotReady are never retried.

IMPORTANT: retrying a SEND request is safe only because every send carries the job's
RequestId, so eSMS answers 124 (duplicate) to a repeat of a request it already accepted
(e.g. one whose answer was lost to a read timeout) instead of placing a second call. Never
send without a RequestId, and never change it between tries.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_random_exponential

from voicecall.config.settings import Settings
from voicecall.telemetry.logs import get_logger
from voicecall.telemetry.metrics import ESMS_ATTEMPT_RETRIES
from worker.esms.errors import RateLimited, RetryableError, TransportError

T = TypeVar("T")
MIN_TRY_S = 0.1  # don't start a try with less budget left than this: it could only time out
_log = get_logger("worker.esms")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds of the retries inside one attempt."""

    tries: int
    budget_s: float
    base_s: float
    max_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            tries=settings.esms_attempt_tries,
            budget_s=settings.esms_attempt_budget_s,
            base_s=settings.esms_backoff_base_s,
            max_s=settings.esms_backoff_max_s,
        )


class _Wait(wait_base):
    """``Retry-After`` when eSMS gave one, else full-jitter exponential backoff."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._backoff = wait_random_exponential(multiplier=policy.base_s, max=policy.max_s)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after_s is not None:
            return max(0.0, error.retry_after_s)
        return float(self._backoff(state))


class _OutOfBudget(stop_base):
    """Stop when the next try would start with less than MIN_TRY_S of the budget left."""

    def __init__(self, deadline: float, clock: Callable[[], float]) -> None:
        self._deadline = deadline
        self._clock = clock

    def __call__(self, state: RetryCallState) -> bool:
        return self._clock() + state.upcoming_sleep + MIN_TRY_S > self._deadline


@functools.cache
def _log_retry(endpoint: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        reason = error.reason if isinstance(error, RetryableError) else "unknown"
        ESMS_ATTEMPT_RETRIES.labels(endpoint=endpoint, reason=reason).inc()
        _log.info(
            "esms_retry",
            endpoint=endpoint,
            attempt=state.attempt_number,
            reason=reason,
            wait_s=round(state.upcoming_sleep, 3),
        )

    return before_sleep


def _stop(policy: RetryPolicy, deadline: float, clock: Callable[[], float]) -> stop_base:
    return stop_after_attempt(policy.tries) | _OutOfBudget(deadline, clock)


def call_with_retries(
    fn: Callable[[float], T],
    *,
    endpoint: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``fn(seconds_left_in_budget)`` until it returns, retrying as described above."""
    deadline = clock() + policy.budget_s
    retrying = Retrying(
        retry=retry_if_exception_type((TransportError, RateLimited)),
        stop=_stop(policy, deadline, clock),
        wait=_Wait(policy),
        sleep=sleep,
        before_sleep=_log_retry(endpoint),
        reraise=True,
    )
    return retrying(lambda: fn(max(0.0, deadline - clock())))


async def call_with_retries_async(
    fn: Callable[[float], Awaitable[T]],
    *,
    endpoint: str,
    policy: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """The asyncio twin of :func:`call_with_retries` (waits never hold a thread)."""
    deadline = clock() + policy.budget_s
    retrying = AsyncRetrying(
        retry=retry_if_exception_type((TransportError, RateLimited)),
        stop=_stop(policy, deadline, clock),
        wait=_Wait(policy),
        before_sleep=_log_retry(endpoint),
        reraise=True,
    )

    async def attempt() -> T:
        return await fn(max(0.0, deadline - clock()))

    return await retrying(attempt)
