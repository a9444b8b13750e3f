"""The job store: the one module that talks to Redis for voicecall's own keys.

:class:`JobStore` (blocking) and :class:`AsyncJobStore` (asyncio) run the operations of
:mod:`voicecall.job.lifecycle` (each one Lua script: atomic, recorded) and read jobs back as typed
:class:`~voicecall.job.records.JobRecord`. No request path scans keys: every read is by a known
key or a range of a sorted set. Code elsewhere never holds a Redis client for voicecall's
keys; a ruff banned-api rule (pyproject.toml) and tests/test_store_boundary.py keep it so.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
import redis.asyncio
from redis.commands.core import AsyncScript, Script

from voicecall.config.settings import Settings
from voicecall.job import keys, layout
from voicecall.job.records import JobRecord
from voicecall.job.states import Outcome, State
from voicecall.job.steps import Op, Step
from voicecall.store import scripts

DAY_S = 86400
# The counters each campaign keeps (fields "{cid}:{name}" of keys.CAMPAIGN_STATS).
CAMPAIGN_FIGURES: tuple[str, ...] = (
    "total",
    *(s.value for s in State),
    *(f"outcome:{o.value}" for o in Outcome),
    "duration_s",
    "price_vnd",
    "first_sent_at",
    "last_sent_at",
)
# Redis errors that mean "not reachable right now" rather than "this request is wrong".
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,  # includes BusyLoadingError (Redis still loading its AOF)
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,  # noeviction: full until memory frees up
)
RedisError = redis.RedisError


def now_s() -> float:
    return time.time()


@dataclass(frozen=True)
class StoreConfig:
    """Durations every operation may need (from settings)."""

    retention_s: int = 30 * DAY_S
    webhook_redrive_s: float = 60.0
    # The longest a job lives after its due time: the retry window (at most 24 h), the poll
    # deadline and a day of margin. An idempotency key outlives its job by at most this.
    after_due_s: int = 2 * DAY_S

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreConfig:
        return cls(
            retention_s=settings.finished_retention_days * DAY_S,
            webhook_redrive_s=settings.redrive_after_s,
            after_due_s=int(
                max(settings.send_retry_window_s, DAY_S) + settings.poll_deadline_s + DAY_S
            ),
        )

    def common(self) -> dict[str, Any]:
        return {
            "token": secrets.token_hex(8),
            "retention_s": self.retention_s,
            "webhook_redrive_s": self.webhook_redrive_s,
            "after_due_s": self.after_due_s,
        }


def _args(op: Op, config: StoreConfig, now: float) -> list[str]:
    import json

    params = {**config.common(), **op.params}
    if op.activity:
        params["activity"] = True  # the minute's hash is declared (see _keys)
    args = [repr(round(now, 3)), json.dumps(params)]
    if op.document is not None:
        args.append(op.document)
    return args


def _keys(op: Op, now: float) -> list[str]:
    """The op's keys, with the minute's activity hash (of ``now``, the step's own time) just
    before the message keys when the step may send or end a job."""
    declared = list(op.keys)
    if op.activity:
        declared.insert(len(declared) - 2 * len(keys.ALL_QUEUES), keys.activity(now))
    return declared


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _counts(replies: Sequence[Any]) -> dict[str, int]:
    """Jobs per state, only the states that have any."""
    counts: dict[str, int] = {}
    for status, count in zip(layout.STATUSES, replies, strict=True):
        if int(count):
            state = status.split("/")[0]
            counts[state] = counts.get(state, 0) + int(count)
    return counts


def _client_options(options: dict[str, Any]) -> dict[str, Any]:
    options.setdefault("socket_timeout", 5)
    options.setdefault("socket_connect_timeout", 2)
    options.setdefault("health_check_interval", 10)
    return options


class JobStore:
    """Reads and moves jobs. Thread-safe: it holds only a redis client (a connection pool)."""

    def __init__(self, client: redis.Redis, config: StoreConfig | None = None) -> None:
        self._redis = client
        self.config = config or StoreConfig()
        self._scripts: dict[str, Script] = {
            name: client.register_script(scripts.script_source(name)) for name in scripts.SCRIPTS
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> JobStore:
        return cls.from_url(settings.redis_url, StoreConfig.from_settings(settings))

    @classmethod
    def from_url(cls, url: str, config: StoreConfig | None = None, **options: Any) -> JobStore:
        client = redis.Redis.from_url(url, decode_responses=True, **_client_options(options))
        return cls(client, config)

    # --- the operations ---------------------------------------------------------------

    def apply(self, op: Op, *, now: float | None = None) -> Step:
        """Run one operation of :mod:`voicecall.job.lifecycle` (atomic)."""
        at = now_s() if now is None else now
        reply = self._scripts[op.script](
            keys=_keys(op, at), args=_args(op, self.config, at), client=self._redis
        )
        return Step.of(reply)

    def apply_many(self, ops: Sequence[Op], *, now: float | None = None) -> list[Step]:
        """Several operations in one round trip; each is atomic on its own."""
        if not ops:
            return []
        pipe = self._redis.pipeline(transaction=False)
        at = now_s() if now is None else now
        for op in ops:
            self._scripts[op.script](
                keys=_keys(op, at), args=_args(op, self.config, at), client=pipe
            )
        return [Step.of(reply) for reply in pipe.execute()]

    # --- reads --------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        raw = cast(str | None, self._redis.get(keys.job(job_id)))
        return JobRecord.parse(raw) if raw else None

    def get_many(self, job_ids: Sequence[str]) -> list[JobRecord | None]:
        if not job_ids:
            return []
        raws = cast(list[str | None], self._redis.mget([keys.job(i) for i in job_ids]))
        return [JobRecord.parse(raw) if raw else None for raw in raws]

    def get_docs(self, job_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """The jobs' documents as plain dicts: for reading many (search, export) without
        building a model for each."""
        if not job_ids:
            return []
        raws = cast(list[str | None], self._redis.mget([keys.job(i) for i in job_ids]))
        return [json.loads(raw) if raw else None for raw in raws]

    def id_for_idempotency_key(self, client: str, key: str) -> str | None:
        """The job ``client`` made with idempotency ``key`` (keys are scoped per client)."""
        return cast(str | None, self._redis.get(keys.idempotency(client, key)))

    def id_for_smsid(self, smsid: str) -> str | None:
        return cast(str | None, self._redis.hget(keys.smsid_bucket(smsid), keys.smsid_field(smsid)))

    def state_counts(self) -> dict[str, int]:
        """Jobs in each state: one ZCOUNT per band of the state index."""
        pipe = self._redis.pipeline(transaction=False)
        for status in layout.STATUSES:
            low, high = layout.band_range(status)
            pipe.zcount(keys.STATE_INDEX, low, high)
        return _counts(pipe.execute())

    def ids_in_state(self, status: str, limit: int = 10_000) -> list[str]:
        """Ids of the jobs in ``status`` (a state, or completed/outcome), oldest first."""
        low, high = layout.band_range(status)
        return [
            str(member)
            for member in self._redis.zrangebyscore(keys.STATE_INDEX, low, high, start=0, num=limit)
        ]

    # --- the search indexes (producer.search.walk) -------------------------------------------

    def index_range(
        self, key: str, low: int, high: int, count: int, *, offset: int = 0
    ) -> list[tuple[str, int]]:
        """(member, score) of ``key`` with scores in [low, high], highest first."""
        rows = cast(
            list[tuple[str, float]],
            self._redis.zrevrangebyscore(key, high, low, start=offset, num=count, withscores=True),
        )
        return [(str(member), int(score)) for member, score in rows]

    def index_range_ascending(
        self, key: str, low: int, high: int, count: int, *, offset: int = 0
    ) -> list[tuple[str, int]]:
        """(member, score) of ``key`` with scores in [low, high], lowest first."""
        rows = cast(
            list[tuple[str, float]],
            self._redis.zrangebyscore(key, low, high, start=offset, num=count, withscores=True),
        )
        return [(str(member), int(score)) for member, score in rows]

    def index_counts(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[int]:
        """Members of ``key`` with scores in each [low, high] of ``ranges``."""
        pipe = self._redis.pipeline(transaction=False)
        for low, high in ranges:
            pipe.zcount(key, low, high)
        return [int(count) for count in pipe.execute()]

    def lex_range(self, key: str, start: str, end: str, count: int) -> list[str]:
        """Members of ``key`` (all scored 0) between ``start`` and ``end`` (ZRANGEBYLEX
        bounds), in lexical order."""
        return [str(m) for m in self._redis.zrangebylex(key, start, end, start=0, num=count)]

    def campaign_number(self, name: str) -> tuple[int, int] | None:
        """(cid, places given so far) of the campaign ``name``, or None if unknown."""
        cid = cast(str | None, self._redis.hget(keys.CAMPAIGNS, name))
        if cid is None:
            return None
        last = cast(str | None, self._redis.hget(keys.CAMPAIGN_SEQ, cid))
        return int(cid), int(last or 0)

    def campaign_names(self) -> list[tuple[int, str]]:
        """(cid, name) of every campaign, newest first."""
        names = cast(dict[str, str], self._redis.hgetall(keys.CAMPAIGN_NAMES))
        return sorted(((int(cid), name) for cid, name in names.items()), reverse=True)

    def campaign_figures(self, cid: int) -> dict[str, float]:
        return self.campaign_figures_many([cid])[0]

    def campaign_figures_many(self, cids: Sequence[int]) -> list[dict[str, float]]:
        """Each campaign's counters (lib.lua: campaign_add), by figure name."""
        pipe = self._redis.pipeline(transaction=False)
        for cid in cids:
            pipe.hmget(keys.CAMPAIGN_STATS, [f"{cid}:{name}" for name in CAMPAIGN_FIGURES])
        return [
            {name: float(v) for name, v in zip(CAMPAIGN_FIGURES, values, strict=True) if v}
            for values in pipe.execute()
        ]

    def due(self, zset: str, until: float, limit: int) -> list[tuple[str, float]]:
        """Entries of a due set (``keys.DUE`` or ``keys.WEBHOOKS_DUE``) due by ``until``."""
        rows = cast(
            list[tuple[str, float]],
            self._redis.zrangebyscore(zset, "-inf", until, start=0, num=limit, withscores=True),
        )
        return [(str(member), float(score)) for member, score in rows]

    def schedule_stats(self) -> tuple[int, float]:
        """(jobs in the schedule, how long the most overdue one has been due, else 0)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(keys.SCHEDULE)
        pipe.zrange(keys.SCHEDULE, 0, 0, withscores=True)
        size, first = pipe.execute()
        oldest = max(0.0, now_s() - float(first[0][1])) if first else 0.0
        return int(size), oldest

    def dead_letters(self, queue: str, limit: int = 100) -> list[tuple[str, float]]:
        """(job id, when it became a dead letter) of ``queue``, oldest first."""
        rows = cast(
            list[tuple[str, float]],
            self._redis.zrange(keys.dead_letters(queue), 0, limit - 1, withscores=True),
        )
        return [(str(member), float(score)) for member, score in rows]

    def dead_letter_counts(self) -> dict[str, int]:
        pipe = self._redis.pipeline(transaction=False)
        for queue in keys.ALL_QUEUES:
            pipe.zcard(keys.dead_letters(queue))
        return dict(zip(keys.ALL_QUEUES, (int(n) for n in pipe.execute()), strict=True))

    def queue_depths(self) -> dict[str, int]:
        """Messages outstanding on each Dramatiq queue: queued or taken by a worker."""
        pipe = self._redis.pipeline(transaction=False)
        for queue in keys.ALL_QUEUES:
            pipe.hlen(keys.dramatiq_messages(queue))
        return dict(zip(keys.ALL_QUEUES, (int(n) for n in pipe.execute()), strict=True))

    def ping(self) -> bool:
        return bool(self._redis.ping())

    def server_version(self) -> str | None:
        """The Redis server's version (``7.2.4``), or None when it cannot be reached now."""
        try:
            return str(self._redis.info("server")["redis_version"])
        except redis.RedisError:
            return None

    def close(self) -> None:
        self._redis.close()

    # --- workers, balance: process-level keys -------------------------------------------

    def beat(self, worker_id: str, *, now: float | None = None) -> None:
        """A worker process is alive (``vc:workers``, scored in ms)."""
        self._redis.zadd(keys.WORKERS, {worker_id: int((now or now_s()) * 1000)})

    def workers(self, *, since: float) -> list[str]:
        """Worker ids with a heartbeat since ``since`` (epoch seconds)."""
        return [str(w) for w in self._redis.zrangebyscore(keys.WORKERS, int(since * 1000), "+inf")]

    def dead_workers(self, *, before: float, limit: int = 100) -> list[str]:
        return [
            str(w)
            for w in self._redis.zrangebyscore(
                keys.WORKERS, "-inf", int(before * 1000), start=0, num=limit
            )
        ]

    def recover_worker(self, worker_id: str) -> int:
        """Put a dead worker's unacknowledged Dramatiq messages back on their queues."""
        return int(
            self._recover(keys=_recover_keys(worker_id), args=[worker_id], client=self._redis)
        )

    @property
    def _recover(self) -> Script:
        script = getattr(self, "_recover_script", None)
        if script is None:
            script = self._redis.register_script(RECOVER_WORKER)
            self._recover_script = script
        return script

    # --- API token quotas ---------------------------------------------------------------------

    def take_quota(
        self, key: str, cost: int, quota: tuple[int, int], *, now: float | None = None
    ) -> float:
        """Take ``cost`` calls from ``quota`` (calls, seconds) at ``key`` (a sliding-window
        log: no window of that many seconds ever holds more calls); 0.0 when taken, else the
        seconds until they fit (nothing taken), :data:`NEVER` for more than the whole quota."""
        script = getattr(self, "_quota_script", None)
        if script is None:
            script = self._quota_script = self._redis.register_script(QUOTA)
        return _quota_wait(script(keys=[key], args=_quota_args(cost, quota, now)))

    # --- campaigns --------------------------------------------------------------------------

    def reserve_campaign(self, name: str, count: int = 1) -> tuple[int, int]:
        """(the campaign's number, the first of ``count`` places reserved in it), creating the
        campaign on its first job. Places are never given twice (a gap is harmless)."""
        cid, first = self._reserve(
            keys=[keys.CAMPAIGNS, keys.CAMPAIGN_NAMES, keys.CAMPAIGN_SEQ], args=[name, count]
        )
        return int(cid), int(first)

    @property
    def _reserve(self) -> Script:
        script = getattr(self, "_reserve_script", None)
        if script is None:
            script = self._redis.register_script(RESERVE_CAMPAIGN)
            self._reserve_script = script
        return script

    def activity(self, minutes: Sequence[int]) -> list[dict[str, int]]:
        """The activity counters of each minute (epoch seconds // 60), in the order given."""
        pipe = self._redis.pipeline(transaction=False)
        for minute in minutes:
            pipe.hgetall(keys.activity(minute * 60))
        return [{str(k): int(v) for k, v in row.items()} for row in pipe.execute()]

    def save_balance(self, vnd: float) -> None:
        self._redis.hset(keys.ESMS_BALANCE, mapping={"vnd": vnd, "at": now_s()})

    def balance(self) -> dict[str, str]:
        return cast(dict[str, str], self._redis.hgetall(keys.ESMS_BALANCE))

    def take_balance_turn(self, interval_s: int) -> bool:
        """True for one caller per ``interval_s`` across all processes."""
        return bool(self._redis.set(keys.BALANCE_LOCK, "1", nx=True, ex=interval_s))

    # --- console sessions (producer.console) -------------------------------------------

    def open_console_session(self, tid: str, sid: str, *, ends_at: float, now: float) -> None:
        """Record a console session of token ``tid`` until ``ends_at``; of that token's
        sessions, ended ones leave and only the newest CONSOLE_SESSIONS_PER_TOKEN stay."""
        key = keys.console_sessions(tid)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {keys.console_session_member(sid): ends_at})
        pipe.zremrangebyrank(key, 0, -keys.CONSOLE_SESSIONS_PER_TOKEN - 1)
        pipe.expireat(key, int(ends_at) + 1)
        pipe.execute()

    def console_session_open(self, tid: str, sid: str, *, now: float) -> bool:
        """True while the session is recorded (not logged out, not pushed out) and not ended."""
        ends_at = self._redis.zscore(keys.console_sessions(tid), keys.console_session_member(sid))
        return ends_at is not None and float(ends_at) > now

    def end_console_session(self, tid: str, sid: str) -> None:
        self._redis.zrem(keys.console_sessions(tid), keys.console_session_member(sid))


