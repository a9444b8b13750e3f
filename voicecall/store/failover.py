"""Riding through a Redis failover: which errors mean "no primary answers now", the clients
that retry those with bounded backoff inside one deadline, and the sentinels' choice of the
primary (with the metrics of what this process uses).

A command or pipeline sent again after its reply was lost may have run already: every job
step is safe to run twice (tests/test_failover_steps.py), and a read is a read.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.asyncio.client
import redis.asyncio.sentinel
import redis.client
import redis.sentinel

from voicecall.errors import StoreError
from voicecall.telemetry.logs import get_logger
from voicecall.telemetry.metrics import REDIS_PRIMARY_CHANGES, REDIS_ROLE

log = get_logger(__name__)
T = TypeVar("T")

# Answers of a demoted or isolated primary: the write may go through on the new one.
_TRANSIENT_REPLY = re.compile(r"(?:^|caused error: \(')(?:READONLY|NOREPLICAS|MASTERDOWN|LOADING) ")
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 1.0


class PrimaryUnavailable(StoreError, redis.ConnectionError):
    """No primary took the command within the failover deadline (also a demoted primary's
    READONLY or an isolated one's NOREPLICAS): retry later, nothing is wrong with it."""


class ReplicationTimeout(PrimaryUnavailable):
    """``WAIT`` saw fewer replicas than asked for: the write may be lost in a failover."""


def transient(exc: BaseException) -> bool:
    """True for an error a new primary may not give: sent again, it may go through."""
    if isinstance(exc, ReplicationTimeout):
        return False  # WAIT's own answer: the caller decides
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return True
    # A pipeline quotes the reply: "Command # 1 (EVALSHA ...) caused error: ('NOREPLICAS ..."
    return isinstance(exc, redis.ResponseError) and bool(_TRANSIENT_REPLY.search(str(exc)))


def _as_unavailable(exc: BaseException) -> BaseException:
    if isinstance(exc, redis.ResponseError) and transient(exc):
        return PrimaryUnavailable(str(exc))
    return exc


def _retrying(deadline_s: float) -> dict[str, Any]:
    import tenacity  # only with sentinels: a REDIS_URL-only producer never loads it

    return {
        "retry": tenacity.retry_if_exception(transient),
        "wait": tenacity.wait_exponential(multiplier=BACKOFF_FIRST_S, max=BACKOFF_MAX_S)
        + tenacity.wait_random(0, BACKOFF_FIRST_S),
        "stop": tenacity.stop_after_delay(deadline_s),
        "reraise": True,
    }


def ride_out(call: Callable[[], T], deadline_s: float, before_retry: Callable[[], None]) -> T:
    """``call()``, sent again on a transient error until ``deadline_s`` has passed."""
    if deadline_s <= 0:
        return call()
    import tenacity

    attempt = 0
    try:
        for attempt_state in tenacity.Retrying(**_retrying(deadline_s)):
            with attempt_state:
                if attempt:
                    before_retry()
                attempt += 1
                return call()
    except Exception as exc:
        raise _as_unavailable(exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover


async def ride_out_async(
    call: Callable[[], Awaitable[T]], deadline_s: float, before_retry: Callable[[], Awaitable[None]]
) -> T:
    if deadline_s <= 0:
        return await call()
    import tenacity

    attempt = 0
    try:
        async for attempt_state in tenacity.AsyncRetrying(**_retrying(deadline_s)):
            with attempt_state:
                if attempt:
                    await before_retry()
                attempt += 1
                return await call()
    except Exception as exc:
        raise _as_unavailable(exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _behind(pool: Any) -> bool:
    """True (once) when another client of this process has seen a new primary since this
    pool last looked: its connections to the old one must go too, for a demoted primary may
    take writes for seconds that its new role then discards."""
    if getattr(pool, "_voicecall_generation", 0) == _generation:
        return False
    pool._voicecall_generation = _generation
    return True


class RidingRedis(redis.Redis):
    """A client whose commands and pipelines ride out a failover (``ride_out_s`` > 0)."""

    ride_out_s: float = 0.0

    def _follow(self) -> None:
        if _behind(self.connection_pool):
            self.connection_pool.disconnect()

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self._follow()
        return ride_out(
            lambda: super(RidingRedis, self).execute_command(*args, **options),  # type: ignore[no-untyped-call]
            self.ride_out_s,
            self._drop_idle,
        )

    def _drop_idle(self) -> None:
        # Idle connections may still point at a demoted primary: the next ones ask again.
        self.connection_pool.disconnect(inuse_connections=False)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Any:
        self._follow()
        pipe = RidingPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.ride_out_s = self.ride_out_s
        return pipe


class RidingPipeline(redis.client.Pipeline):
    ride_out_s: float = 0.0

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        if _behind(self.connection_pool):
            self.connection_pool.disconnect()
        stack, scripts = list(self.command_stack), set(self.scripts)

        def run() -> list[Any]:
            self.command_stack, self.scripts = list(stack), set(scripts)
            return super(RidingPipeline, self).execute(raise_on_error)

        def drop_idle() -> None:
            self.connection_pool.disconnect(inuse_connections=False)

        return ride_out(run, self.ride_out_s, drop_idle)


class RidingAsyncRedis(redis.asyncio.Redis):
    ride_out_s: float = 0.0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if _behind(self.connection_pool):
            await self.connection_pool.disconnect()

        async def run() -> Any:
            return await super(RidingAsyncRedis, self).execute_command(*args, **options)  # type: ignore[no-untyped-call]

        return await ride_out_async(run, self.ride_out_s, self._drop_idle)

    async def _drop_idle(self) -> None:
        await self.connection_pool.disconnect(inuse_connections=False)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Any:
        pipe = RidingAsyncPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.ride_out_s = self.ride_out_s
        return pipe


class RidingAsyncPipeline(redis.asyncio.client.Pipeline):
    ride_out_s: float = 0.0

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        if _behind(self.connection_pool):
            await self.connection_pool.disconnect()
        stack, scripts = list(self.command_stack), set(self.scripts)

        async def run() -> list[Any]:
            self.command_stack, self.scripts = list(stack), set(scripts)
            return await super(RidingAsyncPipeline, self).execute(raise_on_error)

        async def drop_idle() -> None:
            await self.connection_pool.disconnect(inuse_connections=False)

        return await ride_out_async(run, self.ride_out_s, drop_idle)


# --- which primary ---------------------------------------------------------------------------

_lock = threading.Lock()
_in_use: tuple[str, str] | None = None  # (role, "host:port") this process uses now
_generation = 0  # primaries this process has seen: every client follows a change


def note_address(role: str, address: str) -> None:
    """The Redis this process uses now (voicecall_redis_role); a new primary is counted."""
    global _in_use, _generation
    with _lock:
        before, _in_use = _in_use, (role, address)
        if before == _in_use:
            return
        if before is not None:
            REDIS_ROLE.labels(role=before[0], address=before[1]).set(0)
            if role == "primary" and before[0] == "primary":
                _generation += 1
                REDIS_PRIMARY_CHANGES.inc()
                log.warning("redis_primary_changed", before=before[1], now=address)
        REDIS_ROLE.labels(role=role, address=address).set(1)


def _freshest(answers: list[tuple[dict[str, Any], Any]]) -> tuple[str, int] | None:
    """Of the sentinels' answers (``SENTINEL MASTER``, ``GET-MASTER-ADDR-BY-NAME``), the
    address named by the one with the highest configuration epoch: the sentinel leading a
    failover names the promoted replica as soon as it answers as a primary, before the
    others hear of it. A primary the sentinel sees down is no answer."""
    named = []
    for state, address in answers:
        if not address:
            continue
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        port = int(address[1])
        down = state["is_sdown"] or state["is_odown"]
        if down and (str(state["ip"]), int(state["port"])) == (host, port):
            continue
        named.append((int(state.get("config-epoch", 0)), host, port))
    if not named:
        return None
    votes = Counter((host, port) for _, host, port in named)  # a tie: the majority's view
    _, host, port = max(named, key=lambda n: (n[0], votes[(n[1], n[2])]))
    return host, port


def _found(service: str, address: tuple[str, int] | None, errors: list[str]) -> tuple[str, int]:
    if address is None:
        raise redis.sentinel.MasterNotFoundError(f"No master found for {service!r}: {errors}")
    note_address("primary", f"{address[0]}:{address[1]}")
    return address


class Sentinels(redis.sentinel.Sentinel):
    """redis-py's Sentinel, asking every sentinel and trusting the freshest view."""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        answers: list[Any] = []
        errors: list[str] = []
        for sentinel in self.sentinels:
            try:
                state = sentinel.sentinel_master(service_name)
                answers.append((state, sentinel.sentinel_get_master_addr_by_name(service_name)))
            except redis.RedisError as exc:
                errors.append(repr(exc))
        return _found(service_name, _freshest(answers), errors)


class AsyncSentinels(redis.asyncio.sentinel.Sentinel):
    async def discover_master(self, service_name: str) -> tuple[str, int]:
        answers: list[Any] = []
        errors: list[str] = []
        for sentinel in self.sentinels:
            try:
                state = await sentinel.sentinel_master(service_name)
                address = await sentinel.sentinel_get_master_addr_by_name(service_name)
                answers.append((state, address))
            except redis.RedisError as exc:
                errors.append(repr(exc))
        return _found(service_name, _freshest(answers), errors)
