"""A step whose reply was lost in a failover is sent again: every job step must be harmless
the second time. Each operation of voicecall.job.lifecycle and voicecall.job.upkeep runs here
through a whole life, and each one is at once sent a second time, byte for byte (same keys,
same arguments, same time and token, as a client retrying it would): the second run must
change nothing in Redis. Also: scripts a new primary does not know are loaded again.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from tests.fixtures.lifecycle_run import every_operation
from voicecall.job.steps import Op, Step
from voicecall.store.connection import now_s
from voicecall.store.job_store import JobStore
from voicecall.store.steps import _args, _keys


def _parsed(value: str | None) -> Any:
    """A job's JSON as data: Lua's cjson writes an object's fields in any order."""
    try:
        return json.loads(value) if value else value
    except ValueError:
        return value


def _snapshot(client: redis.Redis) -> dict[str, Any]:
    """Every key's value, read by its type (TTLs left out: they tick)."""
    found: dict[str, Any] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == "string":
            found[key] = _parsed(client.get(key))
        elif kind == "hash":
            found[key] = client.hgetall(key)
        elif kind == "list":
            found[key] = client.lrange(key, 0, -1)
        elif kind == "set":
            found[key] = sorted(client.smembers(key))
        elif kind == "zset":
            found[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            found[key] = kind
    return found


class _SentTwice(JobStore):
    """Runs each step, then the very same command again; records what the second changed."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client)
        self.changed: dict[str, list[str]] = {}
        self.ran: list[str] = []

    def apply(self, op: Op, *, now: float | None = None) -> Step:
        at = now_s() if now is None else now
        keys, args = _keys(op, at), _args(op, self.config, at)
        first = self._scripts[op.script](keys=keys, args=args, client=self._redis)
        before = _snapshot(self._redis)
        self._scripts[op.script](keys=keys, args=args, client=self._redis)
        after = _snapshot(self._redis)
        self.ran.append(op.script)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if changed:
            self.changed.setdefault(op.script, []).extend(changed)
        return Step.of(first)


def test_every_step_sent_twice_changes_nothing_the_second_time(redis_url: str) -> None:
    """Each step, sent again byte for byte right after it ran, leaves Redis unchanged."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = _SentTwice(client)
    every_operation(store)
    assert len(set(store.ran)) >= 18, sorted(set(store.ran))  # the life ran through them
    assert store.changed == {}


def test_scripts_missing_on_a_new_primary_are_loaded_again(redis_url: str) -> None:
    """A promoted replica may not hold the scripts (SCRIPT FLUSH stands in for it): the
    store loads them again instead of failing on NOSCRIPT."""
    store = JobStore.from_url(redis_url)
    every_operation(store)  # loads every script
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.script_flush()
    every_operation(store)  # the same life again, each script loaded anew on NOSCRIPT
    assert store.get("a") is not None
    store.close()
