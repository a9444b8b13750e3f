"""Request parameters read the way eSMS's WCF service reads them: names case-insensitive.

Values are strings whatever the JSON type (``"SmsType": 8`` and ``"8"`` are the same), and
an empty value counts as absent, since clients send templates like ``&SendDate=&Ivr=``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from simulator import codes
from simulator.codes import EsmsError

SECRET_NAMES = frozenset({"apikey", "secretkey"})


class Params:
    """The parameters of one request, looked up case-insensitively."""

    def __init__(self, pairs: Iterable[tuple[str, object]]) -> None:
        self._values: dict[str, str] = {}
        self._names: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self._names.setdefault(key, name)
            if value is None:
                text = ""
            elif isinstance(value, bool):
                text = "1" if value else "0"
            else:
                text = str(value)
            self._values.setdefault(key, text)

    @classmethod
    def from_json(cls, body: object) -> Params:
        """From a decoded JSON body; anything but an object gives no parameters."""
        return cls(body.items() if isinstance(body, Mapping) else ())

    def get(self, *names: str) -> str:
        """The first non-empty value among ``names`` (aliases), stripped; "" if none."""
        for name in names:
            value = self._values.get(name.lower(), "").strip()
            if value:
                return value
        return ""

    def raw(self, name: str) -> str:
        """The value of ``name`` exactly as sent (not stripped); "" if absent."""
        return self._values.get(name.lower(), "")

    def int_in(self, name: str, default: int, low: int, high: int) -> int:
        """``name`` as an integer within [low, high]; ``default`` if absent; else 110."""
        text = self.get(name)
        if not text:
            return default
        try:
            value = int(text)
        except ValueError:
            raise EsmsError(codes.BAD_REQUEST, f"{name} must be an integer") from None
        if not low <= value <= high:
            raise EsmsError(codes.BAD_REQUEST, f"{name} must be between {low} and {high}")
        return value

    def public(self) -> dict[str, str]:
        """Every parameter as sent, minus ApiKey and SecretKey (for the ledger)."""
        return {
            self._names[key]: value
            for key, value in self._values.items()
            if key not in SECRET_NAMES
        }
