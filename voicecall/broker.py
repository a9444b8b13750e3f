"""The Dramatiq broker of the workers: Redis, on ``REDIS_URL`` (RabbitMQ, and a broker on
another Redis, are refused by the settings: the job store writes messages in its own Redis).

Producers and the API need no broker: the job store writes each job's messages itself, in the
same Lua step as the job (voicecall.lifecycle), in the Redis broker's own layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from voicecall import keys
from voicecall.settings import Settings


def broker_url(settings: Settings) -> str:
    return settings.broker_url or settings.redis_url


def make_broker(
    settings: Settings, middleware: Sequence[Middleware] | None = None
) -> dramatiq.Broker:
    """A Redis broker for ``settings``; ``middleware`` None keeps Dramatiq's defaults."""
    chosen = list(middleware) if middleware is not None else None
    return RedisBroker(
        url=broker_url(settings), middleware=chosen, namespace=keys.DRAMATIQ_NAMESPACE
    )
