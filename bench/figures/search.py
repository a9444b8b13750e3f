"""Figure 10: finding jobs with 200,000 finished jobs in Redis, spread over 20 campaigns (one
of 50,000), all through the real API.

Redis is filled through the store's own operations, pipelined (create, claim, submit,
complete: each job goes the way a worker takes it), not through HTTP; the Dramatiq messages
intake writes are dropped after each batch, as consumed. Then, one request at a time:

- 10a: ``GET /v1/calls`` by state (and outcome), by campaign label, by phone, 50 per page,
  following the cursor a few pages in; p50 and p99 per kind of query.
- 10b: ``GET /v1/campaigns/{name}`` of the 50,000-job campaign.
- 10c: ``GET /v1/calls/export`` of every job (rows per second of the whole download).

The indexes' memory per job (figure 7d) is left in ``ctx.facts`` for figure 7.
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx

from bench.core import Context, Row, fmt_bytes, percentile
from bench.harness import API_TOKEN
from producer.intake import Intake
from voicecall.config.settings import load_settings
from voicecall.job import keys, lifecycle
from voicecall.job.contract import CallRequestAdapter, validation_context
from voicecall.job.states import Outcome

NUMBER, TITLE = "10", "Search"
BATCH = 2000  # jobs per pipelined round of each operation
PAGES = 4  # pages followed per list query
LIST_P99_MS, SUMMARY_MS, EXPORT_ROWS_S, INDEX_BYTES = 50.0, 20.0, 20_000.0, 250.0
_OWNER = "bench-filler"


def _rules() -> lifecycle.ClaimRules:
    return lifecycle.ClaimRules(
        owner=_OWNER,
        lease_s=600,
        lease_check_s=600,
        liveness_ms=600_000,
        early_s=1.0,
        grace_s=30,
        max_retries=8,
        retry_window_s=21600,
        max_window_s=85800,
        global_rate=0,
        phone_limit=0,
        phone_window_s=600,
    )


def _phone(i: int) -> str:
    return f"8490{i % 1_000_000:07d}"


def _outcome(rng: random.Random) -> tuple[Outcome, dict[str, Any]]:
    roll = rng.random()
    if roll < 0.7:
        duration = rng.randint(3, 120)
        price = 880.0 * (1 + duration // 60)
        return Outcome.ANSWERED, {"status": "ANSWERED", "duration_s": duration, "price_vnd": price}
    if roll < 0.95:
        return Outcome.NOT_ANSWERED, {"status": "NOANSWERED", "duration_s": 0, "price_vnd": 0.0}
    return Outcome.UNDELIVERED, {"status": "", "duration_s": 0, "price_vnd": 0.0}


def campaign_sizes(total: int, campaigns: int, big: int) -> list[int]:
    rest, others = total - big, campaigns - 1
    return [big] + [rest // others + (1 if i < rest % others else 0) for i in range(others)]


def fill(ctx: Context, total: int, campaigns: int, big: int) -> dict[str, Any]:
    """``total`` finished jobs in ``campaigns`` campaigns (the first of ``big`` jobs), about
    ten per phone; returns what the queries need."""
    stack = ctx.stack
    store, r = stack.store, stack.r
    settings = load_settings(redis_url=stack.redis.url)
    intake = Intake(settings, store)
    template = CallRequestAdapter.validate_python(
        {"kind": "record_call", "phone": "0901000000", "record_id": "rec-1"},
        context=validation_context(settings),
    )
    rules, rng = _rules(), random.Random(7)
    names = [f"campaign-{i:02d}" for i in range(campaigns)]
    plan = [name for name, size in zip(names, campaign_sizes(total, campaigns, big), strict=True)
            for _ in range(size)]  # fmt: skip
    rng.shuffle(plan)  # campaigns run side by side
    phones = max(total // 10, 1)
    started = time.monotonic()
    for start in range(0, total, BATCH):
        store.beat(_OWNER)
        jobs = []
        chunk = plan[start : start + BATCH]
        places: dict[str, list[int]] = {}
        for name in set(chunk):
            cid, first = store.reserve_campaign(name, chunk.count(name))
            places[name] = [cid, first]
        now = round(time.time(), 3)
        for offset, name in enumerate(chunk):
            i = start + offset
            request = template.model_copy(
                update={"phone": _phone(i % phones), "labels": {"campaign": name}}
            )
            cid, seq = places[name]
            places[name][1] += 1
            jobs.append(
                intake.record(request, client="bench", trace_id=None, now=now, place=(cid, seq))
            )
        store.apply_many([lifecycle.create(job, grace_s=30) for job in jobs])
        store.apply_many(
            [lifecycle.claim(j.id, rules=rules, queue=keys.QUEUE_BULK, limit_key=None,
                             quiet_until=0) for j in jobs]
        )  # fmt: skip
        poll_at = time.time() + 3600
        store.apply_many(
            [lifecycle.submit(j.id, smsid=f"sms-{j.id}", code=100, poll_at=poll_at, note="bench")
             for j in jobs]
        )  # fmt: skip
        completes = []
        for job in jobs:
            outcome, call = _outcome(rng)
            completes.append(
                lifecycle.complete(job.id, outcome=outcome, call=call, source="callback",
                                   smsid=f"sms-{job.id}", nonce=job.callback_nonce)
            )  # fmt: skip
        steps = store.apply_many(completes)
        assert all(step.verdict == "accepted" for step in steps), steps[:3]
        for queue in keys.ALL_QUEUES:  # the messages a worker would have consumed
            r.delete(keys.dramatiq_queue(queue), keys.dramatiq_messages(queue))
    return {"names": names, "phones": phones, "fill_s": time.monotonic() - started}


def _index_keys(r: Any) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {
        "state index": [keys.STATE_INDEX],
        "due set": [keys.DUE],
        "phone index": list(r.scan_iter(match=keys.phone_bucket("x").rsplit(":", 1)[0] + ":*",
                                        count=1000)),
        "campaign index": list(r.scan_iter(match=f"{keys.PREFIX}idx:c:*", count=1000)),
        "campaign counters": [keys.CAMPAIGNS, keys.CAMPAIGN_NAMES, keys.CAMPAIGN_SEQ,
                              keys.CAMPAIGN_STATS],
        "smsid lookup": list(r.scan_iter(match=keys.smsid_bucket("x").rsplit(":", 1)[0] + ":*",
                                         count=1000)),
        "idempotency lookup": list(r.scan_iter(match=keys.idempotency("*", "*"), count=1000)),
    }  # fmt: skip
    return groups


def index_bytes(r: Any, jobs: int) -> dict[str, float]:
    """MEMORY USAGE (every element sampled) of each index, per job."""
    sizes: dict[str, float] = {}
    for name, names in _index_keys(r).items():
        total = 0
        for start in range(0, len(names), 1000):
            pipe = r.pipeline(transaction=False)
            for key in names[start : start + 1000]:
                pipe.memory_usage(key, samples=0)
            total += sum(int(size or 0) for size in pipe.execute())
        sizes[name] = total / jobs
    return sizes


def _timed(http: httpx.Client, path: str, params: Any) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    answer = http.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return elapsed, body


def list_latencies(
    http: httpx.Client, queries: list[list[tuple[str, str]]]
) -> tuple[list[float], int]:
    """Each query's first ``PAGES`` pages (50 jobs each); (latencies in ms, jobs seen)."""
    latencies, seen = [], 0
    for query in queries:
        cursor = None
        for _ in range(PAGES):
            params = [*query, ("limit", "50")] + ([("cursor", cursor)] if cursor else [])
            ms, page = _timed(http, "/v1/calls", params)
            latencies.append(ms)
            seen += len(page["data"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
    return latencies, seen


def _ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 0.5):.1f} ms, p99 {percentile(values, 0.99):.1f} ms"


