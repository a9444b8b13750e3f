"""``voicecall redis-failover``: a planned failover through the sentinels, the old primary
demoted at once.

``SENTINEL FAILOVER`` alone promotes a replica, but Sentinel makes the old primary (still
calling itself primary) a replica of the new one only four of its 2 s publish periods later
(``sentinel.c``; not a setting). With ``min-replicas-to-write`` equal to the number of replicas
(decision 9: what keeps a planned failover from losing writes) the new primary refuses every
write until then: about 11 s (``make bench`` figure 11b). This command does what Sentinel
would do, as soon as the sentinels name the new primary: ``REPLICAOF`` on the old one, so
writes pause about 2 s (figure 11f). Sentinel later finds it already so.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from voicecall.config.redis_settings import RedisSettings
from voicecall.errors import SettingsError, StoreError
from voicecall.store.connection import node_options, sentinel_options

POLL_S = 0.05


class HandoverFailed(StoreError):
    """The sentinels did not name a new primary in time, or refused the failover."""


@dataclass(frozen=True)
class Handover:
    old: tuple[str, int]
    new: tuple[str, int]
    promoted_after_s: float
    demoted: bool  # the old primary took REPLICAOF (else Sentinel converts it when it answers)


def _address(value: Any) -> tuple[str, int]:
    return str(value[0]), int(value[1])


def planned_failover(settings: RedisSettings, timeout_s: float) -> Handover:
    """Ask the sentinels for a failover, wait until every one that answers names the new
    primary and it answers as one, then make the old primary its replica."""
    node = node_options(settings, {})
    sentinels = [
        redis.Redis(host=host, port=port, decode_responses=True, **sentinel_options(settings, node))
        for host, port in settings.redis_sentinels
    ]
    name = settings.redis_sentinel_master
    try:
        old = _named(sentinels, name)
        if old is None:
            raise HandoverFailed(f"no sentinel names a primary for {name!r}")
        _ask_failover(sentinels, name)
        started = time.monotonic()
        while (new := _named(sentinels, name)) in (None, old) or not _is_primary(new, node):
            if time.monotonic() - started > timeout_s:
                raise HandoverFailed(f"no new primary named for {name!r} within {timeout_s:g} s")
            time.sleep(POLL_S)
        assert new is not None
        promoted_after_s = time.monotonic() - started
        return Handover(old, new, promoted_after_s, _demote(old, new, node))
    finally:
        for sentinel in sentinels:
            sentinel.close()


def _named(sentinels: list[redis.Redis], name: str) -> tuple[str, int] | None:
    """The primary every sentinel that answers names, or None while they disagree."""
    named = set()
    for sentinel in sentinels:
        try:
            found = sentinel.sentinel_get_master_addr_by_name(name)
        except redis.RedisError:
            continue
        if found:
            named.add(_address(found))
    return named.pop() if len(named) == 1 else None


def _ask_failover(sentinels: list[redis.Redis], name: str) -> None:
    errors = []
    for sentinel in sentinels:  # one sentinel leads it; the first that answers
        try:
            sentinel.sentinel_failover(name)
            return
        except redis.RedisError as exc:
            errors.append(str(exc))
    raise HandoverFailed(f"no sentinel started a failover of {name!r}: {'; '.join(errors)}")


def _is_primary(address: tuple[str, int] | None, node: dict[str, Any]) -> bool:
    if address is None:
        return False
    try:
        with redis.Redis(host=address[0], port=address[1], **node) as client:
            return bool(client.role()[0] in (b"master", "master"))
    except redis.RedisError:
        return False


def _demote(old: tuple[str, int], new: tuple[str, int], node: dict[str, Any]) -> bool:
    """``REPLICAOF new`` on the old primary; False if it does not answer (Sentinel converts
    it when it comes back)."""
    try:
        with redis.Redis(host=old[0], port=old[1], **node) as client:
            client.execute_command("REPLICAOF", new[0], str(new[1]))
    except redis.RedisError:
        return False
    return True


def main(argv: Sequence[str]) -> int:
    """``voicecall redis-failover [--timeout S]``"""
    parser = argparse.ArgumentParser(
        prog="voicecall redis-failover",
        description="A planned Redis failover through the sentinels (REDIS_SENTINELS, "
        "REDIS_SENTINEL_MASTER): SENTINEL FAILOVER, then the old primary made the new one's "
        "replica at once, so writes pause about 2 s instead of about 11 s.",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    args = parser.parse_args(argv)
    settings = RedisSettings()
    if not settings.uses_sentinel:
        raise SettingsError("REDIS_SENTINELS: not set: a planned failover is asked of Sentinel")
    try:
        done = planned_failover(settings, args.timeout)
    except HandoverFailed as exc:
        print(f"voicecall redis-failover: {exc}")
        return 1
    old, new = (f"{host}:{port}" for host, port in (done.old, done.new))
    then = "made its replica" if done.demoted else "not answering: Sentinel converts it later"
    print(f"primary {old} -> {new} after {done.promoted_after_s:.2f} s; old primary {then}")
    return 0
