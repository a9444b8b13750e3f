"""The ``voicecall`` command: one entry point; each package registers its own subcommands.

A subcommand is a :class:`Command` that a package names under the ``voicecall.commands``
entry-point group of its distribution (pyproject.toml), so this module knows none of them
by name: ``voicecall COMMAND`` loads that one entry point, then imports its target lazily
(``voicecall enqueue`` never pays for the worker or FastAPI); ``voicecall --help`` loads
them all to list them.

Subcommands parse their own arguments, so ``voicecall SUBCOMMAND --help`` documents each.
A missing or invalid setting prints one line naming it and exits with code 2; so does a
command whose optional dependencies (``pip install 'voicecall[EXTRA]'``) are not installed.
A reader that closes the output early (``| head``) ends the command quietly, exit 141.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

from voicecall.config.settings import SettingsError

EXIT_USAGE = 2
EXIT_CLOSED_PIPE = 128 + 13  # killed by SIGPIPE, as the shell reports it for other tools
ENTRY_POINTS = "voicecall.commands"  # the entry-point group every command is registered in

# The modules each extra of pyproject.toml installs; a command lists the extras it needs.
# Without them the core serves only the producer side: settings, the job store, enqueueing.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "api": ("fastapi", "uvicorn"),
    "worker": ("dramatiq", "httpx", "tenacity"),
    "sim": ("fastapi", "uvicorn", "httpx"),
}


class Command(NamedTuple):
    """One subcommand, as a package registers it (the entry point names this object)."""

    target: str  # "module:function", imported only when the command runs
    help: str
    extras: tuple[str, ...] = ()


def _load(entry: importlib.metadata.EntryPoint) -> Command:
    command = entry.load()
    if not isinstance(command, Command):
        raise TypeError(f"entry point {entry.name} = {entry.value} is not a voicecall Command")
    return command


def commands() -> dict[str, Command]:
    """Every registered subcommand, by name, in alphabetical order."""
    found = importlib.metadata.entry_points(group=ENTRY_POINTS)
    return {entry.name: _load(entry) for entry in sorted(found, key=lambda e: e.name)}


def command(name: str) -> Command | None:
    """The subcommand ``name`` (only its own entry point is loaded), or None."""
    found = importlib.metadata.entry_points(group=ENTRY_POINTS, name=name)
    return _load(next(iter(found))) if found else None


def _usage() -> str:
    listed = commands()
    if not listed:
        return "usage: voicecall COMMAND [ARGS...]\n\nno command is registered: pip install -e ."
    width = max(len(name) for name in listed)
    lines = ["usage: voicecall COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {found.help}" for name, found in listed.items()]
    return "\n".join(lines)


def missing_extras(name: str, found: Command) -> str | None:
    """One line naming what command ``name`` needs and is not installed, or None."""
    missing = sorted(
        {
            module
            for extra in found.extras
            for module in EXTRA_MODULES[extra]
            if importlib.util.find_spec(module) is None
        }
    )
    if not missing:
        return None
    spec = f"voicecall[{','.join(found.extras)}]"
    return (
        f"voicecall {name}: needs the optional dependencies of {spec} "
        f"({', '.join(missing)} not installed): pip install '{spec}'"
    )


def _resolve(target: str) -> Callable[[Sequence[str]], int]:
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)  # type: ignore[no-any-return]


def check_settings_main(argv: Sequence[str]) -> int:
    """``voicecall check-settings [ROLE]``: exit 0 when the settings for ROLE are valid."""
    from voicecall.config.settings import REQUIRED_BY_ROLE, load_settings

    parser = argparse.ArgumentParser(
        prog="voicecall check-settings",
        description="Validate the settings a role starts with (environment variables, or a "
        ".env file in the current directory) without starting it. Exit 0 when they are "
        "valid; exit 2 with one line naming the first missing or invalid setting.",
        epilog="Every setting and its rule: voicecall/config/settings.py.",
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


# The core's own command, registered like every other (pyproject.toml).
CHECK_SETTINGS = Command("voicecall.cli:check_settings_main", "validate settings for a role")
REDIS_FAILOVER = Command(
    "voicecall.store.handover:main",
    "a planned Redis failover through the sentinels, the old primary demoted at once",
)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from voicecall import __version__

        print(f"voicecall {__version__}")
        return 0
    name, rest = args[0], args[1:]
    found = command(name)
    if found is None:
        print(f"voicecall: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_USAGE
    missing = missing_extras(name, found)
    if missing is not None:
        print(missing, file=sys.stderr)
        return EXIT_USAGE
    try:
        code = int(_resolve(found.target)(rest) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except SettingsError as exc:
        print(f"voicecall: invalid setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _closed_pipe()


def _closed_pipe() -> int:
    """The reader of stdout went away (``voicecall jobs list --json | head -1``): stop quietly,
    as a tool killed by SIGPIPE does (exit 141), with no traceback. stdout goes to /dev/null so
    the interpreter's own last flush of what is left does not fail again (Python's advice:
    docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_CLOSED_PIPE


if __name__ == "__main__":  # python -m voicecall.cli: run the imported module, whose Command
    from voicecall import cli  # the packages' command tables use, not this __main__ copy

    sys.exit(cli.main())
