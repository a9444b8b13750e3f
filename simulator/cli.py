"""``python -m simulator`` / ``voicecall esms-sim``: run the simulator under uvicorn.

One flag per :class:`~simulator.config.SimConfig` field, named after it (``time_scale`` is
``--time-scale``); booleans have a ``--no-`` form, lists are comma-separated, and the outcome
rules are given as repeated ``--rule SUFFIX=OUTCOME`` (added to the defaults unless
``--no-default-rules``). A single process: the state is in memory.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from typing import Any, Literal

import uvicorn
from pydantic import ValidationError

from simulator.app import create_app
from simulator.config import DEFAULT_RULES, SimConfig, parse_rule
from simulator.logs import configure_logging

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_knob(
    parser: argparse.ArgumentParser, name: str, annotation: Any, help_text: str, default: object
) -> None:
    """Add the flag of one knob, typed after its annotation."""
    shown = ",".join(map(str, default)) if isinstance(default, list) else default
    text = f"{help_text} (default: {shown})"
    args = [t for t in typing.get_args(annotation) if t is not type(None)]
    origin = typing.get_origin(annotation)
    if annotation is bool:
        parser.add_argument(
            _flag(name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text
        )
    elif origin is Literal:
        parser.add_argument(
            _flag(name), choices=[str(a) for a in args], default=argparse.SUPPRESS, help=text
        )
    elif origin is list:
        parser.add_argument(_flag(name), metavar="A,B,...", default=argparse.SUPPRESS, help=text)
    else:
        kind = args[0] if origin in (types.UnionType, typing.Union) else annotation
        parser.add_argument(_flag(name), type=kind, default=argparse.SUPPRESS, help=text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: host, port, log level and one flag per knob."""
    parser = argparse.ArgumentParser(
        prog="esms-sim",
        description="A local fake of eSMS.vn's voice API with fault injection. Durations "
        "named -s are simulated seconds, multiplied by --time-scale, unless marked real. "
        "Every knob can also be changed at run time with PATCH /_sim/config.",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="Listen address (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="Listen port (default: %(default)s)"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="Log level (default: %(default)s)",
    )
    rules = ", ".join(f"{k}={v}" for k, v in DEFAULT_RULES.items())
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="SUFFIX=OUTCOME",
        help="Outcome for national numbers ending in SUFFIX (longest suffix "
        "wins); OUTCOME: answer, noanswer, fail, answer-on-N. Repeatable. "
        f"Defaults: {rules}",
    )
    parser.add_argument(
        "--no-default-rules",
        action="store_true",
        help="Drop the default rules (only --rule ones apply)",
    )
    for name, field in SimConfig.model_fields.items():
        if name == "rules":
            continue
        _add_knob(
            parser,
            name,
            field.annotation,
            field.description or "",
            field.get_default(call_default_factory=True),
        )
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The SimConfig of parsed arguments (pydantic ValidationError if a value is invalid)."""
    values: dict[str, object] = {
        name: value for name, value in vars(args).items() if name in SimConfig.model_fields
    }
    if args.rule or args.no_default_rules:
        rules = {} if args.no_default_rules else dict(DEFAULT_RULES)
        rules.update(parse_rule(text) for text in args.rule)
        values["rules"] = rules
    return SimConfig.model_validate(values)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and serve until interrupted; 2 on a bad flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except (ValidationError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            err = exc.errors()[0]
            name = _flag(str(err["loc"][0])) if err["loc"] else "config"
            name = "--rule" if name == "--rules" else name
            message = str(err["msg"]).removeprefix("Value error, ")
        else:
            name, message = "--rule", str(exc)
        print(f"esms-sim: error: {name}: {message}", file=sys.stderr)
        return 2
    app = create_app(config)
    sim = app.state.sim
    configure_logging(
        args.log_level,
        lambda: (
            sim.config.api_key,
            sim.config.secret_key,
            sim.startup_config.api_key,
            sim.startup_config.secret_key,
        ),
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http="h11",
        log_config=None,
        log_level=args.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=1,
    )
    return 0
