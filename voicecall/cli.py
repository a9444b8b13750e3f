"""The ``voicecall`` command: one entry point, each subcommand owned by its package.

Subcommands parse their own arguments, so ``voicecall SUBCOMMAND --help`` documents each.
A missing or invalid setting prints one line naming it and exits with code 2.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from voicecall.settings import SettingsError

# subcommand → ("module:function", one-line help). Imported lazily: `voicecall enqueue`
# must not pay for the worker's imports, nor need eSMS credentials.
COMMANDS: dict[str, tuple[str, str]] = {
    "api": ("producer.server:main", "serve the HTTP API and the eSMS callback receiver"),
    "worker": ("worker.cli:main", "run Dramatiq workers (send, poll, webhooks) with the scheduler"),
    "scheduler": ("worker.cli:scheduler_main", "run only the scheduler and sweeper"),
    "esms-sim": ("simulator.cli:main", "run the local eSMS simulator"),
    "enqueue": ("producer.cli:enqueue_main", "enqueue one call: otp | record | template"),
    "status": ("producer.cli:status_main", "show a job and its history"),
    "cancel": ("producer.cli:cancel_main", "cancel a job not yet handed to eSMS"),
    "import": ("producer.cli:import_main", "validate and enqueue the calls in a CSV file"),
    "dlq": ("worker.dlq:main", "dead letters: list | show | requeue | purge"),
    "demo": ("voicecall.demo:main", "the `make run` demo"),
    "check-settings": ("voicecall.cli:check_settings_main", "validate settings for a role"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: voicecall COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def _resolve(target: str) -> Callable[[Sequence[str]], int]:
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)  # type: ignore[no-any-return]


def check_settings_main(argv: Sequence[str]) -> int:
    """``voicecall check-settings ROLE``: exit 0 when the settings for ROLE are valid."""
    from voicecall.settings import REQUIRED_BY_ROLE, load_settings

    role = argv[0] if argv else "worker"
    if role not in REQUIRED_BY_ROLE:
        print(
            f"voicecall: unknown role {role!r}; one of {', '.join(REQUIRED_BY_ROLE)}",
            file=sys.stderr,
        )
        return 2
    load_settings().require(role)  # type: ignore[arg-type]
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
        return 2
    try:
        return int(_resolve(COMMANDS[command][0])(rest) or 0)
    except SettingsError as exc:
        print(f"voicecall: invalid setting: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
