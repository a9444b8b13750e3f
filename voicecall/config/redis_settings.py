"""The settings that say where Redis is: one server (``REDIS_URL``), or a primary that
Redis Sentinel names (``REDIS_SENTINELS`` and ``REDIS_SENTINEL_MASTER``).

With sentinels, ``REDIS_URL`` gives only the database number and the data nodes' credentials,
never the host: the primary is whichever server the sentinels name now. voicecall.store.redis
builds every client from these settings.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Why BROKER_URL=amqp:// is refused (one line, at start-up) instead of half working.
RABBITMQ_REFUSED = (
    "RabbitMQ is not supported: voicecall reads and writes Dramatiq's Redis broker keys "
    "itself (the job store writes broker messages; the dead-letter CLI, the queue-depth "
    "gauges and KEDA scaling read them); leave BROKER_URL empty to use the Redis of REDIS_URL"
)


def parse_addresses(value: str) -> tuple[tuple[str, int], ...]:
    """``REDIS_SENTINELS``: comma-separated ``host:port`` (``[::1]:26379`` for IPv6)."""
    found: list[tuple[str, int]] = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be comma-separated host:port addresses (port 1-65535)")
        if any(c.isspace() or c in "/@[]" for c in host):
            raise ValueError("must be comma-separated host:port addresses (port 1-65535)")
        found.append((host, int(port)))
    return tuple(found)


class RedisSettings(BaseSettings):
    """Where Redis is; the base of voicecall.config.settings.Settings."""

    redis_url: str = DEFAULT_REDIS_URL
    # Empty, or REDIS_URL itself: the job store writes each job and its message in one Lua
    # step, so the broker is the job store's Redis. RabbitMQ is refused.
    broker_url: str = ""
    # Set: the primary comes from these sentinels (REDIS_URL: database and credentials only).
    redis_sentinels: Annotated[tuple[tuple[str, int], ...], NoDecode] = ()
    redis_sentinel_master: str = ""
    redis_sentinel_username: str = ""
    redis_sentinel_password: str = ""
    # Intake answers only once a new job is on this many replicas (WAIT); unset: 1 with
    # sentinels, 0 without.
    redis_wait_replicas: int | None = Field(default=None, ge=0, le=16)
    # How long a step keeps retrying while no primary answers (a failover), in all.
    redis_failover_deadline_s: float = Field(default=30.0, gt=0, le=600)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if value.startswith(("amqp://", "amqps://")):
            raise ValueError(RABBITMQ_REFUSED)
        if value and not value.startswith(("redis://", "rediss://")):
            raise ValueError("must be empty, or start with redis:// or rediss://")
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _sentinels(cls, value: Any) -> Any:
        return parse_addresses(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_redis(self) -> RedisSettings:
        if self.broker_url and self.broker_url != self.redis_url:
            raise ValueError(
                "BROKER_URL must be empty or equal REDIS_URL: the job store writes each job "
                "and its Dramatiq message in one Lua step, in one Redis"
            )
        if self.redis_sentinels:
            if not self.redis_sentinel_master.strip():
                raise ValueError(
                    "REDIS_SENTINEL_MASTER: must name the monitored primary when "
                    "REDIS_SENTINELS is set"
                )
            if self.redis_url.startswith("unix://"):
                raise ValueError(
                    "REDIS_URL: must be redis:// or rediss:// when REDIS_SENTINELS is set "
                    "(it gives the database and credentials; the sentinels give the host)"
                )
        return self

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.redis_sentinels)

    @property
    def wait_replicas(self) -> int:
        """REDIS_WAIT_REPLICAS, or its default: 1 with sentinels, 0 without."""
        if self.redis_wait_replicas is not None:
            return self.redis_wait_replicas
        return 1 if self.uses_sentinel else 0
