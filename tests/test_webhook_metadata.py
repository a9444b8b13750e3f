"""Cloud metadata services are never a webhook target, whatever the policy (issue 18, finding 16).

Every major cloud's metadata and platform addresses, in every IPv6 form that carries an IPv4
address (mapped, compatible, translated, NAT64 well-known and local-use, 6to4, Teredo), are
refused at intake and after DNS at delivery: under the default policy, with
``WEBHOOK_ALLOW_PRIVATE=true``, and for an allowlisted host that resolves to one. An allowlist
entry naming one stops start-up. 168.63.129.16 (Azure WireServer) lies in no internal range,
so only this rule refuses it.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Sequence

import pytest

from tests.fixtures.api import ApiServer
from voicecall.config.settings import load_settings
from voicecall.errors import SettingsError
from voicecall.webhooks.addresses import METADATA_ADDRESSES
from voicecall.webhooks.policy import WebhookPolicy
from voicecall.webhooks.urls import WebhookUrlRefused, check_at_intake, resolve_and_check

METADATA_V4 = {
    "169.254.169.254": "AWS, GCP, Azure IMDS, Oracle, DigitalOcean, Hetzner, OpenStack",
    "169.254.170.2": "AWS ECS task credentials",
    "169.254.170.23": "AWS EKS Pod Identity",
    "169.254.169.253": "AWS DNS resolver",
    "168.63.129.16": "Azure WireServer",
    "100.100.100.200": "Alibaba Cloud",
    "192.0.0.192": "Oracle Cloud",
    "169.254.0.23": "Tencent Cloud",
    "169.254.42.42": "Scaleway",
}
METADATA_V6 = {
    "fd00:ec2::254": "AWS IMDS",
    "fd00:ec2::23": "AWS EKS Pod Identity",
    "fd00:ec2::253": "AWS DNS resolver",
    "fd20:ce::254": "GCP metadata",
    "fd00:42::42": "Scaleway",
    "fe80::a9fe:a9fe": "OpenStack",
}
POLICIES = {
    "default": WebhookPolicy(),
    "allow_private": WebhookPolicy(allow_private=True),
}


def v6(value: int) -> str:
    return str(ipaddress.IPv6Address(value))


def carrying_forms(v4: str) -> dict[str, str]:
    """Every IPv6 form that carries ``v4``, by name."""
    n = int(ipaddress.IPv4Address(v4))
    octets = n.to_bytes(4, "big")

    def local_use_nat64(prefix_len: int) -> str:
        # RFC 6052 section 2.2: the IPv4 bits skip bits 64-71 (the "u" octet).
        prefix = bytearray(ipaddress.IPv6Address("64:ff9b:1::").packed)
        start = prefix_len // 8
        places = [i for i in range(start, 16) if i != 8][:4]
        for place, octet in zip(places, octets, strict=True):
            prefix[place] = octet
        return str(ipaddress.IPv6Address(bytes(prefix)))

    return {
        "mapped": f"::ffff:{v4}",
        "mapped_hex": v6(0xFFFF << 32 | n),
        "compatible": f"::{v4}",
        "translated": f"::ffff:0:{v4}",
        "nat64": f"64:ff9b::{v4}",
        "nat64_local_96": local_use_nat64(96),
        "nat64_local_64": local_use_nat64(64),
        "nat64_local_56": local_use_nat64(56),
        "nat64_local_48": local_use_nat64(48),
        "6to4": v6(0x2002 << 112 | n << 80),
        "teredo_client": v6(
            0x20010000 << 96 | 0x4136E378 << 64 | 0x8000 << 48 | 0x63BF << 32 | (~n & 0xFFFFFFFF)
        ),
    }


ADDRESSES = [(address, "plain") for address in (*METADATA_V4, *METADATA_V6)] + [
    (form, name) for v4 in METADATA_V4 for name, form in carrying_forms(v4).items()
]


def literal_url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}/latest/meta-data/"


def test_the_forms_carry_the_address_they_claim() -> None:
    """The test's own forms: each names an IPv6 address whose embedded IPv4 is the one given
    (checked with ipaddress where it knows the form)."""
    forms = carrying_forms("169.254.169.254")
    assert ipaddress.IPv6Address(forms["mapped_hex"]).ipv4_mapped == ipaddress.IPv4Address(
        "169.254.169.254"
    )
    assert ipaddress.IPv6Address(forms["6to4"]).sixtofour == ipaddress.IPv4Address(
        "169.254.169.254"
    )
    teredo = ipaddress.IPv6Address(forms["teredo_client"]).teredo
    assert teredo is not None and str(teredo[1]) == "169.254.169.254"
    assert forms["nat64_local_96"] == "64:ff9b:1::a9fe:a9fe"
    assert forms["nat64_local_48"] == "64:ff9b:1:a9fe:a9:fe00::"


def test_every_listed_address_is_a_metadata_address() -> None:
    """The list names every address this test attacks with."""
    for address in (*METADATA_V4, *METADATA_V6):
        assert ipaddress.ip_address(address) in METADATA_ADDRESSES, address


@pytest.mark.parametrize("policy", list(POLICIES), ids=list(POLICIES))
@pytest.mark.parametrize(("address", "form"), ADDRESSES, ids=[f"{a}-{f}" for a, f in ADDRESSES])
def test_intake_refuses_every_metadata_address_in_every_form(
    address: str, form: str, policy: str
) -> None:
    """A URL naming a metadata address, in any form, is refused as `metadata` even when
    private targets are allowed."""
    with pytest.raises(WebhookUrlRefused) as caught:
        check_at_intake(literal_url(address), POLICIES[policy])
    assert caught.value.rule == "metadata", (address, form)
    assert "metadata" in str(caught.value)


class Dns:
    def __init__(self, answer: Sequence[str]) -> None:
        self.answer = list(answer)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        return self.answer


DELIVERY_POLICIES = {
    **POLICIES,
    "allowlisted": WebhookPolicy(allowed_hosts=frozenset({"hooks.corp.example"})),
    "allowlisted_and_private": WebhookPolicy(
        allow_private=True, allowed_hosts=frozenset({"*.corp.example"})
    ),
}


@pytest.mark.parametrize("policy", list(DELIVERY_POLICIES), ids=list(DELIVERY_POLICIES))
@pytest.mark.parametrize(("address", "form"), ADDRESSES, ids=[f"{a}-{f}" for a, f in ADDRESSES])
def test_delivery_refuses_a_name_resolving_to_any_metadata_form(
    address: str, form: str, policy: str
) -> None:
    """A name that resolves to a metadata address (among public ones, too) is refused at
    delivery, even when the host is allowlisted or private targets are allowed."""
    dns = Dns(["192.0.2.10", address])
    with pytest.raises(WebhookUrlRefused) as caught:
        asyncio.run(
            resolve_and_check("http://hooks.corp.example/hook", DELIVERY_POLICIES[policy], dns)
        )
    assert caught.value.rule == "metadata", (address, form)


@pytest.mark.parametrize(
    "url",
    [
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata.goog/",
        "http://metadata/",
        "http://instance-data/",
        "http://metadata.tencentyun.com/",
    ],
)
def test_metadata_names_are_refused_even_with_private_targets_allowed(url: str) -> None:
    """The metadata services' host names are refused under allow_private."""
    with pytest.raises(WebhookUrlRefused) as caught:
        check_at_intake(url, POLICIES["allow_private"])
    assert caught.value.rule == "metadata"


