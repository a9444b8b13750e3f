"""``voicecall jobs list | campaign list | campaign show NAME | export``: finding jobs from the
command line, with the filters of ``GET /v1/calls`` as options (``--state``, ``--label``,
``--created-from``, ...).

Tables mask phone numbers (``8490***4567``); ``--json`` prints jobs as the API does. Exit
codes as the other producer commands: 0 done, 1 refused (bad filter, unknown campaign, Redis
unreachable), 2 usage or settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from producer.cli import EXIT_OK, _fail, make_client
from producer.progress import Progress
from producer.search import walk
from producer.search.campaigns import CampaignSummary
from producer.search.filters import Filters
from producer.search.query import FILTER_PARAMS, parse_filters
from voicecall.errors import CampaignNotFound, SearchError
from voicecall.formats import shown
from voicecall.formats.phones import mask_phone
from voicecall.job.records import JobView
from voicecall.store.connection import RedisError

_REPEATABLE = ("state", "kind", "outcome", "label")
_HELP = {
    "state": "any of these states (repeat, or a,b)",
    "kind": "any of these kinds",
    "outcome": "any of these outcomes",
    "label": "KEY:VALUE that must match (repeat for several)",
    "phone": "one phone number, in any form intake takes",
    "idempotency_key": "the job made with this key (by --client; default: cli)",
    "client": "the API client that made the job (a name of API_TOKENS, python or cli)",
}


def _add_filters(parser: argparse.ArgumentParser, names: Sequence[str] = FILTER_PARAMS) -> None:
    group = parser.add_argument_group("filters (those of GET /v1/calls)")
    for name in names:
        option = "--" + name.replace("_", "-")
        if name in _REPEATABLE:
            group.add_argument(option, dest=name, action="append", help=_HELP[name])
        else:
            help_text = _HELP.get(
                name, "a time: ISO 8601 (in TIMEZONE without an offset), or epoch seconds"
            )
            group.add_argument(option, dest=name, help=help_text)


def _filters(args: argparse.Namespace, zone: tzinfo) -> Filters:
    pairs = [(name, value) for name in FILTER_PARAMS for value in _values(getattr(args, name))]
    return parse_filters(pairs, zone=zone)[0]


def _values(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _refusal(exc: Exception) -> int:
    if isinstance(exc, SearchError):
        return _fail(f"--{exc.param.replace('_', '-')} {exc.rule}")
    if isinstance(exc, CampaignNotFound):
        return _fail(str(exc))
    return _fail(f"Redis unreachable or failing ({type(exc).__name__}: {exc})")


# --- jobs list -------------------------------------------------------------------------------


def _time(moment: datetime | None, zone: tzinfo) -> str:
    return shown.short(moment, zone) if moment else "-"


def format_table(jobs: Sequence[JobView], zone: tzinfo = UTC) -> str:
    """Jobs as a table, phone numbers masked, times in ``zone`` (the console's format)."""
    header = ("ID", "CLIENT", "KIND", "STATE", "OUTCOME", "PHONE", "CREATED", "LABELS")
    rows = [
        (
            job.id,
            job.client or "-",
            job.kind.value,
            job.state.value,
            job.outcome.value if job.outcome else "-",
            mask_phone(job.phone),
            _time(job.created_at, zone),
            ",".join(f"{k}={v}" for k, v in job.labels.items()) or "-",
        )
        for job in jobs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def jobs_main(argv: Sequence[str]) -> int:
    """``voicecall jobs list [FILTERS] [--limit N] [--cursor C] [--json]``"""
    parser = argparse.ArgumentParser(prog="voicecall jobs", description="List jobs, newest first.")
    parser.add_argument("action", choices=["list"])
    _add_filters(parser)
    parser.add_argument("--limit", type=int, default=50, help=f"1 to {walk.MAX_LIMIT}")
    parser.add_argument("--cursor", help="the cursor the previous page printed")
    parser.add_argument("--json", action="store_true", help="print the page as the API does")
    args = parser.parse_args(list(argv))
    try:
        client = make_client()
        page = walk.search(
            client.store,
            _filters(args, client.settings.zone),
            client.caller,
            limit=args.limit,
            cursor=args.cursor,
        )
    except (SearchError, RedisError) as exc:
        return _refusal(exc)
    jobs = [JobView.of(job, history=False) for job in page.jobs]
    if args.json:
        body = {"data": [job.json_body() for job in jobs], "next_cursor": page.cursor}
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(format_table(jobs, client.settings.zone) if jobs else "no jobs match")
    if page.cursor:
        print(f"more: add --cursor {page.cursor}", file=sys.stderr)
    return EXIT_OK


# --- campaign list | show ----------------------------------------------------------------------


def format_campaign(summary: CampaignSummary, zone: tzinfo = UTC) -> str:
    """A campaign's figures for a person to read."""

    def share(part: float | None) -> str:
        return "-" if part is None else f"{part:.1%}"

    states = ", ".join(f"{k} {v}" for k, v in summary.by_state.items() if v) or "-"
    outcomes = ", ".join(f"{k} {v}" for k, v in summary.by_outcome.items() if v) or "-"
    average = summary.average_duration_s
    rows = [
        ("campaign", summary.name),
        ("jobs", f"{summary.total} ({summary.finished} finished, {share(summary.progress)})"),
        ("states", states),
        ("outcomes", outcomes),
        ("answered", f"{summary.answered} ({share(summary.answer_rate)} of completed calls)"),
        ("duration", f"{summary.duration_s} s in all, {average if average is not None else '-'} s"
                     " per answered call"),
        ("cost", f"{summary.cost_vnd:,.0f} VND"),
        ("first sent", _time(summary.first_sent_at, zone) if summary.first_sent_at else "-"),
        ("last sent", _time(summary.last_sent_at, zone) if summary.last_sent_at else "-"),
    ]  # fmt: skip
    return "\n".join(f"{name:<11}{value}" for name, value in rows)


def campaign_main(argv: Sequence[str]) -> int:
    """``voicecall campaign list | show NAME [--json]``"""
    parser = argparse.ArgumentParser(
        prog="voicecall campaign",
        description="Campaigns (jobs with the same `campaign` label) and their figures.",
    )
    parser.add_argument("action", choices=["list", "show"])
    parser.add_argument("name", nargs="?", help="the campaign (for show)")
    parser.add_argument("--json", action="store_true", help="print the figures as the API does")
    args = parser.parse_args(list(argv))
    if args.action == "show" and not args.name:
        parser.error("show needs the campaign's NAME")
    try:
        client = make_client()
        found = [client.campaign(args.name)] if args.action == "show" else client.campaigns()
    except (CampaignNotFound, RedisError) as exc:
        return _refusal(exc)
    if args.json:
        data: Any = [summary.model_dump(mode="json") for summary in found]
        print(json.dumps(data[0] if args.action == "show" else {"data": data}, indent=2))
    elif args.action == "show":
        print(format_campaign(found[0], client.settings.zone))
    else:
        for summary in found:
            print(
                f"{summary.name}  {summary.total} jobs, {summary.progress:.0%} finished, "
                f"answer rate {'-' if summary.answer_rate is None else f'{summary.answer_rate:.1%}'}"
            )
        if not found:
            print("no campaigns yet")
    return EXIT_OK


# --- export ----------------------------------------------------------------------------------


def export_main(argv: Sequence[str]) -> int:
    """``voicecall export [FILTERS] [-o FILE] [--no-progress]``"""
    parser = argparse.ArgumentParser(
        prog="voicecall export",
        description="Write every job the filters match as CSV (as GET /v1/calls/export does).",
    )
    _add_filters(parser)
    parser.add_argument("-o", "--output", type=Path, help="the file to write (default: stdout)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(list(argv))
    progress = Progress(enabled=not args.no_progress)
    try:
        client = make_client()
        filters = _filters(args, client.settings.zone)
        total = walk.count(client.store, filters)
        out = args.output.open("w", newline="", encoding="utf-8") if args.output else sys.stdout
        try:
            rows = client.export(
                out, on_progress=lambda done: progress("exporting", done, total), **_kwargs(args)
            )
        finally:
            if args.output:
                out.close()
    except (SearchError, RedisError) as exc:
        progress.finish()
        return _refusal(exc)
    except OSError as exc:
        progress.finish()
        return _fail(f"cannot write {args.output}: {exc.strerror}")
    progress("exporting", rows, rows)
    progress.finish()
    print(f"exported {rows} jobs" + (f" to {args.output}" if args.output else ""), file=sys.stderr)
    return EXIT_OK


def _kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in FILTER_PARAMS if getattr(args, name) is not None}
