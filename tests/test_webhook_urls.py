"""The webhook URL policy: what intake refuses without DNS, and what delivery checks after it.

Hostile first: every form from issue 10 section 2, the odd IPv4 spellings resolvers accept,
the IPv6 forms that carry an IPv4 address, internal names and cloud metadata endpoints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from voicecall.config.settings import load_settings
from voicecall.webhooks.policy import WebhookPolicy
from voicecall.webhooks.urls import (
    MAX_URL_LENGTH,
    ResolvedTarget,
    WebhookDnsError,
    WebhookUrlRefused,
    check_at_intake,
    resolve_and_check,
    system_resolver,
)

DEFAULT = WebhookPolicy()

# (url, rule, words the message must contain)
REFUSED: list[tuple[str, str, str]] = [
    # issue 10 section 2, as reported
    ("http://127.0.0.1:8080/hook", "loopback", "loopback"),
    ("http://localhost:8080/hook", "internal_name", "internal"),
    ("http://2130706433:8080/hook", "ip_spelling", "four decimal numbers"),
    ("http://0x7f.1:8080/hook", "ip_spelling", "four decimal numbers"),
    ("http://user:pw@example.com/hook", "userinfo", "user name or password"),
    ("http://169.254.169.254/latest/meta-data/", "metadata", "metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata", "metadata"),
    ("http://[fd00::1]/hook", "private", "unique-local"),
    ("http://127.0.0.1:6379/", "loopback", "loopback"),  # the Redis port
    # schemes
    ("ftp://example.com/hook", "scheme", "http:// or https://"),
    ("file:///etc/passwd", "scheme", "http:// or https://"),
    ("gopher://example.com:6379/_PING", "scheme", "http:// or https://"),
    ("javascript:alert(1)", "scheme", "http:// or https://"),
    ("//example.com/hook", "scheme", "http:// or https://"),
    ("example.com/hook", "scheme", "http:// or https://"),
    # userinfo in every shape
    ("http://user@example.com/hook", "userinfo", "user name or password"),
    ("http://:pw@example.com/hook", "userinfo", "user name or password"),
    ("http://@example.com/hook", "userinfo", "user name or password"),
    ("http://example.com@127.0.0.1/hook", "userinfo", "user name or password"),
    # length and characters
    ("https://example.com/" + "a" * MAX_URL_LENGTH, "length", "2048"),
    ("http://exa mple.com/hook", "characters", "whitespace"),
    (" http://example.com/hook", "characters", "whitespace"),
    ("http://example.com/hook\n", "characters", "control"),
    ("http://example.com/ho\tok", "characters", "control"),
    ("http://example.com/hook\x00", "characters", "control"),
    ("http://example.com/\u200bhook", "characters", "control"),
    ("http://example.com/\u00a0hook", "characters", "whitespace"),
    ("http://example.com\\@127.0.0.1/", "characters", "backslash"),
    # host and port
    ("http:///hook", "host", "host"),
    ("http://:8080/hook", "host", "host"),
    ("http://[::1/hook", "host", "URL"),
    ("http://a..b.com/hook", "host", "host name"),
    ("http://exa%6dple.com/hook", "host", "percent"),
    ("http://[fe80::1%25eth0]/hook", "host", "zone"),
    ("http://example.com:0/hook", "port", "1 to 65535"),
    ("http://example.com:99999/hook", "port", "1 to 65535"),
    ("http://example.com:http/hook", "port", "1 to 65535"),
    # odd IPv4 spellings (inet_aton and browsers accept all of these)
    ("http://0x7f000001/", "ip_spelling", "four decimal numbers"),
    ("http://017700000001/", "ip_spelling", "four decimal numbers"),
    ("http://0177.0.0.1/", "ip_spelling", "four decimal numbers"),
    ("http://0x7f.0x0.0x0.0x1/", "ip_spelling", "four decimal numbers"),
    ("http://127.1/", "ip_spelling", "four decimal numbers"),
    ("http://127.0.1/", "ip_spelling", "four decimal numbers"),
    ("http://0/", "ip_spelling", "four decimal numbers"),
    ("http://127.0.0.1./", "ip_spelling", "four decimal numbers"),
    ("http://127.000.000.001/", "ip_spelling", "four decimal numbers"),
    ("http://127.0.0.256/", "ip_spelling", "four decimal numbers"),
    ("http://8.8.8.010/", "ip_spelling", "four decimal numbers"),  # public, still ambiguous
    ("http://foo.123/", "ip_spelling", "four decimal numbers"),
    # Unicode that normalises to an internal host
    ("http://１２７.０.０.１/", "loopback", "loopback"),  # fullwidth digits
    ("http://127。0。0。1/", "loopback", "loopback"),  # ideographic full stops
    ("http://ⓛocalhost/", "internal_name", "internal"),
    # loopback, private, link-local, shared, unspecified, multicast, reserved (IPv4)
    ("http://127.255.255.254/", "loopback", "loopback"),
    ("http://10.0.0.1/", "private", "10.0.0.0/8"),
    ("http://172.16.5.4/", "private", "172.16.0.0/12"),
    ("http://172.31.255.255/", "private", "172.16.0.0/12"),
    ("http://192.168.1.1/", "private", "192.168.0.0/16"),
    ("http://169.254.1.1/", "link_local", "link-local"),
    ("http://100.64.0.1/", "shared", "100.64.0.0/10"),
    ("http://100.127.255.254/", "shared", "100.64.0.0/10"),
    ("http://0.0.0.0/", "unspecified", "unspecified"),
    ("http://0.1.2.3/", "unspecified", "this network"),
    ("http://224.0.0.1/", "multicast", "multicast"),
    ("http://239.255.255.250/", "multicast", "multicast"),
    ("http://240.0.0.1/", "reserved", "reserved"),
    ("http://255.255.255.255/", "reserved", "reserved"),
    ("http://198.18.0.1/", "reserved", "benchmarking"),
    ("http://192.0.0.8/", "reserved", "reserved"),
    # IPv6
    ("http://[::1]/", "loopback", "loopback"),
    ("http://[::]/", "unspecified", "unspecified"),
    ("http://[fc00::1]/", "private", "unique-local"),
    ("http://[fec0::1]/", "private", "site-local"),
    ("http://[fe80::1]/", "link_local", "link-local"),
    ("http://[ff02::1]/", "multicast", "multicast"),
    ("http://[100::1]/", "reserved", "discard"),
    ("http://[2001:10::1]/", "reserved", "reserved"),
    ("http://[4000::1]/", "reserved", "2000::/3"),
    ("http://[64:ff9b:1::1]/", "private", "NAT64"),
    # IPv6 forms that carry an internal IPv4 address
    ("http://[::ffff:127.0.0.1]/", "loopback", "IPv4-mapped form of a loopback"),
    ("http://[::ffff:7f00:1]/", "loopback", "IPv4-mapped"),
    ("http://[::ffff:10.0.0.1]/", "private", "IPv4-mapped form of a private"),
    ("http://[::127.0.0.1]/", "loopback", "IPv4-compatible"),
    ("http://[::a00:1]/", "private", "IPv4-compatible"),
    ("http://[64:ff9b::7f00:1]/", "loopback", "NAT64 form"),
    ("http://[64:ff9b::192.168.0.1]/", "private", "NAT64 form"),
    ("http://[2002:7f00:1::]/", "loopback", "6to4 form"),
    ("http://[2002:c0a8:101::1]/", "private", "6to4 form"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "loopback", "Teredo form"),
    # internal names
    ("http://LOCALHOST/", "internal_name", "internal"),
    ("http://localhost./", "internal_name", "internal"),
    ("http://api.localhost/", "internal_name", ".localhost"),
    ("http://redis:6379/", "internal_name", "single-label"),
    ("http://kubernetes/", "internal_name", "single-label"),
    ("http://printer.local/", "internal_name", ".local"),
    ("http://db.corp.internal/", "internal_name", ".internal"),
    ("http://router.home.arpa/", "internal_name", ".home.arpa"),
    ("http://host.localdomain/", "internal_name", ".localdomain"),
    # cloud metadata
    ("http://metadata/computeMetadata/v1/", "metadata", "metadata"),
    ("http://metadata.google.internal./", "metadata", "metadata"),
    ("http://metadata.goog/", "metadata", "metadata"),
    ("http://instance-data.ec2.internal/", "metadata", "metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata", "metadata"),
    ("http://169.254.170.2/v2/credentials", "metadata", "metadata"),
    ("http://100.100.100.200/latest/meta-data/", "metadata", "metadata"),
    ("http://[::ffff:169.254.169.254]/", "metadata", "IPv4-mapped form of a cloud metadata"),
    ("http://[2002:a9fe:a9fe::]/", "metadata", "6to4 form of a cloud metadata"),
]

ACCEPTED = [
    "https://example.com/hooks/voicecall",
    "http://example.com:8080/hook?token=abc&x=1",
    "https://EXAMPLE.com/Hook",
    "https://hooks.example.com./hook",  # a fully qualified name with its root dot
    "https://bücher.example/hook",  # internationalised
    "https://xn--bcher-kva.example/hook",
    "https://example.com/path%20with%20escapes",
    "https://example.com",
    "http://93.184.216.34/hook",
    "http://8.8.8.8:8443/",
    "http://172.32.0.1/",  # just past 172.16.0.0/12
    "http://100.63.255.255/",  # just below 100.64.0.0/10
    "http://100.128.0.0/",  # just above it
    "http://169.253.255.255/",
    "http://192.0.2.10/",  # documentation ranges are not internal
    "http://[2001:db8::1]/",
    "http://[2606:4700:4700::1111]/hook",
    "http://[::ffff:8.8.8.8]/",
    "http://[2002:808:808::1]/",  # 6to4 of a public address
    "https://example.com:443/hook#fragment",
]


@pytest.mark.parametrize(("url", "rule", "words"), REFUSED, ids=[r[0][:60] for r in REFUSED])
def test_intake_refuses_with_the_rule_named(url: str, rule: str, words: str) -> None:
    """Refused without DNS; a ValueError (the API's 422) whose message states the rule."""
    with pytest.raises(WebhookUrlRefused) as caught:
        check_at_intake(url, DEFAULT)
    assert isinstance(caught.value, ValueError)
    assert caught.value.rule == rule
    assert words.lower() in str(caught.value).lower()


@pytest.mark.parametrize("url", ACCEPTED)
def test_intake_accepts_public_urls_unchanged(url: str) -> None:
    """A public http(s) URL passes and comes back as given."""
    assert check_at_intake(url, DEFAULT) == url


def test_allow_private_opens_internal_targets_but_never_metadata_or_odd_spellings() -> None:
    """WEBHOOK_ALLOW_PRIVATE: loopback, private ranges and internal names pass; the cloud
    metadata service, ambiguous IPv4 spellings and the URL form rules still refuse."""
    policy = WebhookPolicy(allow_private=True)
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://localhost/hook",
        "http://redis:6379/",
        "http://10.1.2.3/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:192.168.0.1]/hook",
        "http://hooks.corp.internal/hook",
    ):
        assert check_at_intake(url, policy) == url
    for url, rule in (
        ("http://169.254.169.254/", "metadata"),
        ("http://metadata.google.internal/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://2130706433/", "ip_spelling"),
        ("http://user:pw@10.0.0.1/", "userinfo"),
        ("ftp://10.0.0.1/", "scheme"),
    ):
        with pytest.raises(WebhookUrlRefused) as caught:
            check_at_intake(url, policy)
        assert caught.value.rule == rule, url


