"""Only the job store changes a job, and its scripts touch only the keys they declare.

- No module outside voicecall/store/ may import redis (ruff's banned-api rule, TID251, in
  pyproject.toml), nor reach into a store's client: checked here over the package sources.
- No Lua script builds a key name: no key prefix appears in any script.
- Every key a script touches is one of its ``KEYS``: checked for real, by running every
  operation of voicecall.job.lifecycle through a whole life under Redis ``MONITOR`` and comparing
  each command a script ran with the keys its EVALSHA declared.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.lifecycle_run import every_operation
from tests.fixtures.redis_monitor import Monitor
from voicecall.store.job_store import JobStore

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("voicecall", "producer", "worker", "simulator")
STORE = ROOT / "voicecall" / "store"
# Redis commands the scripts use, and where their keys are (all: first argument only).
KEYED_COMMANDS = {
    "GET", "SET", "DEL", "EXPIRE", "ZADD", "ZREM", "ZSCORE", "ZCARD", "ZRANGE",
    "ZREMRANGEBYSCORE", "HSET", "HEXISTS", "RPUSH", "LLEN", "SMEMBERS",
}  # fmt: skip


def _sources() -> Iterator[Path]:
    for package in PACKAGES:
        yield from (ROOT / package).rglob("*.py")


def test_only_the_store_reaches_its_redis_client() -> None:
    """No package module outside voicecall/store/ uses a store's client (``._redis``)."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in _sources()
        if not path.is_relative_to(STORE) and "._redis" in path.read_text()
    ]
    assert offenders == []


def test_only_the_store_imports_redis() -> None:
    """The banned-api rule has no exception in the packages but the store itself."""
    importing = [
        path
        for path in _sources()
        if re.search(r"^\s*(import redis|from redis)", path.read_text(), re.MULTILINE)
    ]
    assert importing, "the store imports redis"
    assert [str(p.relative_to(ROOT)) for p in importing if not p.is_relative_to(STORE)] == []


def test_no_script_builds_a_key_name() -> None:
    """No Lua script holds a key prefix: every key comes in through KEYS."""
    scripts = sorted((STORE / "lua").glob("*.lua"))
    assert len(scripts) > 10  # the scripts are where this test looks
    for script in scripts:
        text = script.read_text()
        assert "vc:" not in text and "dramatiq:" not in text, script.name


def _declared_and_touched(events: list[tuple[str, list[str]]]) -> list[tuple[set[str], str, str]]:
    """(keys declared by the EVALSHA, command, key) for every keyed command run by a script."""
    out: list[tuple[set[str], str, str]] = []
    declared: set[str] = set()
    for source, words in events:
        if not words:
            continue
        name = words[0].upper()
        if source != "lua":
            if name == "EVALSHA":
                count = int(words[2])
                declared = set(words[3 : 3 + count])
            continue
        if name in KEYED_COMMANDS and len(words) > 1:
            out.append((declared, name, words[1]))
    return out


@pytest.mark.parametrize("kind", ["record_call"])
def test_every_key_a_script_touches_is_declared(redis_url: str, kind: str) -> None:
    """Under MONITOR: each command a lifecycle script runs names a key its EVALSHA declared."""
    store = JobStore.from_url(redis_url)
    with Monitor(redis_url) as monitor:
        every_operation(store)
        time.sleep(0.3)
    touched = _declared_and_touched(monitor.events)
    assert len(touched) > 50  # the life above ran through the scripts
    undeclared = [(name, key) for declared, name, key in touched if key not in declared]
    assert undeclared == []
    store.close()
