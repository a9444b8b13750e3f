"""Webhook settings: the secret's rule, who requires it, the allowlist, the retry delays."""

from __future__ import annotations

import base64
import random

import pytest

from voicecall.config.settings import SettingsError, load_settings
from worker.timing import webhook_retry_delay_s

WHSEC = "whsec_" + base64.b64encode(b"settings-test-webhook-secret-012").decode()


class FixedRandom(random.Random):
    """A generator that always draws the same value."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_defaults_keep_webhooks_off_the_internal_network() -> None:
    """Out of the box: no private targets, no allowlist, http allowed, 10 s deadline, 8 retries."""
    settings = load_settings()
    assert settings.webhook_allow_private is False
    assert settings.webhook_allowed_hosts == ()
    assert settings.webhook_require_https is False
    assert (settings.webhook_timeout_s, settings.webhook_max_retries) == (10.0, 8)


@pytest.mark.parametrize(
    "value", ["short", "test-callback-secret-0123456789", "whsec_dG9vLXNob3J0", "whsec_%%%%"]
)
def test_a_malformed_webhook_secret_stops_start_up_naming_the_rule(value: str) -> None:
    """One line naming WEBHOOK_SECRET and the whsec_ rule, without echoing the value."""
    with pytest.raises(SettingsError) as caught:
        load_settings(webhook_secret=value)
    message = str(caught.value)
    assert message.startswith("WEBHOOK_SECRET: must be whsec_")
    assert value.removeprefix("whsec_") not in message


def test_the_worker_requires_its_own_webhook_secret_and_the_api_does_not() -> None:
    """A worker without WEBHOOK_SECRET does not start (CALLBACK_SECRET never stands in)."""
    worker = {
        "esms_api_key": "k",
        "esms_secret_key": "s",
        "callback_secret": "c" * 20,
        "public_base_url": "http://a",
    }
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET is required by `voicecall worker`"):
        load_settings(**worker).require("worker")
    assert load_settings(**worker, webhook_secret=WHSEC).require("worker").webhook_secret == WHSEC
    load_settings(api_tokens="t" * 16, callback_secret="c" * 20).require("api")


def test_allowed_hosts_are_read_comma_separated_and_normalised() -> None:
    """Case, spaces, brackets and root dots are normalised; a malformed entry is named."""
    settings = load_settings(
        webhook_allowed_hosts=" Hooks.Example.COM., *.Corp.Example ,[::1],10.0.0.5,, "
    )
    assert settings.webhook_allowed_hosts == (
        "hooks.example.com",
        "*.corp.example",
        "::1",
        "10.0.0.5",
    )
    with pytest.raises(SettingsError, match=r"WEBHOOK_ALLOWED_HOSTS: .*'a\.\.b'"):
        load_settings(webhook_allowed_hosts="ok.example,a..b")


def test_the_timeout_is_bounded() -> None:
    """WEBHOOK_TIMEOUT_S: above 0, at most 300 s."""
    for bad in (0, -1, 301):
        with pytest.raises(SettingsError, match="WEBHOOK_TIMEOUT_S"):
            load_settings(webhook_timeout_s=bad)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"webhook_host_concurrency": "0"}, "WEBHOOK_HOST_CONCURRENCY: "),
        ({"webhook_host_concurrency": "-3"}, "WEBHOOK_HOST_CONCURRENCY: "),
        ({"webhook_host_concurrency": "eight"}, "WEBHOOK_HOST_CONCURRENCY: "),
        ({"webhook_host_concurrency": "8.5"}, "WEBHOOK_HOST_CONCURRENCY: "),
        ({"webhook_host_concurrency": "10001"}, "WEBHOOK_HOST_CONCURRENCY: "),
    ],
)
def test_a_bad_host_share_stops_start_up_with_one_line(values: dict[str, str], words: str) -> None:
    """WEBHOOK_HOST_CONCURRENCY: a whole number from 1 to 10,000, else one line naming it."""
    with pytest.raises(SettingsError) as caught:
        load_settings(**values)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_host_share_defaults_to_8_of_64_and_a_smaller_pool_needs_no_change() -> None:
    """By default one host holds at most 8 of the 64 webhook slots; a WEBHOOK_CONCURRENCY
    below 8 is still a valid setting (the share is then the whole pool)."""
    settings = load_settings()
    assert (settings.webhook_host_concurrency, settings.webhook_concurrency) == (8, 64)
    assert load_settings(webhook_concurrency=2).webhook_host_concurrency == 8


def test_retry_delays_grow_fourfold_up_to_the_cap() -> None:
    """Without jitter: 5, 20, 80, ... 20480 s, then the 6 h cap for every later retry."""
    settings = load_settings()
    top = FixedRandom(0.0)  # draws no jitter
    delays = [webhook_retry_delay_s(n, settings, rng=top) for n in range(1, 10)]
    assert delays == [5, 20, 80, 320, 1280, 5120, 20480, 21600, 21600]
    assert webhook_retry_delay_s(10_000, settings, rng=top) == 21600


def test_jitter_shortens_a_delay_by_at_most_half() -> None:
    """Every delay lies in [d/2, d]; with the real generator, too."""
    settings = load_settings(webhook_retry_base_s=2, webhook_retry_max_s=100)
    low = webhook_retry_delay_s(2, settings, rng=FixedRandom(0.999999))
    assert 4.0 <= low < 4.0001
    for retry in range(1, 8):
        full = min(100.0, 2 * 4 ** (retry - 1))
        assert full / 2 <= webhook_retry_delay_s(retry, settings) <= full


def test_retry_after_lengthens_the_wait_but_never_past_the_cap() -> None:
    """A receiver's Retry-After beats a shorter delay, is ignored when shorter, and is capped."""
    settings = load_settings()
    top = FixedRandom(0.0)
    assert webhook_retry_delay_s(1, settings, retry_after_s=120, rng=top) == 120
    assert webhook_retry_delay_s(3, settings, retry_after_s=1, rng=top) == 80
    assert webhook_retry_delay_s(1, settings, retry_after_s=10**9, rng=top) == 21600


def test_retry_counts_from_one_and_the_cap_is_at_least_the_base() -> None:
    """retry 0 is a programming error; WEBHOOK_RETRY_MAX_S below the base stops start-up."""
    with pytest.raises(ValueError, match="from 1"):
        webhook_retry_delay_s(0, load_settings())
    with pytest.raises(SettingsError, match="WEBHOOK_RETRY_MAX_S"):
        load_settings(webhook_retry_base_s=60, webhook_retry_max_s=30)