def _recover_keys(worker_id: str) -> list[str]:
    out = [keys.WORKERS, keys.HEARTBEATS]
    for queue in keys.ALL_QUEUES:
        out += [
            keys.dramatiq_acks(worker_id, queue),
            keys.dramatiq_queue(queue),
            keys.dramatiq_messages(queue),
        ]
    return out


MAX_BATCH = 64  # steps in one script of apply_together: a batch holds Redis ~1-2 ms at most
QUOTA = (scripts.LUA_DIR / "quota.lua").read_text()  # an API client's quota (sliding log)
NEVER = math.inf  # a quota's wait for a cost above its whole allowance


def _quota_args(cost: int, quota: tuple[int, int], now: float | None = None) -> list[int]:
    calls, window_s = quota
    return [round((now_s() if now is None else now) * 1000), cost, calls, window_s * 1000]


def _quota_wait(reply: Any) -> float:
    taken, wait_ms = reply
    if int(taken):
        return 0.0
    return NEVER if int(wait_ms) < 0 else max(int(wait_ms), 1) / 1000


# A campaign's number (assigned on its first job) and a range of places in it.
# KEYS: campaigns (name → cid), names (cid → name), seq (cid → last place); ARGV: name, count
RESERVE_CAMPAIGN = """
local cid = redis.call('HGET', KEYS[1], ARGV[1])
if not cid then
  cid = redis.call('HINCRBY', KEYS[1], '\\0next', 1)
  redis.call('HSET', KEYS[1], ARGV[1], cid)
  redis.call('HSET', KEYS[2], cid, ARGV[1])
end
local last = redis.call('HINCRBY', KEYS[3], cid, tonumber(ARGV[2]))
return {tonumber(cid), last - tonumber(ARGV[2]) + 1}
"""


