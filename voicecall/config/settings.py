"""One validated settings object, read only from the environment (or ``.env``, ``.env.demo``).

A missing or invalid setting stops start-up with one line naming the setting and the rule
(:class:`SettingsError`, exit code 2 from the CLI). Each role asks for what it needs with
:meth:`Settings.require`, so a producer needs only ``REDIS_URL`` while a worker also needs
the eSMS credentials and the callback secret.
"""

from __future__ import annotations

import functools
from datetime import time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from voicecall.config.clients import ApiToken, parse_api_tokens
from voicecall.config.env_files import ENV_FILES
from voicecall.config.otel_env import check_environment
from voicecall.config.redis_settings import RedisSettings
from voicecall.config.secret_reuse import reused_settings
from voicecall.config.values import (
    ip_address,
    ip_networks,
    parse_quiet_hours,
    parse_quota,
    time_zone,
    trace_link,
)
from voicecall.errors import SettingsError
from voicecall.webhooks.policy import WebhookPolicy, parse_allowed_hosts
from voicecall.webhooks.signing import WebhookSecret

DEFAULT_ESMS_REST_URL = "https://rest.esms.vn/MainService.svc/json"
DEFAULT_ESMS_VOICE_URL = "https://voiceapi.esms.vn/MainService.svc/json"
DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"  # eSMS reads SendDate as Vietnam local time
__all__ = ["REQUIRED_BY_ROLE", "Settings", "SettingsError", "get_settings", "load_settings"]

Role = Literal["api", "worker", "producer", "scheduler"]

# What each role cannot start without (beyond the defaults every field has).
REQUIRED_BY_ROLE: dict[str, tuple[str, ...]] = {
    "producer": (),
    "scheduler": (),
    "api": ("API_TOKENS", "CALLBACK_SECRET"),
    "worker": (
        "ESMS_API_KEY",
        "ESMS_SECRET_KEY",
        "CALLBACK_SECRET",
        "PUBLIC_BASE_URL",
        "WEBHOOK_SECRET",
    ),
}


