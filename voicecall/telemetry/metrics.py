"""Every ``voicecall_*`` metric, defined once (documented in docs/metrics.md).

prometheus-client picks multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set before
this module is first imported: the worker entry point and ``voicecall api`` set it up, so the
values of Dramatiq's several worker processes (and of several API processes) add up.
Labels stay low-cardinality: never a phone number or a job id.

Gauges that describe Redis (jobs by state, schedule, queue depth, dead letters) are not kept
here: :mod:`producer.exporter` reads them at scrape time from the API's ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from voicecall import __version__
from voicecall.job.states import Kind, Outcome, State

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30)
_LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800)
_FINAL_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 86400)
_CALL_BUCKETS = (1, 5, 10, 20, 30, 60, 90, 120, 300, 600)
# The API answers in milliseconds (intake target: p99 under 25 ms), slow paths in seconds.
_API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

JOBS_ENQUEUED = Counter("voicecall_jobs_enqueued", "Jobs accepted at intake.", ["kind"])
JOBS_FINISHED = Counter(
    "voicecall_jobs_finished", "Jobs that reached a final state.", ["kind", "state", "outcome"]
)
ESMS_REQUESTS = Counter(
    "voicecall_esms_requests",
    "eSMS HTTP requests by endpoint and result code.",
    ["endpoint", "code"],
)
ESMS_LATENCY = Histogram(
    "voicecall_esms_request_duration_seconds",
    "eSMS HTTP request latency.",
    ["endpoint"],
    buckets=_LATENCY_BUCKETS,
)
ESMS_ATTEMPT_RETRIES = Counter(
    "voicecall_esms_retries_in_attempt",
    "Retries of an eSMS request inside one attempt (tenacity).",
    ["endpoint", "reason"],
)
SEND_RETRIES = Counter(
    "voicecall_send_retries", "Send attempts rescheduled by Dramatiq after a failure.", ["kind"]
)
SEND_LATENESS = Histogram(
    "voicecall_send_lateness_seconds",
    "Actual send time minus due time.",
    ["kind"],
    buckets=_LATENESS_BUCKETS,
)
TIME_TO_FINAL = Histogram(
    "voicecall_time_to_final_seconds",
    "From intake to the final state.",
    ["kind", "state"],
    buckets=_FINAL_BUCKETS,
)
CALL_DURATION = Histogram(
    "voicecall_call_duration_seconds",
    "Call duration reported by eSMS.",
    ["kind"],
    buckets=_CALL_BUCKETS,
)
COST = Counter("voicecall_cost_vnd", "Cost of calls reported by eSMS, in VND.", ["kind"])
CALLBACKS = Counter(
    "voicecall_callbacks",
    "eSMS callbacks by result: as received (accepted, confirming, held, hold_full, repeat, "
    "pending, forged, smsid_mismatch, refused, unknown_job, invalid), and how held ones ended "
    "(held_applied, smsid_mismatch, held_expired, held_dropped, repeat).",
    ["result"],
)
STATUS_REQUESTS = Counter(
    "voicecall_status_requests", "Status requests (GetSendStatus) made, by kind.", ["kind"]
)
RATE_LIMITED = Counter(
    "voicecall_rate_limited",
    "Jobs held back or refused by a limit (global, phone, quiet_hours).",
    ["kind", "limit"],
)
WEBHOOKS = Counter("voicecall_webhooks", "Outbound webhook deliveries by result.", ["result"])
API_REQUESTS = Counter(
    "voicecall_api_requests",
    "HTTP requests answered by the API, by route template, method and status code.",
    ["route", "method", "status"],
)
API_LATENCY = Histogram(
    "voicecall_api_request_duration_seconds",
    "HTTP request duration in the API, from the first byte in to the last byte out.",
    ["route", "method", "status_class"],
    buckets=_API_BUCKETS,
)
WORKER_THREADS = Gauge(
    "voicecall_worker_threads",
    "Worker threads of the live Dramatiq worker processes (capacity, for utilisation).",
    multiprocess_mode="livesum",
)
# Redis high availability (voicecall.store.failover): what each process uses now.
REDIS_ROLE = Gauge(
    "voicecall_redis_role",
    "1 for the Redis this process uses now, by role (primary, replica, unknown) and address.",
    ["role", "address"],
    multiprocess_mode="livemax",
)
REDIS_PRIMARY_CHANGES = Counter(
    "voicecall_redis_primary_changes", "Changes of the Redis primary this process has seen."
)
REDIS_WAIT_TIMEOUTS = Counter(
    "voicecall_redis_wait_timeouts",
    "Intakes refused because WAIT saw fewer replicas than REDIS_WAIT_REPLICAS in time.",
)
BUILD_INFO = Gauge(
    "voicecall_build_info", "Build information.", ["version"], multiprocess_mode="max"
)


# Label values known in advance, exported at 0 from the start: a counter series that first
# appears at 1 is invisible to increase(), and alerts on these must see the first event (and
# a ratio needs its numerator even while it is 0: no OTP delivered at all is the worst case).
_CALLBACK_RESULTS = (
    "accepted",
    "confirming",
    "repeat",
    "pending",
    "forged",
    "smsid_mismatch",
    "refused",
    "unknown_job",
    "invalid",
    "held",
    "hold_full",
    "held_applied",
    "held_expired",
    "held_dropped",
)
_WEBHOOK_RESULTS = ("delivered", "error")
ESMS_ACCEPTED = "100"  # eSMS's CodeResult for an accepted send; send endpoints are named by kind
_FINISHED_AT_ZERO = (
    *((kind, State.EXPIRED, "") for kind in Kind),
    (Kind.VOICE_OTP, State.COMPLETED, Outcome.DELIVERED),
    (Kind.VOICE_OTP, State.COMPLETED, Outcome.UNDELIVERED),
)


def mark_build() -> None:
    """Build info, and the alert-relevant counters created at zero."""
    BUILD_INFO.labels(version=__version__).set(1)
    for result in _CALLBACK_RESULTS:
        CALLBACKS.labels(result=result).inc(0)
    for result in _WEBHOOK_RESULTS:
        WEBHOOKS.labels(result=result).inc(0)
    for kind, state, outcome in _FINISHED_AT_ZERO:
        JOBS_FINISHED.labels(kind=kind, state=state, outcome=outcome).inc(0)
    REDIS_PRIMARY_CHANGES.inc(0)
    REDIS_WAIT_TIMEOUTS.inc(0)
    for kind in Kind:  # sends accepted: the calls callbacks are expected for
        ESMS_REQUESTS.labels(endpoint=kind, code=ESMS_ACCEPTED).inc(0)
