"""Where a webhook may go: one URL policy, applied at intake and again at delivery.

At intake, :func:`check_at_intake` refuses everything that can be refused without DNS, with a
``ValueError`` whose message states the rule (the API answers 422 naming ``webhook_url``):

- a scheme other than http/https (https only, when the policy requires it);
- userinfo (``user:pw@``), more than 2,048 characters, control characters, whitespace or
  backslashes, a missing or malformed host, a bad port;
- an IPv4 address in any spelling but four decimal numbers (``2130706433``, ``0x7f.1``,
  ``0177.0.0.1``, ``127.1``): parsers disagree on what these mean, so no check can be sure
  which address they name. Always refused, whatever the policy;
- literal addresses in loopback, private, link-local, multicast, reserved, unspecified and
  shared (100.64.0.0/10) ranges, also inside IPv4-mapped, IPv4-compatible, NAT64, 6to4 and
  Teredo IPv6 forms; ``localhost`` and the internal names (``*.localhost``, ``*.local``,
  ``*.internal``, ``*.home.arpa``, ``*.localdomain``, single-label names);
- cloud metadata services: their names (``metadata.google.internal``, ...) and their addresses
  (``169.254.169.254``, ``168.63.129.16``, ``fd00:ec2::254``, ... in
  :data:`voicecall.webhooks.addresses.METADATA_ADDRESSES`), also inside every IPv6 form that
  carries an IPv4 address.

``allow_private`` (``WEBHOOK_ALLOW_PRIVATE``) lifts the internal-address and internal-name rules
for internal deployments; a host in ``allowed_hosts`` (``WEBHOOK_ALLOWED_HOSTS``; ``*.example.com``
covers subdomains) is trusted wherever it points, except to a metadata address. Neither lifts
the URL form rules, and nothing opens a metadata address: an allowlist entry naming one is
refused (:func:`voicecall.webhooks.policy.parse_allowed_hosts`), and an allowlisted name resolving to one is refused at
delivery. A metadata *name* in the allowlist is trusted as a name (a service may be called
``metadata``); where it resolves is still checked.

At delivery, :func:`resolve_and_check` applies the same rules, resolves the host once (through
an injectable resolver), checks every address it got and returns the one address to connect
to, so DNS rebinding cannot get around the check. Documentation ranges (TEST-NET-1/2/3,
2001:db8::/32) are not internal and pass.

Its exceptions, :class:`WebhookUrlRefused` (also a ValueError: the URL or an address it names
breaks a rule) and :class:`WebhookDnsError` (the host did not resolve to any address), are
the ``WebhookTargetError`` branch of the one error tree (voicecall.errors).

Pure apart from the resolver: no httpx, importable by the producer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from voicecall.errors import WebhookError
from voicecall.webhooks.addresses import IPAddress, metadata_refusal, refusal
from voicecall.webhooks.policy import WebhookPolicy, normalize_host

__all__ = [
    "ADDRESS_RULES",
    "MAX_URL_LENGTH",
    "ResolvedTarget",
    "Resolver",
    "WebhookDnsError",
    "WebhookTargetError",
    "WebhookUrlRefused",
    "check_at_intake",
    "resolve_and_check",
    "system_resolver",
]

MAX_URL_LENGTH = 2048

# (host, port) -> the addresses it resolves to, as strings.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


class WebhookTargetError(WebhookError):
    """A webhook URL cannot be delivered to."""


class WebhookUrlRefused(WebhookTargetError, ValueError):
    """The URL, or an address its host names, breaks a rule. ``str()`` states the rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class WebhookDnsError(WebhookTargetError):
    """The host did not resolve (or the resolver answered no usable address)."""


# Rules about where the URL points (at delivery: `refused_address`), as opposed to its form.
ADDRESS_RULES = frozenset(
    {
        "ip_spelling",
        "loopback",
        "private",
        "link_local",
        "multicast",
        "reserved",
        "unspecified",
        "shared",
        "internal_name",
        "metadata",
    }
)

METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.azure.internal",
    }
)
INTERNAL_SUFFIXES = ("localhost", "local", "internal", "home.arpa", "localdomain")

_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_DECIMAL_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")


@dataclass(frozen=True)
class ResolvedTarget:
    """A checked webhook target: connect to ``address``, speak to ``host``."""

    scheme: str
    host: str  # normalised ASCII host name (or the address, for a literal IP)
    port: int
    target: str  # path and query, as sent in the request line
    address: str  # the one checked address to connect to
    host_is_ip: bool

    @property
    def origin(self) -> str:
        """``scheme://host:port``: what logs may show (no path, no query)."""
        return f"{self.scheme}://{_bracket(self.host)}:{self.port}"

    @property
    def host_header(self) -> str:
        default = {"http": 80, "https": 443}[self.scheme]
        host = _bracket(self.host)
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        return f"{self.scheme}://{_bracket(self.address)}:{self.port}{self.target}"


@dataclass(frozen=True)
class _Parsed:
    scheme: str
    host: str
    port: int
    target: str
    ip: IPAddress | None
    trusted: bool  # allowlisted: no address rules apply


def check_at_intake(url: str, policy: WebhookPolicy) -> str:
    """Return ``url`` unchanged if no rule refuses it without DNS; else raise
    :class:`WebhookUrlRefused` (a ``ValueError``) stating the rule."""
    _parse(url, policy)
    return url


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo, run off the event loop)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        raise WebhookDnsError(f"{host} did not resolve: {exc}") from exc
    return [str(info[4][0]) for info in infos]