def test_allowed_hosts_trust_exactly_the_hosts_named() -> None:
    """WEBHOOK_ALLOWED_HOSTS: named hosts and IPs pass wherever they point; *.domain covers
    subdomains only; neighbours stay refused; the form rules still apply."""
    policy = WebhookPolicy(
        allowed_hosts=frozenset(
            {"127.0.0.1", "[::1]", "Hooks.Corp.Internal.", "*.svc.cluster.local", "metadata"}
        )
    )
    for url in (
        "http://127.0.0.1:9000/hook",
        "http://[::1]:9000/hook",
        "http://hooks.corp.internal/hook",
        "http://receiver.ns.svc.cluster.local/hook",
        "http://metadata/",  # named explicitly: trusted
    ):
        assert check_at_intake(url, policy) == url
    for url, rule in (
        ("http://127.0.0.2/", "loopback"),
        ("http://corp.internal/", "internal_name"),
        ("http://svc.cluster.local/", "internal_name"),
        ("http://user:pw@127.0.0.1/", "userinfo"),
    ):
        with pytest.raises(WebhookUrlRefused) as caught:
            check_at_intake(url, policy)
        assert caught.value.rule == rule, url


def test_require_https_refuses_plain_http() -> None:
    """WEBHOOK_REQUIRE_HTTPS: http:// is refused with its own rule, https:// passes."""
    policy = WebhookPolicy(require_https=True)
    with pytest.raises(WebhookUrlRefused, match="https://") as caught:
        check_at_intake("http://example.com/hook", policy)
    assert caught.value.rule == "https_required"
    assert check_at_intake("https://example.com/hook", policy) == "https://example.com/hook"


