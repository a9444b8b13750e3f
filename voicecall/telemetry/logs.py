"""Logging: structlog JSON lines (readable console output on a TTY), with redaction.

Every line, ours or a library's (httpx, httpcore, dramatiq, uvicorn, routed through the
standard library), passes :class:`Redactor`: the configured ApiKey/SecretKey values are
replaced wherever they appear, query strings that carry them are cut, the nonce and signature
of eSMS callback URLs are cut, and phone numbers are masked. So no URL with credentials and no full phone number reaches a log.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from voicecall.formats.phones import mask_phone, mask_phones_in_text
from voicecall.telemetry import tracing

REDACTED = "***"
_PHONE_KEYS = {"phone", "Phone", "phonenumber", "NumberForward", "number_forward"}
_SECRET_QUERY = re.compile(r"((?:ApiKey|SecretKey|api_key|secret_key)=)[^&\s\"']*", re.IGNORECASE)
# An eSMS callback URL's nonce and signature let a reader forge that job's result: every log
# line keeps only the job id (/v1/esms/callback/{job_id}/***), in any field or message.
_CALLBACK_PROOF = re.compile(r"(/esms/callback/[^/\s?#\"']+/)[^\s?#\"']+")
_SECRET_KEYS = {"ApiKey", "SecretKey", "api_key", "secret_key", "authorization", "Authorization"}


class Redactor:
    """A structlog processor and a stdlib filter in one: scrubs secrets and phone numbers."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = _SECRET_QUERY.sub(lambda m: m.group(1) + REDACTED, text)
        text = _CALLBACK_PROOF.sub(lambda m: m.group(1) + REDACTED, text)
        return mask_phones_in_text(text)

    def _value(self, key: str, value: Any) -> Any:
        if key in _SECRET_KEYS:
            return REDACTED
        if key in _PHONE_KEYS and isinstance(value, str):
            return mask_phone(value)
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._value(key, v) for v in value]
        if isinstance(value, BaseException):
            return self.scrub(repr(value))
        return value

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            event_dict[key] = self._value(key, event_dict[key])
        return event_dict


_redactor = Redactor()


def add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """With a current OpenTelemetry span, the line carries its ``trace_id`` and ``span_id``
    (a job's X-Request-ID trace id, if bound, moves to ``request_id``)."""
    ids = tracing.current_ids()
    if ids is not None:
        bound = event_dict.get("trace_id")
        if bound is not None and bound != ids[0]:
            event_dict.setdefault("request_id", bound)
        event_dict["trace_id"], event_dict["span_id"] = ids
    return event_dict


def configure_logging(
    *, level: str = "INFO", fmt: str = "auto", secrets: Iterable[str] = (), stream: Any = None
) -> None:
    """Set up structlog and route the standard library's loggers through the same chain."""
    global _redactor
    _redactor = Redactor(secrets)
    stream = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and hasattr(stream, "isatty") and stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redactor,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _render_foreign_message,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO, with eSMS's credentials in the query string:
    # keep it at WARNING; anything it still says passes the redactor above.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _render_foreign_message(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event = event_dict.get("event")
    if isinstance(event, str):
        event_dict["event"] = _redactor.scrub(event)
    return event_dict


def scrub(text: str) -> str:
    """``text`` without the configured secrets, callback proofs and full phone numbers."""
    return _redactor.scrub(text)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
