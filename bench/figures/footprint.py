"""Figure 7: footprint, from what figures 1, 3, 4 and 5 measured on the way.

Redis ``used_memory`` before and after 50,000 far jobs (figure 3) and after the callback
case of figure 4 (jobs completed, polls drained); RSS of each Dramatiq worker process (the
supervisor and the metrics exporter left out), peak while sending.
"""

from __future__ import annotations

from bench.core import Context, Row, fmt_bytes
from bench.figures.search import index_row

NUMBER, TITLE = "7", "Footprint"


def _rss(values: list[int]) -> str:
    return f"{fmt_bytes(max(values))} (max of {len(values)})" if values else "n/a"


def _sizes(sizes: dict[str, float]) -> str:
    return (
        ", ".join(f"{name.replace('_', ' ')} {fmt_bytes(v)}" for name, v in sizes.items()) or "n/a"
    )


def run(ctx: Context) -> list[Row]:
    """Three rows, and 7d when figure 10 ran; a fact another figure did not leave reads n/a."""
    indexes = index_row(ctx)
    return _rows(ctx) + ([indexes] if indexes else [])


def _rows(ctx: Context) -> list[Row]:
    f = ctx.facts
    sched, delayed = f.get("scheduled_bytes"), f.get("delayed_message_bytes")
    finished = f.get("finished_bytes")
    loaded = f.get("worker_rss_loaded") or f.get("worker_rss_idle_load") or []
    bare = f.get("bare_rss") or []
    na = "n/a"
    return [
        Row(
            figure=f"{NUMBER}a",
            name=f"{TITLE}: Redis per scheduled job",
            value=fmt_bytes(sched) if sched is not None else na,
            reference=(
                f"plain Dramatiq delayed message {fmt_bytes(delayed)}"
                if delayed is not None
                else na
            ),
            ratio=sched / delayed if sched and delayed else None,
            target="none set",
            met=None,
            notes="used_memory growth (less client, AOF and Lua buffers) over figure 3's far jobs: job hash and schedule entry",
            data={"scheduled_bytes": sched, "delayed_message_bytes": delayed},
        ),
        Row(
            figure=f"{NUMBER}b",
            name=f"{TITLE}: Redis per finished job",
            value=fmt_bytes(finished) if finished is not None else na,
            reference="kept FINISHED_RETENTION_DAYS (30 days by default)",
            ratio=None,
            target="none set",
            met=None,
            notes=(
                "Redis used_memory growth (less client, AOF and Lua buffers) per completed job, from figure 4's callback case; "
                f"MEMORY USAGE of its keys: {_sizes(f.get('finished_key_sizes', {}))}, plus the "
                "per-phone limiter key (expires with its window) and allocator overhead"
            ),
            data={"finished_bytes": finished},
        ),
        Row(
            figure=f"{NUMBER}c",
            name=f"{TITLE}: worker RSS per process",
            value=_rss(loaded),
            reference=f"bare Dramatiq worker {_rss(bare)}",
            ratio=max(loaded) / max(bare) if loaded and bare else None,
            target="none set",
            met=None,
            notes="peak VmRSS while sending (figure 5 for voicecall, figure 1 for the bare actor)",
            data={"voicecall": loaded, "bare": bare},
        ),
    ]