def test_policy_from_settings() -> None:
    """The policy reads WEBHOOK_ALLOW_PRIVATE, WEBHOOK_ALLOWED_HOSTS, WEBHOOK_REQUIRE_HTTPS."""
    assert load_settings().webhook_policy == WebhookPolicy()
    settings = load_settings(
        webhook_allow_private="true",
        webhook_allowed_hosts="hooks.example.com, *.corp.example,10.0.0.5",
        webhook_require_https="1",
    )
    policy = settings.webhook_policy
    assert policy == WebhookPolicy(
        allow_private=True,
        allowed_hosts=frozenset({"hooks.example.com", "*.corp.example", "10.0.0.5"}),
        require_https=True,
    )


# --- at delivery: resolve once, check every address -----------------------------------


class Dns:
    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append((host, port))
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


def resolve(url: str, dns: Dns, policy: WebhookPolicy = DEFAULT) -> ResolvedTarget:
    return asyncio.run(resolve_and_check(url, policy, dns))


def test_resolve_returns_the_first_checked_address_and_looks_up_once() -> None:
    """One lookup; the target keeps the name for Host/SNI and the address to connect to."""
    dns = Dns(["192.0.2.10", "2001:db8::10"], ["127.0.0.1"])
    target = resolve("https://Hooks.Example.com:8443/a/b?c=d#frag", dns)
    assert target == ResolvedTarget(
        scheme="https",
        host="hooks.example.com",
        port=8443,
        target="/a/b?c=d",
        address="192.0.2.10",
        host_is_ip=False,
    )
    assert dns.lookups == [("hooks.example.com", 8443)]
    assert target.connect_url == "https://192.0.2.10:8443/a/b?c=d"
    assert target.host_header == "hooks.example.com:8443"
    assert target.origin == "https://hooks.example.com:8443"


