"""Every knob of the simulator in one validated object, :class:`SimConfig`.

Each field is one command-line flag (``--field-name``, see :mod:`simulator.cli`) and one key
of ``PATCH /_sim/config``. Durations named ``*_s`` are *simulated* seconds, multiplied by
``time_scale`` before the simulator waits them, unless their description says "real".
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulator.outcomes import parse_outcome

DEFAULT_API_KEY = "sim-api-key"
DEFAULT_SECRET_KEY = "sim-secret-key"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"  # eSMS reads SendDate as Vietnam local time
DEFAULT_BALANCE_VND = 10_000_000  # enough for any test; 103 is reached by configuring less
DEFAULT_PRICE_VND = 850  # the TotalPrice of the docs' Voice OTP status example
DEFAULT_CID = "02871002454"  # the caller number in the docs' callback example
# Deterministic outcomes by the last digits of the national number (tests rely on these).
DEFAULT_RULES: dict[str, str] = {"1": "noanswer", "2": "fail", "3": "answer-on-2"}
DEFAULT_BLOCKED = ["0900000099"]
ANY = "*"  # a catalogue holding "*" accepts every id


def parse_rule(text: str) -> tuple[str, str]:
    """``"SUFFIX=OUTCOME"`` as a pair; ValueError if there is no ``=``."""
    suffix, sep, outcome = text.partition("=")
    if not sep:
        raise ValueError(f"rule {text!r} must be SUFFIX=OUTCOME, e.g. 5=noanswer")
    return suffix.strip(), outcome.strip()


class SimConfig(BaseModel):
    """The simulator's knobs; ``description`` is the ``--help`` text of each flag."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # Account
    api_key: str = Field(DEFAULT_API_KEY, description="ApiKey accepted (else code 101).")
    secret_key: str = Field(DEFAULT_SECRET_KEY, description="SecretKey accepted (else 101).")
    balance: int = Field(
        DEFAULT_BALANCE_VND,
        ge=0,
        description="Starting balance in VND; restored by reset. Below price: code 103.",
    )
    price: int = Field(DEFAULT_PRICE_VND, ge=0, description="VND charged per accepted call.")
    user_id: int = Field(9999, description="UserID returned by GetBalance_json.")

    # Catalogues
    templates: list[str] = Field(
        default_factory=lambda: [ANY],
        description="TemplateIds known to MakeCallTemplate_V2, comma-separated; * = any (104).",
    )
    recordings: list[str] = Field(
        default_factory=lambda: [ANY],
        description="Recording ids known to MakeCallRecord_V2, comma-separated; * = any (106).",
    )
    brandnames: list[str] = Field(
        default_factory=list,
        description="Brandnames known to Voice OTP, comma-separated; empty = not checked (104).",
    )
    blocked_phones: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED),
        description="Blocked numbers (any accepted form), comma-separated (code 99).",
    )

    # Outcomes and the life of a call
    rules: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_RULES),
        description="Outcome by suffix of the national number, SUFFIX=OUTCOME, longest wins; "
        "OUTCOME is answer, noanswer, fail or answer-on-N.",
    )
    p_noanswer: float = Field(
        0.0, ge=0, le=1, description="Chance a number no rule matches is never answered."
    )
    p_fail: float = Field(0.0, ge=0, le=1, description="Chance a number no rule matches fails.")
    ring_s: float = Field(30.0, ge=0, description="Ring time of one dial.")
    recording_s: float = Field(
        20.0, ge=0, description="Length of one play of a recording, template or OTP message."
    )
    default_max_retry: int = Field(0, ge=0, le=10, description="MaxRetry when not given.")
    default_wait_retry_s: float = Field(60.0, ge=0, description="WaitRetry when not given.")
    default_max_repeat: int = Field(1, ge=1, le=10, description="MaxRepeat when not given.")
    otp_max_retry: int = Field(1, ge=0, le=10, description="Redials of a Voice OTP call.")
    time_scale: float = Field(
        1.0, gt=0, description="Factor applied to every simulated duration (0.01: 100x faster)."
    )
    timezone: str = Field(DEFAULT_TIMEZONE, description="Zone SendDate is read in.")
    request_id_window_s: float = Field(
        86_400.0, ge=0, description="How long a RequestId is refused after use (code 124)."
    )
    status_not_ready_s: float = Field(
        1.0, ge=0, description="Real seconds after sending during which status lookups give 105."
    )
    smsid_trailing_space: bool = Field(
        True, description="Append the documented trailing space to voice-call SMSIDs."
    )

    # Callbacks
    callback_retries: int = Field(
        5, ge=0, le=20, description="Resends of a callback not answered HTTP 200."
    )
    callback_retry_delay_s: float = Field(30.0, ge=0, description="Wait between callback sends.")
    callback_timeout_s: float = Field(5.0, gt=0, description="Real seconds per callback request.")
    callback_noanswer_status: str = Field(
        "NO ANSWER", description="CallStatus of an unanswered call in voice callbacks."
    )
    callback_query_mode: Literal["merge", "append"] = Field(
        "merge",
        description="merge: eSMS fields replace same-named keys already in CallbackUrl; "
        "append: added after them (duplicates kept).",
    )
    callback_drop_rate: float = Field(
        0.0, ge=0, le=1, description="Chance a callback is never sent."
    )
    callback_duplicate_rate: float = Field(
        0.0, ge=0, le=1, description="Chance a callback is delivered twice."
    )
    cid: str = Field(DEFAULT_CID, description="Caller number (CID) in voice callbacks.")

    # Faults on the eSMS endpoints (never on /_sim)
    latency_ms: float = Field(0.0, ge=0, description="Real added latency of every response.")
    jitter_ms: float = Field(0.0, ge=0, description="Spread of the latency (see latency-dist).")
    latency_dist: Literal["uniform", "normal"] = Field(
        "uniform",
        description="uniform: latency + U(0, jitter); normal: N(latency, jitter), at least 0.",
    )
    error_rate: float = Field(0.0, ge=0, le=1, description="Chance of an IIS HTTP 500 page.")
    timeout_rate: float = Field(0.0, ge=0, le=1, description="Chance the server hangs.")
    hang_s: float = Field(30.0, ge=0, description="Real seconds a hang lasts (then HTTP 504).")
    accept_then_drop_rate: float = Field(
        0.0, ge=0, le=1, description="Chance an accepted send's response is lost."
    )
    accept_then_hang_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Chance an accepted send's answer is withheld for hang_s (then sent).",
    )
    callback_before_answer_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Chance an accepted send's answer is withheld until the call has ended and "
        "its callback was answered (or given up), at most hang_s real seconds: the callback "
        "arrives before the client learns the SMSID.",
    )
    drop_mode: Literal["reset", "502"] = Field(
        "reset", description="How a response is lost: reset (connection cut mid-body) or 502."
    )
    fault_scope: Literal["all", "send"] = Field(
        "all", description="Endpoints latency/500/hang apply to: all eSMS ones, or sends only."
    )
    tps_limit: int = Field(0, ge=0, description="Sends per real second before code 160; 0 = none.")
    seed: int | None = Field(None, description="Seed of every random choice (reproducible).")

    @field_validator("rules", mode="before")
    @classmethod
    def _rule_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return dict(parse_rule(str(item)) for item in value)
        return value

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: dict[str, str]) -> dict[str, str]:
        for suffix, outcome in value.items():
            if not suffix.isdigit():
                raise ValueError(f"rule suffix {suffix!r} must be digits")
            parse_outcome(outcome)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as Asia/Ho_Chi_Minh") from None
        return value

    @field_validator("templates", "recordings", "brandnames", "blocked_phones", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The zone SendDate is read in."""
        return ZoneInfo(self.timezone)

    def scaled(self, simulated_s: float) -> float:
        """Real seconds the simulator waits for ``simulated_s`` simulated seconds."""
        return simulated_s * self.time_scale

    def public(self) -> dict[str, object]:
        """The config as JSON, credentials masked (it is served by ``GET /_sim/config``)."""
        data = self.model_dump()
        data["api_key"] = data["secret_key"] = "***"
        return data
