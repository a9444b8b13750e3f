"""The worker's broker and middleware, set up explicitly (not Dramatiq's defaults).

- Retries: ``SEND_MAX_RETRIES`` with jittered exponential backoff, only for retryable errors
  (:func:`retry_when`); Dramatiq's default is 20 retries up to 7 days.
- No AgeLimit: it counts from the first enqueue and would dead-letter a scheduled job; the
  OTP time to live is the job's own ``expires_at``, checked by the send step.
- TimeLimit, ShutdownNotifications, CurrentMessage, Prometheus (added exactly once; its
  multiprocess directory is emptied by ``voicecall worker`` at start), LogContext, a stop
  signal that comes twice kept graceful (RepeatedStopSignal), and the scheduler thread.
"""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
from dramatiq.middleware import CurrentMessage, Retries, ShutdownNotifications, TimeLimit
from dramatiq.middleware.prometheus import Prometheus

from voicecall.broker import make_broker
from voicecall.settings import Settings
from worker.middleware import LogContext, RepeatedStopSignal, SchedulerMiddleware


def retryable(exception: BaseException) -> bool:
    """Exceptions worth another attempt: eSMS/transport trouble, Redis hiccups, webhooks."""
    import redis

    from worker.esms import RetryableError
    from worker.webhook import WebhookFailed

    return isinstance(
        exception,
        dramatiq.Retry
        | RetryableError
        | WebhookFailed
        | redis.ConnectionError
        | redis.TimeoutError,
    )


def make_retry_when(max_retries: int) -> Callable[[int, BaseException], bool]:
    def retry_when(retries: int, exception: BaseException) -> bool:
        return retries < max_retries and retryable(exception)

    return retry_when


def build_broker(settings: Settings) -> dramatiq.Broker:
    middleware: list[dramatiq.Middleware] = [
        TimeLimit(time_limit=settings.send_time_limit_s * 1000),
        ShutdownNotifications(),
        Retries(
            max_retries=settings.send_max_retries,
            min_backoff=int(settings.send_retry_min_backoff_s * 1000),
            max_backoff=int(settings.send_retry_max_backoff_s * 1000),
            retry_when=make_retry_when(settings.send_max_retries),
        ),
        CurrentMessage(),
        Prometheus(),
        LogContext(),
        RepeatedStopSignal(),
    ]
    if settings.scheduler_in_worker:
        middleware.append(SchedulerMiddleware())
    broker = make_broker(settings, middleware=middleware)
    dramatiq.set_broker(broker)
    return broker
