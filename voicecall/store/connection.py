"""What every part of the store shares: the one factory of Redis clients (every process's
clients: stores, Dramatiq's broker, exporter, console, CLI), the errors that mean "Redis is not
reachable now", and the clock a step is stamped with."""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio

from voicecall.config.redis_settings import RedisSettings
from voicecall.store import failover

# Redis errors that mean "not reachable right now" rather than "this request is wrong".
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,  # includes BusyLoadingError (Redis still loading its AOF)
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,  # noeviction: full until memory frees up
    redis.ReadOnlyError,  # a demoted primary, past the failover deadline
)

RedisError = redis.RedisError


def now_s() -> float:
    return time.time()


def client_options(options: dict[str, Any]) -> dict[str, Any]:
    options.setdefault("socket_timeout", 5)
    options.setdefault("socket_connect_timeout", 2)
    options.setdefault("health_check_interval", 10)
    return options


# --- the one factory of Redis clients ---------------------------------------------------------


def node_options(settings: RedisSettings, options: dict[str, Any]) -> dict[str, Any]:
    """The data nodes' options from REDIS_URL: with sentinels, its database and
    credentials only (the sentinels name the host)."""
    parsed = dict(redis.connection.parse_url(settings.redis_url))  # type: ignore[no-untyped-call]
    node = {k: parsed[k] for k in ("db", "username", "password") if parsed.get(k) is not None}
    if parsed.get("connection_class") is redis.SSLConnection:
        node["ssl"] = True
    return {**node, **client_options(options)}


def sentinel_options(settings: RedisSettings, node: dict[str, Any]) -> dict[str, Any]:
    options = {k: v for k, v in node.items() if k.startswith("socket_")}
    if settings.redis_sentinel_username:
        options["username"] = settings.redis_sentinel_username
    if settings.redis_sentinel_password:
        options["password"] = settings.redis_sentinel_password
    return options


def _ride_out_s(settings: RedisSettings, ride_out_s: float | None) -> float:
    """How long a command retries while no primary answers: only where a new one can come
    (with sentinels); one server fails at once, as it always did."""
    if not settings.uses_sentinel:
        return 0.0
    return settings.redis_failover_deadline_s if ride_out_s is None else ride_out_s


def _address(settings: RedisSettings) -> str:
    parsed = redis.connection.parse_url(settings.redis_url)  # type: ignore[no-untyped-call]
    return str(parsed.get("path") or f"{parsed.get('host', '')}:{parsed.get('port', 6379)}")


def redis_client(
    settings: RedisSettings, *, decode: bool = True, ride_out_s: float | None = None, **options: Any
) -> redis.Redis:
    """A blocking client for ``settings``: the primary the sentinels name, or REDIS_URL."""
    if settings.uses_sentinel:
        node = node_options(settings, options)
        sentinels = failover.Sentinels(  # type: ignore[no-untyped-call]
            list(settings.redis_sentinels), sentinel_kwargs=sentinel_options(settings, node)
        )
        client = sentinels.master_for(  # type: ignore[no-untyped-call]
            settings.redis_sentinel_master,
            redis_class=failover.RidingRedis,
            decode_responses=decode,
            **node,
        )
    else:
        client = failover.RidingRedis.from_url(
            settings.redis_url, decode_responses=decode, **client_options(options)
        )
        failover.note_address("unknown", _address(settings))
    client.ride_out_s = _ride_out_s(settings, ride_out_s)
    return client  # type: ignore[no-any-return]


def async_redis_client(
    settings: RedisSettings, *, ride_out_s: float | None = None, **options: Any
) -> redis.asyncio.Redis:
    """The asyncio twin of :func:`redis_client` (decoded answers)."""
    if settings.uses_sentinel:
        node = node_options(settings, options)
        sentinels = failover.AsyncSentinels(  # type: ignore[no-untyped-call]
            list(settings.redis_sentinels), sentinel_kwargs=sentinel_options(settings, node)
        )
        client = sentinels.master_for(
            settings.redis_sentinel_master,
            redis_class=failover.RidingAsyncRedis,
            decode_responses=True,
            **node,
        )
    else:
        client = failover.RidingAsyncRedis.from_url(
            settings.redis_url, decode_responses=True, **client_options(options)
        )
        failover.note_address("unknown", _address(settings))
    client.ride_out_s = _ride_out_s(settings, ride_out_s)
    return client  # type: ignore[no-any-return]