async def resolve_and_check(
    url: str, policy: WebhookPolicy, resolver: Resolver = system_resolver
) -> ResolvedTarget:
    """Check ``url``, resolve its host once and check every address returned.

    Returns the first address, the one to connect to (never resolve again). Raises
    :class:`WebhookUrlRefused` or :class:`WebhookDnsError`.
    """
    parsed = _parse(url, policy)
    if parsed.ip is not None:
        addresses: list[IPAddress] = [parsed.ip]
    else:
        answer = await resolver(parsed.host, parsed.port)
        addresses = _unique_addresses(parsed.host, answer)
    for address in addresses:
        _check_address(address, policy, f"{parsed.host} resolves to", trusted=parsed.trusted)
    return ResolvedTarget(
        scheme=parsed.scheme,
        host=parsed.host,
        port=parsed.port,
        target=parsed.target,
        address=str(addresses[0]),
        host_is_ip=parsed.ip is not None,
    )


# --- parsing ---------------------------------------------------------------------------


def _parse(url: str, policy: WebhookPolicy) -> _Parsed:
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlRefused("length", f"must be at most {MAX_URL_LENGTH} characters")
    if any(_is_forbidden_char(c) for c in url):
        raise WebhookUrlRefused(
            "characters", "must not contain control characters, whitespace or backslashes"
        )
    try:
        parts = urlsplit(url)
    except ValueError:
        raise WebhookUrlRefused("host", "is not a valid URL (malformed host)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookUrlRefused("scheme", "must be an http:// or https:// URL")
    if policy.require_https and scheme != "https":
        raise WebhookUrlRefused("https_required", "must be an https:// URL")
    if "@" in parts.netloc:
        raise WebhookUrlRefused("userinfo", "must not contain a user name or password (user:pw@)")
    port = _port(parts, scheme)
    host, ip = _host(parts)
    trusted = policy.allows_host(host)
    if ip is not None:
        _check_address(ip, policy, "host is", trusted=trusted)
    elif not trusted:
        _check_name(host, policy)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Parsed(scheme, host, port, target, ip, trusted)


def _is_forbidden_char(char: str) -> bool:
    return (
        char.isspace()
        or char == "\\"
        or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp")
    )


def _port(parts: SplitResult, scheme: str) -> int:
    try:
        port = parts.port
    except ValueError:
        raise WebhookUrlRefused("port", "must have a port from 1 to 65535") from None
    if port == 0:
        raise WebhookUrlRefused("port", "must have a port from 1 to 65535")
    return port or (443 if scheme == "https" else 80)


def _host(parts: SplitResult) -> tuple[str, IPAddress | None]:
    raw = parts.hostname
    if not raw:
        raise WebhookUrlRefused("host", "must name a host")
    if "[" in parts.netloc:  # an IPv6 literal
        if "%" in raw:
            raise WebhookUrlRefused("host", "must not use an IPv6 zone (%...)")
        try:
            ip6 = ipaddress.IPv6Address(raw)
        except ValueError:
            raise WebhookUrlRefused("host", f"must name a valid host: [{raw}] is not") from None
        return str(ip6), ip6
    if "%" in raw:
        raise WebhookUrlRefused("host", "must not percent-encode the host")
    try:
        host = normalize_host(raw)
    except ValueError as exc:
        raise WebhookUrlRefused("host", f"must name a valid host: {exc}") from None
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # resolvers read this as an IPv4 address
        if raw.endswith(".") or not (
            len(labels) == 4
            and all(_DECIMAL_OCTET.fullmatch(label) and int(label) <= 255 for label in labels)
        ):
            raise WebhookUrlRefused(
                "ip_spelling",
                "must write an IPv4 address as four decimal numbers (a.b.c.d): "
                f"{raw!r} is another spelling, read differently by different resolvers",
            )
        ip4 = ipaddress.IPv4Address(host)
        return host, ip4
    return host, None


def _check_name(host: str, policy: WebhookPolicy) -> None:
    if host in METADATA_NAMES:
        raise WebhookUrlRefused(
            "metadata", f"must not target a cloud metadata service: host {host} is one"
        )
    if policy.allow_private:
        return
    if "." not in host:
        raise WebhookUrlRefused(
            "internal_name",
            f"must name a public host: {host} is a single-label (internal) name",
        )
    for suffix in INTERNAL_SUFFIXES:
        if host == suffix or host.endswith("." + suffix):
            raise WebhookUrlRefused(
                "internal_name", f"must name a public host: {host} is an internal name (.{suffix})"
            )


# --- addresses -------------------------------------------------------------------------


def _check_address(
    ip: IPAddress, policy: WebhookPolicy, subject: str, *, trusted: bool = False
) -> None:
    """Raise :class:`WebhookUrlRefused` if ``ip`` is not a place webhooks may go (for an
    allowlisted host: if it is a metadata address)."""
    found = metadata_refusal(ip) if trusted else refusal(ip, allow_private=policy.allow_private)
    if found is not None:
        rule, what = found
        raise WebhookUrlRefused(
            rule, f"must not target an internal address: {subject} {ip}, {what}"
        )


def _unique_addresses(host: str, answer: Sequence[str]) -> list[IPAddress]:
    addresses: list[IPAddress] = []
    for text in answer:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise WebhookDnsError(
                f"{host}: the resolver answered {text!r}, not an address"
            ) from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise WebhookDnsError(f"{host} resolved to no address")
    return addresses


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
