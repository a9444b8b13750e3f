"""The Dramatiq broker, from settings: Redis, on ``BROKER_URL`` when set, else ``REDIS_URL``
(RabbitMQ is refused by the settings: see ``RABBITMQ_REFUSED``). Producers use it bare to
enqueue by name; workers add their middleware (see worker.setup).
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
    """A broker for ``settings``; ``middleware`` None keeps Dramatiq's defaults."""
    chosen = list(middleware) if middleware is not None else None
    return RedisBroker(
        url=broker_url(settings), middleware=chosen, namespace=keys.DRAMATIQ_NAMESPACE
    )
