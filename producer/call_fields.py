"""The job contract's fields as CSV columns and command-line flags, read off its models.

The call parameters are named once, in voicecall.job.params (and the job's own fields in
voicecall.job.contract): the importer's columns and ``voicecall enqueue``'s flags are those
models' fields, so a parameter added there is a column and a flag here. Values are passed on
as given and validated once, by the contract.
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Iterable
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from voicecall.job.contract import RecordCall, TemplateCall, VoiceOtpCall

# The short names the CLI and the CSV file accept for each kind, and the kind's model.
KIND_MODELS: dict[str, type[VoiceOtpCall | RecordCall | TemplateCall]] = {
    "otp": VoiceOtpCall,
    "record": RecordCall,
    "template": TemplateCall,
}
KIND_ALIASES: dict[str, str] = {  # Literal["voice_otp"] → "voice_otp"
    short: get_args(model.model_fields["kind"].annotation)[0]
    for short, model in KIND_MODELS.items()
}
_MODELS = tuple(KIND_MODELS.values())
# A job's own fields (every kind has them) and each kind's call parameters, in model order.
COMMON_FIELDS = tuple(
    name
    for name in _MODELS[0].model_fields
    if name != "kind" and all(name in m.model_fields for m in _MODELS[1:])
)
PARAMETER_FIELDS = {
    short: tuple(n for n in model.model_fields if n != "kind" and n not in COMMON_FIELDS)
    for short, model in KIND_MODELS.items()
}
REQUIRED_COLUMNS = ("kind", "phone")
COLUMNS = tuple(
    dict.fromkeys(
        [
            *REQUIRED_COLUMNS,
            *(n for names in PARAMETER_FIELDS.values() for n in names),
            *COMMON_FIELDS,
        ]
    )
)
# Spellings the command line has always used where the field's own name is long.
_FLAGS = {"is_unicode": "--unicode", "variables": "--var", "labels": "--label"}


def column_kinds(name: str) -> str:
    """The kinds a column applies to: ``all`` or their short names."""
    kinds = [short for short, fields in PARAMETER_FIELDS.items() if name in fields]
    return ", ".join(kinds) if kinds else "all"


def columns_help() -> str:
    """One line per CSV column: its kinds and what it holds."""
    lines = []
    for name in COLUMNS:
        info = _field(name)
        about = "otp | record | template (or voice_otp | record_call | template_call)"
        if info is not None:
            about = info.description or ""
        lines.append(f"    {name:<17} {column_kinds(name)}{': ' if about else ''}{about}")
    return "\n".join(lines)


def flag(name: str) -> str:
    """The command-line flag of a field: ``--max-retry`` for ``max_retry``."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def add_flags(
    parser: argparse.ArgumentParser, model: type[BaseModel], names: Iterable[str]
) -> None:
    """A flag per field: a bool is a switch, a list repeats, a number is an int; the contract
    validates each value (so a bad one is refused naming its field, exit 1)."""
    for name in names:
        info = model.model_fields[name]
        options: dict[str, Any] = {"dest": name, "help": info.description}
        kind = _plain(info.annotation)
        if get_origin(kind) is dict:
            options.update(action="append", type=_key_value, default=[], metavar="K=V")
            options["help"] = f"{info.description or ''} (repeatable)".strip()
        elif kind is bool:
            options.update(action="store_true", default=None)
        elif get_origin(kind) is list:
            options.update(action="append", default=None)
            options["help"] = f"{info.description or ''} (repeatable, in order)".strip()
        else:
            options["required"] = info.is_required()
            if kind is int:
                options["type"] = int
            elif isinstance(kind, type) and issubclass(kind, Enum):
                options["metavar"] = "|".join(str(member.value) for member in kind)
        parser.add_argument(flag(name), **options)


def request_of(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """The request the flags of ``kind`` (a short name) make, for the job contract."""
    request: dict[str, Any] = {"kind": KIND_ALIASES[kind]}
    labels = dict(args.pop("labels", None) or [])
    if labels:
        request["labels"] = labels
    request.update({name: value for name, value in args.items() if value is not None})
    return request


def _field(name: str) -> FieldInfo | None:
    for model in _MODELS:
        if name in model.model_fields and name != "kind":
            return model.model_fields[name]
    return None


def _plain(annotation: Any) -> Any:
    """``int | None`` → ``int``; ``Optional[Annotated[str, ...]]`` → ``str``."""
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value")
    return key, value
