"""The ``voicecall`` command: one entry point, each subcommand owned by its package.

Subcommands parse their own arguments, so ``voicecall SUBCOMMAND --help`` documents each.
A missing or invalid setting prints one line naming it and exits with code 2; so does a
command whose optional dependencies (``pip install 'voicecall[EXTRA]'``) are not installed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

from voicecall.settings import SettingsError

EXIT_USAGE = 2

# The modules each extra of pyproject.toml installs; a command lists the extras it needs.
# Without them the core serves only the producer side: settings, the job store, enqueueing.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "api": ("fastapi", "uvicorn"),
    "worker": ("dramatiq", "httpx", "tenacity"),
    "sim": ("fastapi", "uvicorn", "httpx"),
}


class Command(NamedTuple):
    target: str  # "module:function", imported lazily (`enqueue` must not pay for the worker)
    help: str
    extras: tuple[str, ...] = ()


COMMANDS: dict[str, Command] = {
    "api": Command(
        "producer.server:main", "serve the HTTP API and the eSMS callback receiver", ("api",)
    ),
    "worker": Command(
        "worker.cli:main",
        "run Dramatiq workers (send, poll, webhooks) with the scheduler",
        ("worker",),
    ),
    "scheduler": Command(
        "worker.cli:scheduler_main", "run only the scheduler and sweeper", ("worker",)
    ),
    "esms-sim": Command("simulator.cli:main", "run the local eSMS simulator", ("sim",)),
    "enqueue": Command("producer.cli:enqueue_main", "enqueue one call: otp | record | template"),
    "status": Command("producer.cli:status_main", "show a job and its history"),
    "cancel": Command("producer.cli:cancel_main", "cancel a job not yet handed to eSMS"),
    "import": Command("producer.cli:import_main", "validate and enqueue the calls in a CSV file"),
    "jobs": Command("producer.search_cli:jobs_main", "list jobs by state, label, phone, time"),
    "campaign": Command("producer.search_cli:campaign_main", "campaigns: list | show NAME"),
    "export": Command("producer.search_cli:export_main", "write the jobs a search finds as CSV"),
    "dlq": Command("worker.dlq:main", "dead letters: list | show | requeue | purge"),
    "demo": Command("voicecall.demo:main", "the `make run` demo", ("api", "worker", "sim")),
    "check-settings": Command("voicecall.cli:check_settings_main", "validate settings for a role"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: voicecall COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {command.help}" for name, command in COMMANDS.items()]
    return "\n".join(lines)


def missing_extras(command: str) -> str | None:
    """One line naming what ``command`` needs and is not installed, or None."""
    extras = COMMANDS[command].extras
    missing = sorted(
        {
            module
            for extra in extras
            for module in EXTRA_MODULES[extra]
            if importlib.util.find_spec(module) is None
        }
    )
    if not missing:
        return None
    spec = f"voicecall[{','.join(extras)}]"
    return (
        f"voicecall {command}: needs the optional dependencies of {spec} "
        f"({', '.join(missing)} not installed): pip install '{spec}'"
    )


def _resolve(target: str) -> Callable[[Sequence[str]], int]:
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)  # type: ignore[no-any-return]


def check_settings_main(argv: Sequence[str]) -> int:
    """``voicecall check-settings [ROLE]``: exit 0 when the settings for ROLE are valid."""
    from voicecall.settings import REQUIRED_BY_ROLE, load_settings

    parser = argparse.ArgumentParser(
        prog="voicecall check-settings",
        description="Validate the settings a role starts with (environment variables, or a "
        ".env file in the current directory) without starting it. Exit 0 when they are "
        "valid; exit 2 with one line naming the first missing or invalid setting.",
        epilog="Every setting and its rule: voicecall/settings.py.",
    )
    parser.add_argument(
        "role",
        nargs="?",
        default="worker",
        choices=list(REQUIRED_BY_ROLE),
        help="the command whose settings to check (default: %(default)s); "
        + "; ".join(
            f"{role}: {', '.join(names) if names else 'no required setting'}"
            for role, names in REQUIRED_BY_ROLE.items()
        ),
    )
    role = parser.parse_args(argv).role
    load_settings().require(role)
    print(f"settings for {role}: ok")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from voicecall import __version__

        print(f"voicecall {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"voicecall: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_USAGE
    missing = missing_extras(command)
    if missing is not None:
        print(missing, file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(_resolve(COMMANDS[command].target)(rest) or 0)
    except SettingsError as exc:
        print(f"voicecall: invalid setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
