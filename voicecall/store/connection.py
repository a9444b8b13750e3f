"""What every part of the store shares: the Redis client's options, the errors that mean
"Redis is not reachable now", and the clock a step is stamped with."""

from __future__ import annotations

import time
from typing import Any

import redis

# Redis errors that mean "not reachable right now" rather than "this request is wrong".
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,  # includes BusyLoadingError (Redis still loading its AOF)
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,  # noeviction: full until memory frees up
)

RedisError = redis.RedisError


def now_s() -> float:
    return time.time()


def client_options(options: dict[str, Any]) -> dict[str, Any]:
    options.setdefault("socket_timeout", 5)
    options.setdefault("socket_connect_timeout", 2)
    options.setdefault("health_check_interval", 10)
    return options