# Dramatiq's own maintenance (dispatch.lua) for one dead worker: its fetched but unacked
# messages go back on their queues. Dramatiq does this only after a 60 s heartbeat timeout
# and a 1-in-1,000 chance per command; voicecall's workers beat every second.
RECOVER_WORKER = """
local moved = 0
for i = 3, #KEYS, 3 do
  local ids = redis.call('SMEMBERS', KEYS[i])
  for _, id in ipairs(ids) do
    if redis.call('HEXISTS', KEYS[i + 2], id) == 1 then
      redis.call('RPUSH', KEYS[i + 1], id)
      moved = moved + 1
    end
  end
  redis.call('DEL', KEYS[i])
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return moved
"""


class AsyncJobStore:
    """The asyncio twin of :class:`JobStore` for the worker's send engine and the API's
    intake: the same operations, one awaited round trip each."""

    def __init__(self, client: redis.asyncio.Redis, config: StoreConfig | None = None) -> None:
        self._redis = client
        self.config = config or StoreConfig()
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(scripts.script_source(name)) for name in scripts.SCRIPTS
        }
        self._batch_scripts: dict[str, AsyncScript] = {
            name: client.register_script(scripts.batch_source(name)) for name in scripts.BATCHABLE
        }
        self._waiting: dict[str, list[tuple[Op, asyncio.Future[Step]]]] = {}
        self._flushes: dict[str, asyncio.Task[None]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> AsyncJobStore:
        return cls.from_url(settings.redis_url, StoreConfig.from_settings(settings))

    @classmethod
    def from_url(cls, url: str, config: StoreConfig | None = None, **options: Any) -> AsyncJobStore:
        client = redis.asyncio.Redis.from_url(
            url, decode_responses=True, **_client_options(options)
        )
        return cls(client, config)

    async def apply(self, op: Op, *, now: float | None = None) -> Step:
        at = now_s() if now is None else now
        reply = await self._scripts[op.script](
            keys=_keys(op, at), args=_args(op, self.config, at), client=self._redis
        )
        return Step.of(reply)

    async def apply_together(self, op: Op) -> Step:
        """:meth:`apply`, sharing one round trip with the steps of the same operation that are
        awaited meanwhile on this loop: the first goes at once, those that come while it is in
        flight go together next, in one script (scripts.batch_source). Each step is still
        atomic on its own. For the worker's busiest step (``scripts.BATCHABLE``)."""
        future: asyncio.Future[Step] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(op.script, []).append((op, future))
        if op.script not in self._flushes:
            self._flushes[op.script] = asyncio.create_task(self._flush(op.script))
        return await future

    async def _flush(self, script: str) -> None:
        try:
            while waiting := self._waiting.get(script):
                batch, self._waiting[script] = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
                try:
                    steps = await self._apply_batch(script, [op for op, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise  # cancelled: the loop is closing
                    continue
                for (_, future), step in zip(batch, steps, strict=True):
                    if not future.done():  # its caller may have been cancelled
                        future.set_result(step)
        finally:
            del self._flushes[script]

    async def _apply_batch(self, script: str, ops: Sequence[Op]) -> list[Step]:
        if len(ops) == 1:
            return [await self.apply(ops[0])]
        at = now_s()
        declared: list[str] = []
        args: list[Any] = []
        for op in ops:
            op_keys, op_args = _keys(op, at), _args(op, self.config, at)
            declared += op_keys
            args += [len(op_keys), len(op_args), *op_args]
        replies = await self._batch_scripts[script](keys=declared, args=args, client=self._redis)
        return [Step.of(reply) for reply in replies]

    async def get(self, job_id: str) -> JobRecord | None:
        raw = cast(str | None, await self._redis.get(keys.job(job_id)))
        return JobRecord.parse(raw) if raw else None

    async def reserve_campaign(self, name: str, count: int = 1) -> tuple[int, int]:
        """See :meth:`JobStore.reserve_campaign`."""
        script = getattr(self, "_reserve_script", None)
        if script is None:
            script = self._redis.register_script(RESERVE_CAMPAIGN)
            self._reserve_script = script
        cid, first = await script(
            keys=[keys.CAMPAIGNS, keys.CAMPAIGN_NAMES, keys.CAMPAIGN_SEQ], args=[name, count]
        )
        return int(cid), int(first)

    async def take_quota(self, key: str, cost: int, quota: tuple[int, int]) -> float:
        """See :meth:`JobStore.take_quota`."""
        script = getattr(self, "_quota_script", None)
        if script is None:
            script = self._quota_script = self._redis.register_script(QUOTA)
        return _quota_wait(await script(keys=[key], args=_quota_args(cost, quota)))

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


def job_ids(rows: Iterable[tuple[str, float]]) -> list[str]:
    return [job_id for job_id, _ in rows]
