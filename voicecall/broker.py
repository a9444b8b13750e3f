"""The Dramatiq broker, from settings: Redis on ``REDIS_URL`` by default, RabbitMQ when
``BROKER_URL`` is an ``amqp://`` URL. Producers use it bare to enqueue by name; workers add
their middleware (see worker.setup).
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
    url = broker_url(settings)
    chosen = list(middleware) if middleware is not None else None
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=chosen)
    return RedisBroker(url=url, middleware=chosen, namespace=keys.DRAMATIQ_NAMESPACE)