def test_resolve_brackets_ipv6_and_drops_default_ports_from_host() -> None:
    """An IPv6 answer is bracketed in the connect URL; default ports stay out of Host."""
    target = resolve("http://example.com/hook", Dns(["2001:db8::10"]))
    assert target.connect_url == "http://[2001:db8::10]:80/hook"
    assert target.host_header == "example.com"


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        (["127.0.0.1"], "loopback"),
        (["192.0.2.10", "10.0.0.1"], "private"),  # every address is checked, not just the first
        (["::ffff:127.0.0.1"], "loopback"),
        (["169.254.169.254"], "metadata"),
        (["fd00:ec2::254"], "metadata"),
        (["100.64.1.1"], "shared"),
        (["0.0.0.0"], "unspecified"),
    ],
)
def test_resolve_refuses_a_name_that_points_inside(answer: list[str], rule: str) -> None:
    """A public name resolving to an internal address is refused, naming the address."""
    with pytest.raises(WebhookUrlRefused) as caught:
        resolve("https://innocent.example/hook", Dns(answer))
    assert caught.value.rule == rule
    assert "innocent.example resolves to" in str(caught.value)


def test_resolve_checks_the_url_rules_before_any_lookup() -> None:
    """A URL refused at intake is refused at delivery, without asking DNS."""
    dns = Dns(["192.0.2.10"])
    for url in ("http://user:pw@example.com/", "http://localhost/", "http://0x7f.1/"):
        with pytest.raises(WebhookUrlRefused):
            resolve(url, dns)
    assert dns.lookups == []


def test_a_literal_address_is_not_looked_up() -> None:
    """http://192.0.2.10/ connects to 192.0.2.10 without any lookup."""
    dns = Dns(["127.0.0.1"])
    target = resolve("http://192.0.2.10:8080/hook", dns)
    assert (target.address, target.host_is_ip, dns.lookups) == ("192.0.2.10", True, [])
    v6 = resolve("http://[2001:db8::1]/hook", dns)
    assert (v6.address, v6.host_header, dns.lookups) == ("2001:db8::1", "[2001:db8::1]", [])


def test_private_answers_pass_when_allowed_but_metadata_never_does() -> None:
    """allow_private lets 10.x through at delivery; 169.254.169.254 stays refused. An
    allowlisted host is trusted wherever it resolves, but a metadata address."""
    allow = WebhookPolicy(allow_private=True)
    assert resolve("http://hooks.corp.example/", Dns(["10.0.0.7"]), allow).address == "10.0.0.7"
    with pytest.raises(WebhookUrlRefused, match="metadata"):
        resolve("http://hooks.corp.example/", Dns(["169.254.169.254"]), allow)
    trusted = WebhookPolicy(allowed_hosts=frozenset({"hooks.corp.example"}))
    assert resolve("http://hooks.corp.example/", Dns(["10.0.0.7"]), trusted).address == "10.0.0.7"
    with pytest.raises(WebhookUrlRefused, match="metadata"):
        resolve("http://hooks.corp.example/", Dns(["169.254.169.254"]), trusted)


@pytest.mark.parametrize("answer", [[], ["not-an-address"]])
def test_an_unusable_dns_answer_is_a_dns_error(answer: list[str]) -> None:
    """No address, or something that is not one: WebhookDnsError."""
    with pytest.raises(WebhookDnsError):
        resolve("https://example.com/hook", Dns(answer))


def test_the_system_resolver_answers_addresses() -> None:
    """getaddrinfo through the event loop: localhost gives loopback addresses."""
    answer = asyncio.run(system_resolver("localhost", 80))
    assert answer and set(answer) <= {"127.0.0.1", "::1"}