def run(ctx: Context) -> list[Row]:
    s, stack = ctx.sizes, ctx.stack
    stack.reset()
    total, big = s.search_jobs, s.search_big_campaign
    filled = fill(ctx, total, s.search_campaigns, big)
    names, rng = filled["names"], random.Random(11)
    sizes = index_bytes(stack.r, total)
    ctx.facts["index_bytes"] = sizes
    n = s.search_queries
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=120) as http:
        http.get("/v1/calls", params={"limit": 1}).raise_for_status()  # warm up
        by_kind = {
            "state": [[("state", "completed")], [("state", "completed"), ("outcome", "answered")],
                      [("state", "queued")]],
            "campaign": [[("label", f"campaign:{rng.choice(names)}")] for _ in range(n)],
            "phone": [[("phone", _phone(rng.randrange(filled["phones"])))] for _ in range(n)],
        }  # fmt: skip
        by_kind["state"] = (by_kind["state"] * n)[:n]
        lists = {kind: list_latencies(http, queries) for kind, queries in by_kind.items()}
        summary = [_timed(http, f"/v1/campaigns/{names[0]}", None) for _ in range(n)]
        assert summary[0][1]["total"] == big, summary[0][1]
        started, rows = time.perf_counter(), -1  # less the header
        with http.stream("GET", "/v1/calls/export") as answer:
            answer.raise_for_status()
            for line in answer.iter_lines():
                rows += bool(line)
        export_s = time.perf_counter() - started
    stack.reset()
    return _rows(ctx, lists, [ms for ms, _ in summary], rows, export_s, filled, sizes)


