"""Which IP addresses webhooks may not reach: internal ranges and cloud metadata services.

:func:`refusal` names the rule an address breaks, looking inside the IPv6 forms that carry an
IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo). The ranges are written out
rather than taken from ``ipaddress``'s ``is_private`` and friends, whose ranges changed between
Python patch releases. Documentation ranges (TEST-NET-1/2/3, 2001:db8::/32) are not internal.
Pure: used by :mod:`voicecall.webhooks.urls` at intake and after DNS.
"""

from __future__ import annotations

import ipaddress

__all__ = ["METADATA_ADDRESSES", "IPAddress", "metadata_refusal", "refusal"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# Checked in order; the first match names the rule.
_V4_RANGES: tuple[tuple[ipaddress.IPv4Network, str, str], ...] = (
    (_V4("0.0.0.0/32"), "unspecified", "the unspecified address"),
    (_V4("0.0.0.0/8"), "unspecified", "'this network' (0.0.0.0/8)"),
    (_V4("10.0.0.0/8"), "private", "a private address (10.0.0.0/8)"),
    (_V4("100.64.0.0/10"), "shared", "a shared carrier-grade NAT address (100.64.0.0/10)"),
    (_V4("127.0.0.0/8"), "loopback", "a loopback address (127.0.0.0/8)"),
    (_V4("169.254.0.0/16"), "link_local", "a link-local address (169.254.0.0/16)"),
    (_V4("172.16.0.0/12"), "private", "a private address (172.16.0.0/12)"),
    (_V4("192.0.0.0/24"), "reserved", "a reserved address (IETF protocol assignments)"),
    (_V4("192.88.99.0/24"), "reserved", "a reserved address (6to4 relay anycast)"),
    (_V4("192.168.0.0/16"), "private", "a private address (192.168.0.0/16)"),
    (_V4("198.18.0.0/15"), "reserved", "a reserved address (benchmarking, 198.18.0.0/15)"),
    (_V4("224.0.0.0/4"), "multicast", "a multicast address (224.0.0.0/4)"),
    (_V4("240.0.0.0/4"), "reserved", "a reserved address (240.0.0.0/4)"),
)
_V6_RANGES: tuple[tuple[ipaddress.IPv6Network, str, str], ...] = (
    (_V6("::/128"), "unspecified", "the unspecified address"),
    (_V6("::1/128"), "loopback", "the loopback address (::1)"),
    (_V6("64:ff9b:1::/48"), "private", "a local-use NAT64 address (64:ff9b:1::/48)"),
    (_V6("100::/64"), "reserved", "a discard-only address (100::/64)"),
    (_V6("2001::/23"), "reserved", "a reserved address (IETF protocol assignments, 2001::/23)"),
    (_V6("fc00::/7"), "private", "a unique-local address (fc00::/7)"),
    (_V6("fe80::/10"), "link_local", "a link-local address (fe80::/10)"),
    (_V6("fec0::/10"), "private", "a site-local address (fec0::/10)"),
    (_V6("ff00::/8"), "multicast", "a multicast address (ff00::/8)"),
)
_V6_GLOBAL_UNICAST = _V6("2000::/3")
_V6_COMPATIBLE = _V6("::/96")
_V6_NAT64 = _V6("64:ff9b::/96")
_V6_NAT64_LOCAL = _V6("64:ff9b:1::/48")
_V6_TRANSLATED = _V6("::ffff:0:0:0/96")
# Where RFC 6052 puts the IPv4 octets for prefixes of 48, 56, 64 and 96 bits (octet 8, the
# "u" octet, is always skipped).
_RFC6052_PLACES = ((6, 7, 9, 10), (7, 9, 10, 11), (9, 10, 11, 12), (12, 13, 14, 15))

# Cloud instance metadata and platform services: refused whatever the policy (even with
# WEBHOOK_ALLOW_PRIVATE, even for an allowlisted host that resolves to one): a POST there can
# reach instance credentials or the platform's agent channel.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        # AWS, GCP, Azure IMDS, Oracle, DigitalOcean, Hetzner, OpenStack, IBM, Linode, ...
        "169.254.169.254",
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS Pod Identity agent
        "fd00:ec2::23",  # AWS EKS Pod Identity agent over IPv6
        "169.254.169.253",  # AWS DNS resolver
        "fd00:ec2::253",  # AWS DNS resolver over IPv6
        "168.63.129.16",  # Azure WireServer (a public-range address: no other rule refuses it)
        "fd20:ce::254",  # GCP metadata over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "169.254.0.23",  # Tencent Cloud
        "169.254.42.42",  # Scaleway
        "fd00:42::42",  # Scaleway over IPv6
        "fe80::a9fe:a9fe",  # OpenStack over IPv6
    )
)