def test_azure_wireserver_is_refused_under_the_default_policy_at_intake_and_after_dns() -> None:
    """168.63.129.16 is in no internal range: the metadata rule alone refuses it (finding 16)."""
    with pytest.raises(WebhookUrlRefused, match="metadata") as caught:
        check_at_intake("http://168.63.129.16/machine?comp=goalstate", WebhookPolicy())
    assert caught.value.rule == "metadata"
    with pytest.raises(WebhookUrlRefused, match="metadata"):
        asyncio.run(
            resolve_and_check("https://x.example/", WebhookPolicy(), Dns(["168.63.129.16"]))
        )


def test_neighbours_of_metadata_addresses_follow_the_ordinary_rules() -> None:
    """Only the metadata addresses themselves are special: 168.63.129.17 is public and passes;
    169.254.169.1 is link-local, refused by default and allowed with allow_private."""
    assert check_at_intake("http://168.63.129.17/", WebhookPolicy()) == "http://168.63.129.17/"
    with pytest.raises(WebhookUrlRefused) as caught:
        check_at_intake("http://169.254.169.1/", WebhookPolicy())
    assert caught.value.rule == "link_local"
    allow = POLICIES["allow_private"]
    assert check_at_intake("http://169.254.169.1/", allow) == "http://169.254.169.1/"
    assert check_at_intake("http://[64:ff9b:1::a00:1]/", allow) == "http://[64:ff9b:1::a00:1]/"


@pytest.mark.parametrize(
    "entry", ["169.254.169.254", "168.63.129.16", "[fd00:ec2::254]", "::ffff:169.254.170.23"]
)
def test_an_allowlist_naming_a_metadata_address_stops_start_up(entry: str) -> None:
    """WEBHOOK_ALLOWED_HOSTS cannot open a metadata address: one line naming the setting."""
    with pytest.raises(SettingsError, match="WEBHOOK_ALLOWED_HOSTS") as caught:
        load_settings(webhook_allowed_hosts=f"hooks.example.com,{entry}")
    assert "metadata" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_api_refuses_metadata_webhooks_with_private_targets_allowed(
    start_api: Callable[..., ApiServer], redis_url: str
) -> None:
    """A real API with WEBHOOK_ALLOW_PRIVATE=true: a private receiver is accepted (202), the
    findings' addresses are refused with 422 naming webhook_url."""
    server = start_api(redis_url, env={"WEBHOOK_ALLOW_PRIVATE": "true"})
    otp = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"}
    with server.client() as client:
        accepted = client.post("/v1/calls", json={**otp, "webhook_url": "http://10.0.0.7/hook"})
        assert accepted.status_code == 202, accepted.text
        for url in (
            "http://168.63.129.16/machine?comp=goalstate",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "http://[::ffff:169.254.169.254]/latest/meta-data/",
            "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
        ):
            refused = client.post("/v1/calls", json={**otp, "webhook_url": url})
            assert refused.status_code == 422, (url, refused.text)
            errors = refused.json()["errors"]
            assert [e["field"] for e in errors] == ["webhook_url"], url
            assert "metadata" in errors[0]["message"], url
