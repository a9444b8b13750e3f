"""The Lua steps' sources: each operation's script after lib.lua, with lib.lua's constants
written from the Python enums and key names (one source), and the batch form of a script.

The scripts live in ``lua/`` beside this module (package data), one file each; each one is a
job step of voicecall.job.lifecycle or voicecall.job.upkeep, but the plain scripts
(:func:`plain_source`: an API client's quota, the workers' broker fetch, a campaign's places,
a dead worker's messages) and ``batch.lua`` (several steps in one round trip). Each script
names its key slots once, at its top (lib.lua's ``K`` and ``own_keys`` for the job steps);
tests/test_lua_slots.py checks those names against the keys the Python side passes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, overload

import redis
import redis.asyncio
from redis.commands.core import AsyncScript, Script

from voicecall.job import keys
from voicecall.job.layout import BAND_WIDTH, KINDS, RETENTION_SLACK_S, STATUSES
from voicecall.job.lifecycle import HOLD_MAX_REPORTS
from voicecall.job.states import FINAL_STATES

LUA_DIR = Path(__file__).with_name("lua")
SCRIPTS = (
    "create",
    "claim",
    "submit",
    "retry",
    "end",
    "complete",
    "confirm",
    "poll_pending",
    "delivery",
    "reopen",
    "redeliver",
    "release",
    "redrive",
    "webhook_due",
    "purge",
    "postpone",
    "renew",
    "unclaim",
    "dismiss",
)


def _lua_table(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid Lua string literal here
    if isinstance(value, Mapping):
        return (
            "{" + ", ".join(f"[{_lua_table(k)}] = {_lua_table(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(type(value))


def constants() -> str:
    """The Lua table ``C`` of lib.lua, from the Python enums and keys (one source)."""
    return _lua_table(
        {
            "final": {s.value: True for s in FINAL_STATES},
            "status_rank": {status: rank for rank, status in enumerate(STATUSES)},
            "kind_rank": {kind.value: rank for rank, kind in enumerate(KINDS)},
            "kinds": len(KINDS),
            "band_width": BAND_WIDTH,
            "retention_slack_s": RETENTION_SLACK_S,
            "activity_ttl_s": keys.ACTIVITY_TTL_S,
            "queues": len(keys.ALL_QUEUES),
            "queue_slot": {q: slot for slot, q in enumerate(keys.ALL_QUEUES, start=1)},
            "actor": dict(keys.ACTOR_BY_QUEUE),
            "queue_otp": keys.QUEUE_OTP,
            "queue_bulk": keys.QUEUE_BULK,
            "queue_status": keys.QUEUE_STATUS,
            "queue_webhooks": keys.QUEUE_WEBHOOKS,
            "hold_max": HOLD_MAX_REPORTS,
        }
    )


@cache
def script_source(name: str) -> str:
    """lib.lua (with its constants) followed by the operation's own script."""
    return "local ACTIVITY = nil\n" + _lib_and(name)


def _lib_and(name: str) -> str:
    lib = (LUA_DIR / "lib.lua").read_text().replace("__CONSTANTS__", constants())
    return lib + "\n" + (LUA_DIR / f"{name}.lua").read_text()


# Operations the worker may run for several jobs in one script (AsyncJobStore.apply_together).
BATCHABLE = ("submit",)


def batch_source(name: str) -> str:
    """One script that runs operation ``name`` for several jobs in turn, each step the same as
    alone, in one round trip (``lua/batch.lua``)."""
    return (
        (LUA_DIR / "batch.lua")
        .read_text()
        .replace("__ACTIVITY_TTL_S__", str(keys.ACTIVITY_TTL_S))
        .replace("\n__STEP__\n", "\n" + _lib_and(name) + "\n")
    )


def plain_source(name: str) -> str:
    """A script that is not a job step (no lib.lua): ``quota``, ``dramatiq_fetch``,
    ``reserve_campaign``, ``recover_worker``."""
    return (LUA_DIR / f"{name}.lua").read_text()


@overload
def registered(store: object, client: redis.asyncio.Redis, source: str) -> AsyncScript: ...
@overload
def registered(store: object, client: redis.Redis, source: str) -> Script: ...
def registered(store: object, client: redis.Redis | redis.asyncio.Redis, source: str) -> Any:
    """``source`` registered on ``client`` at its first use by ``store``, then kept with the
    store (registering hashes the source; Redis is sent it only when it lacks the script)."""
    kept: dict[str, Any] = vars(store).setdefault("_registered_scripts", {})
    if source not in kept:
        kept[source] = client.register_script(source)
    return kept[source]
