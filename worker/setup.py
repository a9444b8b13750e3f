"""The worker's broker and middleware, set up explicitly (not Dramatiq's defaults).

- Retries: only for a Redis hiccup while an actor hands its job over (the actors do nothing
  else). Send attempts are retried by the send step itself, through the due set (decision 3).
- No AgeLimit: it counts from the first enqueue and would dead-letter a scheduled job; the
  OTP time to live is the job's own ``expires_at``, checked by the claim.
- TimeLimit, ShutdownNotifications, CurrentMessage, Prometheus (added exactly once; its
  multiprocess directory is emptied by ``voicecall worker`` at start), LogContext, a stop signal
  that comes twice kept graceful (RepeatedStopSignal), the send engine, and the scheduler thread (after the engine: it shares the engine's store).
"""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import CurrentMessage, Retries, ShutdownNotifications, TimeLimit
from dramatiq.middleware.prometheus import Prometheus

from voicecall.config.settings import Settings
from voicecall.store.connection import UNAVAILABLE
from worker.broker import make_broker
from worker.middleware import (
    EngineMiddleware,
    LogContext,
    RepeatedStopSignal,
    SchedulerMiddleware,
)

HANDOFF_RETRIES = 10


def retryable(exception: BaseException) -> bool:
    """Worth another delivery: Redis was unreachable while the job was handed over."""
    return isinstance(exception, (dramatiq.Retry, *UNAVAILABLE))


def retry_when(retries: int, exception: BaseException) -> bool:
    return retries < HANDOFF_RETRIES and retryable(exception)


def build_broker(settings: Settings) -> dramatiq.Broker:
    middleware: list[dramatiq.Middleware] = [
        TimeLimit(time_limit=settings.send_time_limit_s * 1000),
        ShutdownNotifications(),
        Retries(
            max_retries=HANDOFF_RETRIES,
            min_backoff=500,
            max_backoff=30_000,
            retry_when=retry_when,
        ),
        CurrentMessage(),
        Prometheus(),
        LogContext(),
        RepeatedStopSignal(),
    ]
    # The engine starts before the worker threads (before_worker_boot) and stops after them
    # and after the scheduler (after_* hooks run last to first).
    if settings.scheduler_in_worker:
        middleware.append(SchedulerMiddleware(settings))
    middleware.append(EngineMiddleware(settings))
    broker = make_broker(settings, middleware=middleware)
    dramatiq.set_broker(broker)
    return broker
