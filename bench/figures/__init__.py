"""One module per figure of issues 6, 11 and 20, each with ``NUMBER``, ``TITLE`` and ``run(ctx) -> rows``.

:data:`ORDER` is the order they run in: figure 7 reads what the others measured on the way
(7d: the indexes figure 10 filled).
"""

from __future__ import annotations

from types import ModuleType

from bench.figures import (
    crash_redrive,
    failover,
    footprint,
    hanging_provider,
    intake_rate,
    latency_bound,
    otp_isolation,
    per_process,
    scaling,
    scheduling,
    search,
    send_overhead,
    slow_webhooks,
    status_requests,
    tracing_cost,
    webhook_hosts,
)

ORDER: tuple[ModuleType, ...] = (
    send_overhead,
    latency_bound,
    scaling,
    scheduling,
    status_requests,
    otp_isolation,
    intake_rate,
    search,
    hanging_provider,
    slow_webhooks,
    webhook_hosts,
    crash_redrive,
    per_process,
    tracing_cost,
    footprint,
    failover,
)
