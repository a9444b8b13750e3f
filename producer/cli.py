"""``voicecall enqueue | status | cancel | import``: the producer's commands.

Each ``*_main(argv)`` parses its own arguments and returns the exit code: 0 done, 1 refused
(invalid input, unknown job, cancel refused, bad CSV rows, Redis unreachable), 2 usage or
settings (argparse, the dispatcher's SettingsError). Only ``REDIS_URL`` is needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from producer import call_fields, csv_import
from producer.client import CancelRefused, FieldRefused, JobNotFound, VoiceCallClient
from producer.intake import DuplicateJobId, IdempotencyConflict
from producer.progress import Progress
from voicecall.config.clients import CLI_CLIENT
from voicecall.errors import IntakeError
from voicecall.formats.text import escape_controls
from voicecall.job.contract import validation_context, with_campaign
from voicecall.store.connection import RedisError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def make_client() -> VoiceCallClient:
    """A client from the environment (``REDIS_URL``), named ``cli`` (voicecall.config.clients)."""
    return VoiceCallClient.from_env(client_name=CLI_CLIENT)


def _fail(message: str, code: int = EXIT_REFUSED) -> int:
    print(f"voicecall: {message}", file=sys.stderr)
    return code


def _guarded(action: Callable[[], int]) -> int:
    """Run ``action``, turning the producer's refusals into a message and exit code 1."""
    try:
        return action()
    except (IdempotencyConflict, DuplicateJobId, CancelRefused) as exc:
        return _fail(str(exc))
    except FieldRefused as exc:
        return _fail(f"invalid {exc.field}: {exc.rule}")
    except IntakeError as exc:  # the job contract's rules, in plain words (producer.fields)
        for err in exc.errors:
            print(f"invalid {err['field']}: {err['message']}", file=sys.stderr)
        return EXIT_REFUSED
    except JobNotFound as exc:
        return _fail(f"no job {exc.args[0]!r}")
    except RedisError as exc:
        return _fail(f"Redis unreachable or failing ({type(exc).__name__}: {exc})")


# --- enqueue -------------------------------------------------------------------------------


def _enqueue_parser() -> argparse.ArgumentParser:
    """A subcommand per kind, its flags the job contract's fields (producer.call_fields)."""
    parser = argparse.ArgumentParser(
        prog="voicecall enqueue",
        description="Enqueue one call and print the job as JSON.",
        epilog="Exit codes: 0 enqueued (or replayed), 1 refused, 2 usage or settings.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="otp|record|template")
    for short, model in call_fields.KIND_MODELS.items():
        about = (model.__doc__ or "").split("\n", 1)[0]
        sub = kinds.add_parser(short, help=about, description=about)
        call_fields.add_flags(sub, model, call_fields.COMMON_FIELDS)
        call_fields.add_flags(sub, model, call_fields.PARAMETER_FIELDS[short])
    return parser


def enqueue_main(argv: Sequence[str]) -> int:
    """``voicecall enqueue otp|record|template --phone ... [options]``"""
    args = vars(_enqueue_parser().parse_args(list(argv)))
    request = call_fields.request_of(args.pop("kind"), args)

    def run() -> int:
        job = make_client().enqueue(request, trace_id=None).json_body()
        print(json.dumps(job, indent=2, ensure_ascii=False))
        return EXIT_OK

    return _guarded(run)


# --- status and cancel ---------------------------------------------------------------------


def _lookup_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("id", nargs="?", help="the job id")
    parser.add_argument("--idempotency-key", help="find the job by its idempotency key")
    parser.add_argument("--smsid", help="find the job by its eSMS SMSID")
    parser.add_argument(
        "--client",
        help=f"whose --idempotency-key it is: an API client's name (default: {CLI_CLIENT}, "
        "the client these commands enqueue as)",
    )
    return parser


def _find(client: VoiceCallClient, args: argparse.Namespace) -> dict[str, Any]:
    if args.id:
        return client.get(args.id).json_body()
    return client.find(
        idempotency_key=args.idempotency_key, smsid=args.smsid, client=args.client
    ).json_body()


def format_job(job: dict[str, Any]) -> str:
    """The job and its history for a person to read; control characters in stored text (a
    cancel reason, an eSMS message, a label) are printed as escapes, never raw."""
    error = job.get("error") or {}
    call = job.get("call") or {}
    rows = [
        ("id", job["id"]),
        ("kind", job["kind"]),
        ("phone", job["phone"]),
        ("state", job["state"] + (f" ({job['outcome']})" if job.get("outcome") else "")),
        ("schedule", f"{job['schedule']}, due {job['due_at']}"),
        ("created", job["created_at"]),
        ("expires", job.get("expires_at")),
        ("finished", job.get("finished_at")),
        ("attempts", job.get("attempts")),
        ("smsid", job.get("smsid")),
        ("client", job.get("client")),
        ("idem. key", job.get("idempotency_key")),
        ("trace id", job.get("trace_id")),
        ("otel trace", job.get("otel_trace_id")),
        ("labels", ", ".join(f"{k}={v}" for k, v in job.get("labels", {}).items()) or None),
        ("reason", job.get("reason")),
        ("error", " ".join(str(v) for v in (error.get("code"), error.get("message")) if v) or None),
        (
            "call",
            call.get("status")
            and f"{call['status']}, {call.get('duration_s')} s, {call.get('price_vnd')} VND",
        ),
        ("request", json.dumps(job.get("request", {}), ensure_ascii=False)),
    ]
    lines = [f"{name:<10} {value}" for name, value in rows if value not in (None, "")]
    history = job.get("history") or []
    if history:
        lines.append("history:")
        for entry in history:
            extra = {k: v for k, v in entry.items() if k not in ("at", "state", "note")}
            note = " ".join(
                part for part in (entry.get("note"), json.dumps(extra) if extra else "") if part
            )
            lines.append(f"  {entry['at']}  {entry['state']:<10} {note}".rstrip())
    return "\n".join(escape_controls(line) for line in lines)


def status_main(argv: Sequence[str]) -> int:
    """``voicecall status ID [--json]`` (or ``--idempotency-key K`` / ``--smsid S``)."""
    parser = _lookup_parser("voicecall status", "Show a job and its history.")
    parser.add_argument("--json", action="store_true", help="print the job as JSON")
    args = parser.parse_args(list(argv))
    if not (args.id or args.idempotency_key or args.smsid):
        parser.error("give a job id, --idempotency-key or --smsid")

    def run() -> int:
        job = _find(make_client(), args)
        text = json.dumps(job, indent=2, ensure_ascii=False) if args.json else format_job(job)
        print(escape_controls(text, json=True) if args.json else text)
        return EXIT_OK

    return _guarded(run)


def cancel_main(argv: Sequence[str]) -> int:
    """``voicecall cancel ID [--reason TEXT]``: exit 1 with the reason when refused."""
    parser = argparse.ArgumentParser(
        prog="voicecall cancel",
        description="Cancel a job that has not been handed to eSMS yet.",
        epilog="Exit codes: 0 cancelled, 1 refused or unknown job, 2 usage or settings.",
    )
    parser.add_argument("id", help="the job id")
    parser.add_argument("--reason", default="cancelled from the command line")
    args = parser.parse_args(list(argv))

    def run() -> int:
        job = make_client().cancel(args.id, reason=args.reason).json_body()
        print(f"cancelled {job['id']} (was {job['history'][-2]['state']})")
        return EXIT_OK

    return _guarded(run)


# --- import --------------------------------------------------------------------------------


def _import_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="voicecall import",
        description="Validate every row of a CSV file of calls, then enqueue the good ones.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(csv_import.__doc__ or "").split("\n\n", 1)[1]
        + "\nColumns:\n"
        + call_fields.columns_help()
        + "\n\nExit codes: 0 every row imported, 1 some rows bad or refused, 2 usage or settings.",
    )