class Settings(RedisSettings):
    """Every setting voicecall reads. Environment names are the field names upper-cased."""

    # .env, then .env.demo while `make run` runs (voicecall.config.env_files); the environment wins
    model_config = SettingsConfigDict(env_file=ENV_FILES, extra="ignore", case_sensitive=False)

    # Connections: voicecall.config.redis_settings

    # eSMS
    esms_api_key: str = ""
    esms_secret_key: str = ""
    esms_rest_url: str = DEFAULT_ESMS_REST_URL
    esms_voice_url: str = DEFAULT_ESMS_VOICE_URL
    esms_connect_timeout_s: float = Field(default=5.0, gt=0)
    esms_read_timeout_s: float = Field(default=15.0, gt=0)
    # Shared by every eSMS request of a process (both send queues and polls); a request waits
    # for a free connection inside its own deadline.
    esms_max_connections: int = Field(default=512, ge=1)
    esms_otp_method: Literal["post", "get"] = "post"
    esms_brandname: str = ""
    esms_sandbox: bool = False
    # tenacity, inside one attempt
    esms_attempt_tries: int = Field(default=3, ge=1, le=10)
    esms_attempt_budget_s: float = Field(default=20.0, gt=0)
    esms_backoff_base_s: float = Field(default=0.2, gt=0)
    esms_backoff_max_s: float = Field(default=5.0, gt=0)

    # Callbacks and the API
    public_base_url: str = ""
    callback_secret: str = ""
    # "status" (default): a callback's final result is confirmed with one status request (by
    # SMSID) before the job becomes final; the job then ends with eSMS's answer. Costs one
    # GetSendStatus per call. "off" trusts the signed callback: whoever holds a job's callback
    # URL and its SMSID sets its result (see docs/architecture.md, decision 4).
    callback_confirm: Literal["off", "status"] = "status"
    # A callback that comes before eSMS's send answer named the job's SMSID is held on the job
    # (at most 3 per job) until that answer; one held longer than this is dropped, not applied.
    callback_hold_s: float = Field(default=900.0, ge=1, le=86_400)
    # Comma-separated entries, each name=token or a bare token (voicecall.config.clients).
    api_tokens: Annotated[list[ApiToken], NoDecode] = Field(default_factory=list)
    api_max_body_bytes: int = Field(default=2_000_000, ge=1024)
    # The console's cookies carry Secure: "auto" (default) unless PUBLIC_BASE_URL is http://;
    # true or false wins. Never from the request's scheme, which a proxy may hide.
    console_cookie_secure: bool | None = None
    # Who may set X-Forwarded-Proto/-For for the API (uvicorn's proxy headers): IP addresses
    # or networks, comma-separated, or "*"; anyone else's are ignored. uvicorn's default.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    timezone: str = DEFAULT_TIMEZONE
    # The console links a trace id here ({trace_id} filled in), e.g. Jaeger's /trace/{trace_id}.
    trace_link_template: Annotated[str, AfterValidator(trace_link)] = ""

    # Jobs
    otp_ttl_s: int = Field(default=300, ge=10, le=3600)
    send_at_past_tolerance_s: int = Field(default=60, ge=0)
    send_at_horizon_days: int = Field(default=30, ge=1, le=365)
    finished_retention_days: int = Field(default=30, ge=1)

    # Worker: retries between attempts (kept in the due set, never a sleeping thread)
    send_max_retries: int = Field(default=8, ge=0, le=100)
    send_retry_min_backoff_s: float = Field(default=5.0, gt=0)
    send_retry_max_backoff_s: float = Field(default=600.0, gt=0)
    send_retry_window_s: int = Field(default=6 * 3600, ge=60, le=24 * 3600)
    # How long a claim holds a job for its worker; the lease also ends when the worker stops
    # beating (WORKER_LIVENESS_S). LEASE_CHECK_S: how soon after a claim the sweeper looks.
    send_lease_s: int = Field(default=60, ge=5)
    lease_check_s: float = Field(default=2.0, gt=0, le=60)
    send_time_limit_s: int = Field(default=60, ge=5)
    shutdown_timeout_s: int = Field(default=25, ge=1)
    # Dramatiq's idle long-poll cap (its default is 1,000 ms): how late an idle worker sees a
    # new message.
    worker_idle_poll_ms: int = Field(default=100, ge=10, le=5000)
    # The send engine: calls, polls and webhook deliveries in flight per worker process and
    # queue (each one a coroutine, not a thread), and how long a Dramatiq thread waits for a
    # free slot before the job is postponed a little (it never blocks other queues longer).
    # 512 slots: at 2 s eSMS latency a process still reaches 256 calls/s, above what one
    # core gives it (figure 9d), so CPU, not the slot count, bounds it. Of them, bulk calls
    # (record and template) have at most BULK_SEND_CONCURRENCY requests at eSMS at once:
    # more only queue at eSMS, where an OTP sent meanwhile waits behind them (figure 5, an
    # OTP behind 50,000 bulk calls at a saturated simulator: p99 1.5-2.9 s with 512 per
    # process, 1.0 s with 128, 0.38 s with 32). 32 still give 160 bulk calls/s per process
    # at 0.2 s latency, 16 at 2 s (figure 9d): raise it if eSMS answers slowly and bulk must
    # go faster. Bulk calls waiting for their due time hold a slot, not a request.
    send_concurrency: int = Field(default=512, ge=1, le=10_000)
    bulk_send_concurrency: int = Field(default=32, ge=1, le=10_000)
    poll_concurrency: int = Field(default=64, ge=1, le=10_000)
    webhook_concurrency: int = Field(default=64, ge=1, le=10_000)
    # Of the webhook slots, how many deliveries to one receiver host may hold at once; the
    # rest wait without a slot, so a host whose receivers hang keeps no other host waiting.
    # At or above WEBHOOK_CONCURRENCY: no bound per host.
    webhook_host_concurrency: int = Field(default=8, ge=1, le=10_000)
    handoff_wait_s: float = Field(default=0.5, gt=0, le=30)
    # A worker process beats every WORKER_HEARTBEAT_S; one silent for WORKER_LIVENESS_S is
    # dead: its claimed calls and unacknowledged messages are re-driven at once.
    worker_heartbeat_s: float = Field(default=0.5, gt=0, le=10)
    worker_liveness_s: float = Field(default=3.0, gt=0, le=120)

    # Scheduler and sweeper
    schedule_horizon_s: float = Field(default=10.0, gt=0, le=600)
    # False when the scheduler runs apart (`voicecall scheduler`): workers then only work.
    scheduler_in_worker: bool = True
    scheduler_interval_s: float = Field(default=0.2, gt=0, le=60)
    # How long past its due time a job handed to a worker may go without being claimed before
    # the sweeper sends it again (that worker may have died holding it).
    sweep_stale_queued_s: float = Field(default=2.0, gt=0, le=3600)
    # A poll or webhook message not acted on within this is sent again.
    redrive_after_s: float = Field(default=30.0, gt=0, le=3600)

    # Polling (decision 4)
    poll_ring_s: int = Field(default=45, ge=1)
    poll_default_recording_s: int = Field(default=30, ge=1)
    poll_otp_first_s: int = Field(default=60, ge=1)
    poll_margin_s: int = Field(default=30, ge=0)
    # Scales the planned call sequence; 1 in production. The demo and tests set it to the
    # simulator's --time-scale so the first poll lands when the simulated call has ended.
    poll_time_scale: float = Field(default=1.0, gt=0, le=1)
    poll_backoff_factor: float = Field(default=2.0, ge=1.0)
    poll_max_interval_s: int = Field(default=1800, ge=1)
    poll_deadline_s: int = Field(default=6 * 3600, ge=60)
    poll_not_found_deadline_s: int = Field(default=900, ge=10)
    recording_lengths_s: dict[str, int] = Field(default_factory=dict)

    # Protection (decision 6)
    global_send_rate_per_s: int = Field(default=20, ge=0)  # 0: no global limit
    phone_limit_calls: int = Field(default=5, ge=0)  # 0: no per-phone limit
    phone_limit_window_s: int = Field(default=600, ge=1)
    quiet_hours: Annotated[tuple[time, time] | None, NoDecode] = (time(21, 0), time(8, 0))

    # Webhooks (voicecall/webhooks/urls.py, voicecall/webhooks/signing.py, worker/webhooks.py)
    # whsec_ + base64 of 24-64 random bytes; its own key, never CALLBACK_SECRET.
    webhook_secret: str = ""
    webhook_max_retries: int = Field(default=8, ge=0, le=50)
    # One deadline for the whole delivery: DNS, connect, request, response headers and body.
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=300)
    webhook_allow_private: bool = False  # true: internal receivers (loopback, 10/8, ...) allowed
    # Hosts trusted wherever they resolve, comma-separated; "*.example.com" covers subdomains.
    webhook_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    webhook_require_https: bool = False
    # Retry delays: base * 4^(retry-1), capped, with jitter (webhook_retry_delay_s).
    webhook_retry_base_s: float = Field(default=5.0, gt=0, le=3600)
    webhook_retry_max_s: float = Field(default=6 * 3600.0, gt=0, le=7 * 24 * 3600)

    # Metrics
    balance_poll_interval_s: int = Field(default=300, ge=10)
    metrics_port: int = Field(default=9191, ge=0, le=65535)
    # The address the worker's metrics port binds to: loopback unless set. Containers set
    # 0.0.0.0 (the image does) so Prometheus in another container or pod can scrape it.
    metrics_host: str = DEFAULT_METRICS_HOST
    # Set: the API's /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` (it shows
    # the eSMS balance and dead letters); Prometheus sends it (authorization.credentials_file).
    metrics_token: str = ""
    # Per API client (a name of API_TOKENS): at most N calls accepted in any S seconds ("N/S",
    # e.g. "600/60"); empty: no quota. One client cannot use up a victim's per-phone allowance
    # or flood eSMS.
    api_token_quota: Annotated[tuple[int, int] | None, NoDecode] = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _secrets_apart(cls, data: Any) -> Any:
        """Refuse one secret in two settings (voicecall.config.secret_reuse), before any setting's
        own rule, so the line names both settings whatever their form."""
        if isinstance(data, dict):
            reused = reused_settings({str(k).lower(): v for k, v in data.items()})
            if reused:
                raise ValueError(reused)
        return data

    @field_validator("esms_rest_url", "esms_voice_url", "public_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: object) -> object:
        if isinstance(value, str):
            value = [entry for entry in value.split(",") if entry.strip()]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return parse_api_tokens(value)
        return value

    @field_validator("console_cookie_secure", mode="before")
    @classmethod
    def _cookie_secure(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "auto"):
            return None
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _forwarded_allow_ips(cls, value: str) -> str:
        return ip_networks(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return time_zone(value)

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _quiet(cls, value: object) -> object:
        return parse_quiet_hours(value) if isinstance(value, str) else value

    @field_validator("callback_secret", "metrics_token")
    @classmethod
    def _secret(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("metrics_host")
    @classmethod
    def _metrics_host(cls, value: str) -> str:
        return ip_address(value)

    @field_validator("api_token_quota", mode="before")
    @classmethod
    def _quota(cls, value: object) -> object:
        return parse_quota(value) if isinstance(value, str) else value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: str) -> str:
        if value:
            WebhookSecret.parse(value)  # raises ValueError stating the rule, never the value
        return value

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _webhook_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple | set | frozenset):
            try:
                return parse_allowed_hosts(str(v) for v in value)
            except ValueError as exc:
                raise ValueError(
                    f"each comma-separated entry must be a host name, *.domain or an IP address: {exc}"
                ) from None
        return value

    @model_validator(mode="after")
    def _webhook_retry_bounds(self) -> Settings:
        if self.webhook_retry_max_s < self.webhook_retry_base_s:
            raise ValueError("WEBHOOK_RETRY_MAX_S must be at least WEBHOOK_RETRY_BASE_S")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def webhook_policy(self) -> WebhookPolicy:
        """Where webhooks may go (WEBHOOK_ALLOW_PRIVATE, _ALLOWED_HOSTS, _REQUIRE_HTTPS)."""
        return WebhookPolicy(
            allow_private=self.webhook_allow_private,
            allowed_hosts=frozenset(self.webhook_allowed_hosts),
            require_https=self.webhook_require_https,
        )

    @property
    def console_cookie_is_secure(self) -> bool:
        """CONSOLE_COOKIE_SECURE, or when it is auto: unless PUBLIC_BASE_URL is http://."""
        if self.console_cookie_secure is not None:
            return self.console_cookie_secure
        return not self.public_base_url.startswith("http://")

    def require(self, role: Role) -> Settings:
        """Raise :class:`SettingsError` naming the first setting ``role`` needs but lacks."""
        for name in REQUIRED_BY_ROLE[role]:
            if not getattr(self, name.lower()):
                raise SettingsError(f"{name} is required by `voicecall {role}` and is not set")
        return self


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; one clear line on the first problem."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:  # a rule over several settings: its message names them
            raise SettingsError(msg) from None
        raise SettingsError(f"{str(err['loc'][0]).upper()}: {msg}") from None
    check_environment()  # OTEL_*: tracing's standard variables
    return settings


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
