"""Logging for the simulator process: one stream on stderr, credentials never written.

Every record passes :class:`Redact`, which masks the configured ApiKey/SecretKey and any
``ApiKey=``/``SecretKey=`` pair. uvicorn's access log is off (its lines hold the query
string, hence the credentials); the eSMS routes log their own lines without parameters.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable

_PAIR = re.compile(r"((?:ApiKey|SecretKey)[\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+", re.IGNORECASE)
# Logged by uvicorn when a response is cut on purpose (accept_then_drop, drop_mode=reset).
_CUT_RESPONSE = "ASGI callable returned without completing response."
MIN_SECRET_LEN = 4  # shorter values would mask ordinary words


class Redact(logging.Filter):
    """Masks credentials in the formatted message of every record."""

    def __init__(self, secrets: Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with credentials masked; keep the record."""
        message = _PAIR.sub(r"\1***", record.getMessage())
        for secret in self._secrets():
            if len(secret) >= MIN_SECRET_LEN:
                message = message.replace(secret, "***")
        record.msg, record.args = message, None
        return True


class DropCutResponseNoise(logging.Filter):
    """Drops uvicorn's error line about a response the simulator cut on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the cut-response line."""
        return record.getMessage() != _CUT_RESPONSE


def configure_logging(level: str, secrets: Callable[[], Iterable[str]]) -> None:
    """Send every log record to stderr, through the filters above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(DropCutResponseNoise())
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
