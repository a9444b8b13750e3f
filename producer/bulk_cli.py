"""``voicecall jobs cancel [FILTERS] [--reason TEXT] [--yes]``: cancel every scheduled call the
filters match (a campaign: ``--label campaign:NAME``), as ``POST /v1/bulk/cancel-calls`` and the
console do (voicecall.store.bulk). It states the count and asks before it starts (``--yes``
answers for you; without a terminal it is required), works in chunks with progress on
stderr, and prints one summary line. ``voicecall jobs list``: producer.search_cli.

Exit codes: 0 done (also when some jobs had left ``scheduled`` meanwhile), 1 refused or
stopped, 2 usage or settings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from producer.bulk_api import CANCEL_PARAMS, describe, scheduled_ids
from producer.cli import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, _fail, make_client
from producer.progress import Progress
from producer.search.query import parse_filters
from producer.search_cli import _add_filters, _refusal, _values
from producer.search_cli import jobs_main as list_main
from voicecall.config.clients import CLI_CLIENT
from voicecall.errors import FieldRefused, SearchError
from voicecall.job.contract import check_cancel_reason
from voicecall.store import bulk
from voicecall.store.connection import RedisError


def jobs_main(argv: Sequence[str]) -> int:
    """``voicecall jobs list ...`` or ``voicecall jobs cancel ...``"""
    if list(argv[:1]) == ["cancel"]:
        return cancel_main(argv[1:])
    return list_main(argv)


def cancel_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="voicecall jobs cancel",
        description="Cancel every scheduled call the filters match (a campaign: "
        "--label campaign:NAME). A call that leaves scheduled meanwhile is left alone.",
        epilog="Exit codes: 0 done, 1 refused or stopped, 2 usage or settings.",
    )
    _add_filters(parser, CANCEL_PARAMS)
    parser.add_argument("--reason", default="cancelled in bulk from the command line")
    parser.add_argument("--yes", action="store_true", help="do not ask before cancelling")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    args = parser.parse_args(list(argv))
    pairs = [(name, v) for name in CANCEL_PARAMS for v in _values(getattr(args, name))]
    try:
        check_cancel_reason(args.reason)
        client = make_client()
        filters, _ = parse_filters(pairs, allowed=CANCEL_PARAMS, zone=client.settings.zone)
        ids = scheduled_ids(client.store, filters, CLI_CLIENT)
    except FieldRefused as exc:
        return _fail(f"invalid --reason: {exc.rule}")
    except (SearchError, RedisError) as exc:
        return _refusal(exc)
    target = describe(pairs)
    if not ids:
        print(f"no {target.removeprefix('every ')} to cancel")
        return EXIT_OK
    if not args.yes:
        if not sys.stdin.isatty():
            return _fail("give --yes to cancel without a terminal to ask on", EXIT_USAGE)
        answer = input(f"Cancel {len(ids)} {target.removeprefix('every ')}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing cancelled")
            return EXIT_OK
    progress = Progress(enabled=not args.no_progress)
    op = bulk.begin(client.store, "cancel", target, CLI_CLIENT, len(ids))
    cancel = bulk.cancel_step(client.store, args.reason)

    done = 0

    def step(chunk: Sequence[str]) -> int:
        nonlocal done
        changed = cancel(chunk)
        done += len(chunk)
        progress("cancelling", done, len(ids))
        return changed

    op = bulk.run(client.store, op, step, ids)
    progress.finish()
    left = f"{op.skipped} had left scheduled"
    print(f"cancelled {op.changed} of {op.total} ({left}); operation {op.id}")
    return EXIT_OK if op.state == "done" else EXIT_REFUSED