def import_main(argv: Sequence[str]) -> int:
    """``voicecall import FILE.csv [--strict] [--dry-run]``"""
    parser = _import_parser()
    parser.add_argument("file", type=Path, help="the CSV file (UTF-8, header row first)")
    parser.add_argument("--strict", action="store_true", help="enqueue nothing if any row is bad")
    parser.add_argument("--dry-run", action="store_true", help="validate only")
    parser.add_argument(
        "--campaign", metavar="NAME", help="put every row in campaign NAME (its campaign label)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(list(argv))
    if args.campaign is not None:
        try:
            with_campaign({}, args.campaign)
        except ValueError as exc:
            parser.error(f"--campaign {exc}")
    client = make_client()
    progress = Progress(enabled=not args.no_progress)
    summary = csv_import.Summary()

    def report(bad: csv_import.BadRow) -> None:
        progress.finish()
        reasons = "; ".join(f"{e['field']}: {e['message']}" for e in bad.errors)
        print(f"{args.file}:{bad.line}: {reasons}", file=sys.stderr)

    importer = csv_import.Importer(
        client,
        validation_context(client.settings),
        on_bad=report,
        on_progress=progress,
        campaign=args.campaign,
    )
    try:
        importer.validate(args.file, summary)
        if summary.bad and args.strict:
            progress.finish()
            print(f"{summary.line()}\nstrict: {summary.bad} bad row(s), nothing enqueued")
            return EXIT_REFUSED
        if not args.dry_run:
            importer.enqueue(args.file, summary)
    except csv_import.CsvFormatError as exc:
        progress.finish()
        return _fail(str(exc), EXIT_USAGE)
    except RedisError as exc:
        progress.finish()
        print(summary.line())
        return _fail(
            f"Redis failed mid-import, stopped ({exc}); rows with an idempotency_key can be re-imported safely"
        )
    progress.finish()
    stamp = datetime.now(UTC).strftime("%H:%M:%SZ")
    suffix = (
        " (dry run: nothing enqueued)"
        if args.dry_run
        else f" (trace id {summary.trace_id}, {stamp})"
    )
    print(summary.line() + suffix)
    return EXIT_REFUSED if summary.bad or summary.failed else EXIT_OK
