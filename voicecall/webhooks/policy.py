"""Where webhooks may go: the policy (``WEBHOOK_ALLOW_PRIVATE``, ``WEBHOOK_ALLOWED_HOSTS``,
``WEBHOOK_REQUIRE_HTTPS``), and host names as the allowlist and the URL checks compare them.

Settings build the policy (``Settings.webhook_policy``); voicecall.webhooks.urls applies it
to a URL, at intake and again at delivery. No setting is read here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from voicecall.webhooks.addresses import metadata_refusal

__all__ = ["WebhookPolicy", "normalize_host", "parse_allowed_hosts"]

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


@dataclass(frozen=True)
class WebhookPolicy:
    """Where webhooks may go (``Settings.webhook_policy`` builds it from the settings)."""

    allow_private: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    require_https: bool = False

    def __post_init__(self) -> None:
        normalized = frozenset(parse_allowed_hosts(self.allowed_hosts))
        object.__setattr__(self, "allowed_hosts", normalized)

    def allows_host(self, host: str) -> bool:
        """``host`` (normalised) is named in the allowlist, exactly or under ``*.suffix``."""
        if host in self.allowed_hosts:
            return True
        return any(
            entry.startswith("*.") and host.endswith(entry[1:]) for entry in self.allowed_hosts
        )


def normalize_host(host: str) -> str:
    """Lower-case ASCII (IDNA) host without a trailing dot; ``ValueError`` if malformed."""
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError(f"host {host!r} is not a valid host name") from None
    ascii_host = ascii_host.removesuffix(".")
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"host {host!r} is not a valid host name")
    return ascii_host


def parse_allowed_hosts(entries: Iterable[str]) -> tuple[str, ...]:
    """Normalise allowlist entries: host names, ``*.suffix`` wildcards or IP addresses.

    A ``ValueError`` names a malformed entry, or one that is a cloud metadata address.
    """
    hosts: list[str] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry.startswith("*."):
            hosts.append("*." + normalize_host(entry[2:]))
            continue
        try:
            ip = ipaddress.ip_address(entry.removeprefix("[").removesuffix("]"))
        except ValueError:
            hosts.append(normalize_host(entry))
            continue
        if metadata_refusal(ip) is not None:
            raise ValueError(f"{ip} is a cloud metadata service address, never allowed")
        hosts.append(str(ip))
    return tuple(dict.fromkeys(hosts))