def refusal(ip: IPAddress, *, allow_private: bool) -> tuple[str, str] | None:
    """``(rule, description)`` if webhooks may not reach ``ip``, else ``None``.

    An IPv6 form that carries an IPv4 address is judged by the address it carries. Cloud
    metadata addresses are refused even when ``allow_private`` is set.
    """
    found = metadata_refusal(ip)
    if found is not None or allow_private:
        return found
    carried = _carried_ipv4(ip)
    for inner, form in carried:
        found = _classify(inner)
        if found is not None:
            return found[0], form + found[1]
    return None if carried else _classify(ip)


def metadata_refusal(ip: IPAddress) -> tuple[str, str] | None:
    """``("metadata", description)`` if ``ip`` is a cloud metadata address or an IPv6 form
    that may carry one (any that :func:`refusal` reads, plus IPv4-translated and every
    position of the local-use NAT64 prefix); else ``None``. No policy opens these."""
    candidates = [(ip, ""), *_carried_ipv4(ip), *_translated_ipv4(ip)]
    for inner, form in candidates:
        if inner in METADATA_ADDRESSES:
            return "metadata", f"{form}a cloud metadata service address"
    return None


def _carried_ipv4(ip: IPAddress) -> list[tuple[IPAddress, str]]:
    """The IPv4 addresses an IPv6 form carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return [(ip.ipv4_mapped, "an IPv4-mapped form of ")]
    if ip in _V6_COMPATIBLE and int(ip) > 1:  # not :: or ::1
        return [(low32, "an IPv4-compatible form of ")]
    if ip in _V6_NAT64:
        return [(low32, "a NAT64 form of ")]
    if ip.sixtofour is not None:
        return [(ip.sixtofour, "a 6to4 form of ")]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [(server, "a Teredo form of "), (client, "a Teredo form of ")]
    return []


def _translated_ipv4(ip: IPAddress) -> list[tuple[IPAddress, str]]:
    """IPv4 addresses carried in forms that only the metadata rule reads: IPv4-translated
    (::ffff:0:a.b.c.d) and the local-use NAT64 prefix 64:ff9b:1::/48, whose operator may
    embed the address at any position RFC 6052 allows (prefix /48, /56, /64 or /96)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    if ip in _V6_TRANSLATED:
        return [(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "an IPv4-translated form of ")]
    if ip not in _V6_NAT64_LOCAL:
        return []
    octets = ip.packed
    return [
        (ipaddress.IPv4Address(bytes(octets[i] for i in places)), "a local-use NAT64 form of ")
        for places in _RFC6052_PLACES
    ]


def _classify(ip: IPAddress) -> tuple[str, str] | None:
    """``(rule, description)`` if ``ip`` lies in an internal range, else ``None``."""
    if isinstance(ip, ipaddress.IPv4Address):
        return next(((rule, what) for net, rule, what in _V4_RANGES if ip in net), None)
    found = next(((rule, what) for net, rule, what in _V6_RANGES if ip in net), None)
    if found is None and ip not in _V6_GLOBAL_UNICAST:
        return "reserved", "a reserved address (outside 2000::/3)"
    return found