def _rows(
    ctx: Context,
    lists: dict[str, tuple[list[float], int]],
    summary_ms: list[float],
    rows: int,
    export_s: float,
    filled: dict[str, Any],
    sizes: dict[str, float],
) -> list[Row]:
    s = ctx.sizes
    worst = max(percentile(latencies, 0.99) for latencies, _ in lists.values())
    export_rate = rows / export_s
    loaded = (
        f"{s.search_jobs:,} finished jobs in {s.search_campaigns} campaigns (one of "
        f"{s.search_big_campaign:,}), filled in {filled['fill_s']:.0f} s"
    )
    return [
        Row(
            figure=f"{NUMBER}a",
            name=f"{TITLE}: GET /v1/calls",
            value="; ".join(f"by {kind} {_ms(lat)}" for kind, (lat, _) in lists.items()),
            reference=loaded + f"; 50 per page, up to {PAGES} pages per query",
            ratio=worst / LIST_P99_MS,
            target=f"p99 ≤ {LIST_P99_MS:g} ms for each",
            met=worst <= LIST_P99_MS,
            notes="one request at a time through the API; pages follow next_cursor",
            data={kind: {"ms": lat, "jobs": seen} for kind, (lat, seen) in lists.items()},
        ),
        Row(
            figure=f"{NUMBER}b",
            name=f"{TITLE}: campaign summary",
            value=_ms(summary_ms),
            reference=f"GET /v1/campaigns/NAME of the {s.search_big_campaign:,}-job campaign",
            ratio=percentile(summary_ms, 0.99) / SUMMARY_MS,
            target=f"≤ {SUMMARY_MS:g} ms",
            met=percentile(summary_ms, 0.99) <= SUMMARY_MS,
            notes="counters kept by each step; no job is read",
            data={"ms": summary_ms},
        ),
        Row(
            figure=f"{NUMBER}c",
            name=f"{TITLE}: export",
            value=f"{export_rate:,.0f} rows/s",
            reference=f"GET /v1/calls/export of all {rows:,} jobs in {export_s:.1f} s",
            ratio=export_rate / EXPORT_ROWS_S,
            target=f"≥ {EXPORT_ROWS_S:,.0f} rows/s",
            met=export_rate >= EXPORT_ROWS_S,
            notes="streamed CSV, read to the end by the client",
            data={"rows": rows, "seconds": export_s},
        ),
    ]


def index_row(ctx: Context) -> Row | None:
    """Figure 7d, from what this figure measured: every index's Redis bytes per job."""
    sizes = ctx.facts.get("index_bytes")
    if sizes is None:
        return None
    total = sum(sizes.values())
    return Row(
        figure="7d",
        name="Footprint: Redis indexes per job",
        value=fmt_bytes(total),
        reference=f"{ctx.sizes.search_jobs:,} finished jobs of figure 10",
        ratio=total / INDEX_BYTES,
        target=f"≤ {INDEX_BYTES:g} B",
        met=total <= INDEX_BYTES,
        notes="MEMORY USAGE (all elements sampled) per job: "
        + ", ".join(f"{name} {value:.0f} B" for name, value in sizes.items()),
        data=sizes,
    )
