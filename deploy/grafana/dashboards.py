"""voicecall's Grafana dashboards as code: ``python deploy/grafana/dashboards.py``.

Writes ``deploy/grafana/dashboards/*.json`` (committed, provisioned by
``provisioning/dashboards/voicecall.yml``). ``--check`` exits 1 when the committed JSON differs
from what this file generates. Plain dictionaries in Grafana's dashboard schema: no library.

Every expression here is sent to a real Prometheus by ``tests/test_prometheus_e2e.py``. Write
them for several API and worker targets: counters are summed, the Redis gauges (served
identically by every API target) are taken with ``max``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
SCHEMA_VERSION = 39


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""


@dataclass
class Panel:
    title: str
    targets: list[Target]
    description: str
    kind: str = "timeseries"  # timeseries | stat | bargauge
    unit: str = "short"
    width: int = 8
    height: int = 8
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    title: str
    panels: list[Panel]


def quantiles(metric: str, by: str = "", selector: str = "") -> list[Target]:
    """p50, p95 and p99 of a histogram, summed over every target (and ``by`` labels)."""
    labels = f"le, {by}" if by else "le"
    suffix = f" {{{{{by}}}}}" if by else ""
    return [
        Target(
            f"histogram_quantile({q}, sum by ({labels}) (rate({metric}_bucket{selector}[{RATE}])))",
            f"p{int(q * 100)}{suffix}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def overview() -> tuple[str, str, list[Row], list[dict[str, Any]]]:
    rows = [
        Row(
            "Throughput and success",
            [
                Panel(
                    "Jobs enqueued /s by kind",
                    [
                        Target(
                            f"sum by (kind) (rate(voicecall_jobs_enqueued_total[{RATE}]))",
                            "{{kind}}",
                        )
                    ],
                    "Jobs accepted at intake, per second.",
                    unit="reqps",
                ),
                Panel(
                    "Jobs finished /s by state",
                    [
                        Target(
                            f"sum by (state) (rate(voicecall_jobs_finished_total[{RATE}]))",
                            "{{state}}",
                        )
                    ],
                    "Jobs reaching a final state, per second.",
                    unit="reqps",
                ),
                Panel(
                    "Success rate by kind",
                    [Target("voicecall:job_success:ratio_rate5m", "{{kind}}")],
                    "Share of finished jobs whose call was answered (or OTP delivered), 5 min window.",
                    unit="percentunit",
                ),
                Panel(
                    "Jobs by state",
                    [Target("max by (state) (voicecall_jobs_by_state)", "{{state}}")],
                    "Jobs in each state now (Redis, vc:stats:states).",
                    kind="bargauge",
                ),
            ],
        ),
        Row(
            "Backlog",
            [
                Panel(
                    "Queue depth",
                    [Target("max by (queue) (voicecall_queue_depth)", "{{queue}}")],
                    "Messages outstanding per Dramatiq queue (waiting, or taken by a worker).",
                ),
                Panel(
                    "Scheduled jobs",
                    [Target("max(voicecall_schedule_size)", "scheduled")],
                    "Worker-mode jobs waiting in the schedule for their time.",
                ),
                Panel(
                    "Oldest overdue scheduled job",
                    [Target("max(voicecall_schedule_oldest_overdue_seconds)", "overdue")],
                    "How long the most overdue scheduled job has been due (0: none). Alert above 2 min.",
                    kind="stat",
                    unit="s",
                    extra={"thresholds": [(None, "green"), (30, "orange"), (120, "red")]},
                ),
            ],
        ),
        Row(
            "eSMS",
            [
                Panel(
                    "eSMS latency p50 / p95 / p99",
                    quantiles("voicecall_esms_request_duration_seconds"),
                    "Latency of every eSMS request (all endpoints, failed tries included).",
                    unit="s",
                ),
                Panel(
                    "eSMS requests by result code",
                    [
                        Target(
                            f"sum by (endpoint, code) (rate(voicecall_esms_requests_total[{RATE}]))",
                            "{{endpoint}} {{code}}",
                        )
                    ],
                    "100 accepted, 105 status not ready, 124 accepted earlier; http_*, timeout and others are failures.",
                    unit="reqps",
                ),
                Panel(
                    "eSMS error ratio",
                    [Target("voicecall:esms_errors:ratio_rate5m", "errors")],
                    "Share of eSMS requests answered with anything but 100, 105 or 124 (5 min). Alert above 10%.",
                    unit="percentunit",
                ),
            ],
        ),
        Row(
            "Retries and dead letters",
            [
                Panel(
                    "Retries",
                    [
                        Target(
                            f"sum by (reason) (rate(voicecall_esms_retries_in_attempt_total[{RATE}]))",
                            "in attempt: {{reason}}",
                        ),
                        Target(
                            f"sum by (kind) (rate(voicecall_send_retries_total[{RATE}]))",
                            "next attempt: {{kind}}",
                        ),
                    ],
                    "Retries inside one attempt (tenacity), and attempts put back in the due set.",
                    unit="reqps",
                ),
                Panel(
                    "Dead letters",
                    [Target("max by (queue) (voicecall_dead_letters)", "{{queue}}")],
                    "Dead-lettered messages per queue (voicecall dlq list). Alert when rising.",
                ),
                Panel(
                    "Messages processed /s",
                    [
                        Target(
                            f"sum by (queue_name) (rate(dramatiq_messages_total[{RATE}]))",
                            "{{queue_name}}",
                        ),
                    ],
                    "Dramatiq messages handed to the send engine, per queue.",
                    unit="reqps",
                ),
            ],
        ),
        Row(
            "Timing",
            [
                Panel(
                    "Send lateness p50 / p95 / p99",
                    quantiles("voicecall_send_lateness_seconds"),
                    "Actual send time minus due time. Alert when p95 is above 30 s.",
                    unit="s",
                ),
                Panel(
                    "Time to final result p95 by kind",
                    [
                        Target(
                            "histogram_quantile(0.95, sum by (le, kind) "
                            f"(rate(voicecall_time_to_final_seconds_bucket[{RATE}])))",
                            "{{kind}}",
                        )
                    ],
                    "From intake to the final state.",
                    unit="s",
                ),
                Panel(
                    "Call duration p50 / p95",
                    quantiles("voicecall_call_duration_seconds")[:2],
                    "Call duration reported by eSMS.",
                    unit="s",
                ),
            ],
        ),
        Row(
            "Callbacks, polling and limits",
            [
                Panel(
                    "Callbacks by result",
                    [
                        Target(
                            f"sum by (result) (rate(voicecall_callbacks_total[{RATE}]))",
                            "{{result}}",
                        )
                    ],
                    "accepted ended a job (CALLBACK_CONFIRM=off); confirming: a status poll will "
                    "(the default); held: came before eSMS named the SMSID, then held_applied, "
                    "held_expired or held_dropped; repeat: already final; forged (bad signature) "
                    "and smsid_mismatch (another call's SMSID) alert.",
                    unit="reqps",
                ),
                Panel(
                    "Status requests per finished call",
                    [
                        Target(
                            "(sum(rate(voicecall_status_requests_total[5m])) or vector(0))"
                            ' / sum(rate(voicecall_jobs_finished_total{state=~"completed|expired"}[5m]))',
                            "status requests per call",
                        )
                    ],
                    "GetSendStatus requests per call that reached eSMS (goal: at most 1; about 1 "
                    "with CALLBACK_CONFIRM=status, the default; 0 with off while callbacks work).",
                ),
                Panel(
                    "Rate-limit refusals",
                    [
                        Target(
                            f"sum by (kind, limit) (rate(voicecall_rate_limited_total[{RATE}]))",
                            "{{kind}} {{limit}}",
                        )
                    ],
                    "Sends held back or refused by the global rate, the per-phone limit or quiet hours.",
                    unit="reqps",
                ),
            ],
        ),
        Row(
            "Outcomes",
            [
                Panel(
                    "Voice OTP delivered share",
                    [
                        Target("voicecall:otp_delivery:ratio_rate30m", "last 30 min"),
                        Target("voicecall:otp_delivery:ratio_rate1d", "last day"),
                    ],
                    "Voice OTP calls delivered, of those that ended (cancelled left out). Alert under 50%, or under 80% of the day's share.",
                    unit="percentunit",
                ),
                Panel(
                    "Callbacks per accepted call",
                    [
                        Target(
                            "sum(rate(voicecall_callbacks_total"
                            '{result=~"accepted|confirming|held|repeat|pending"}[30m]))'
                            " / sum(rate(voicecall_esms_requests_total"
                            '{endpoint=~"voice_otp|record_call|template_call", code="100"}[30m]))',
                            "callbacks per call",
                        )
                    ],
                    "Callbacks carrying a result per call eSMS accepted, 30 min (about 1 when callbacks work). Alert under 0.1.",
                ),
                Panel(
                    "Expired jobs /h by kind",
                    [
                        Target(
                            f'sum by (kind) (rate(voicecall_jobs_finished_total{{state="expired"}}[{RATE}])) * 3600',
                            "{{kind}}",
                        )
                    ],
                    "OTPs past their time to live before they were placed, and calls with no result by their deadline.",
                ),
                Panel(
                    "Webhook deliveries by result",
                    [
                        Target(
                            f"sum by (result) (rate(voicecall_webhooks_total[{RATE}]))",
                            "{{result}}",
                        )
                    ],
                    "Webhook delivery tries: delivered, or error (retried with backoff). Alert above 20% errors.",
                    unit="reqps",
                ),
            ],
        ),
        Row(
            "API",
            [
                Panel(
                    "API requests /s by route and status",
                    [
                        Target(
                            f"sum by (route, status) (rate(voicecall_api_requests_total[{RATE}]))",
                            "{{route}} {{status}}",
                        )
                    ],
                    "Requests answered by the API processes, by route template (unmatched: any unknown path).",
                    unit="reqps",
                ),
                Panel(
                    "Intake latency p50 / p95 / p99",
                    quantiles(
                        "voicecall_api_request_duration_seconds",
                        selector='{route="/v1/calls", method="POST", status_class="2xx"}',
                    ),
                    "POST /v1/calls answered 2xx, from arrival to the last byte out.",
                    unit="s",
                ),
                Panel(
                    "API p99 latency by route",
                    [
                        Target(
                            "histogram_quantile(0.99, sum by (le, route) "
                            f"(rate(voicecall_api_request_duration_seconds_bucket[{RATE}])))",
                            "{{route}}",
                        )
                    ],
                    "Slowest 1% of requests of each route, every status.",
                    unit="s",
                ),
                Panel(
                    "API errors by route and status",
                    [
                        Target(
                            "sum by (route, status) (rate(voicecall_api_requests_total"
                            f'{{status=~"[45].."}}[{RATE}]))',
                            "{{route}} {{status}}",
                        )
                    ],
                    "4xx: refused requests (auth, validation, limits, forged callbacks, unknown paths). 5xx: the API failed.",
                    unit="reqps",
                ),
                Panel(
                    "API 5xx share",
                    [Target("voicecall:api_errors:ratio_rate5m", "5xx share")],
                    "Share of requests answered 5xx over 5 min, probes and scrapes left out. Alert above 5%.",
                    kind="stat",
                    unit="percentunit",
                    extra={"thresholds": [(None, "green"), (0.01, "orange"), (0.05, "red")]},
                ),
            ],
        ),
        Row(
            "Balance and cost",
            [
                Panel(
                    "eSMS balance",
                    [Target("max(voicecall_esms_balance_vnd)", "balance")],
                    "Account balance in VND (GetBalance, polled every BALANCE_POLL_INTERVAL_S).",
                    kind="stat",
                    unit="suffix: VND",
                    extra={"thresholds": [(None, "red"), (500000, "orange"), (2000000, "green")]},
                ),
                Panel(
                    "Days of balance left",
                    [Target("voicecall:esms_balance_days_left", "days left")],
                    "Balance divided by the last day's spend. Alert under 3 days.",
                    kind="stat",
                    unit="d",
                    extra={"thresholds": [(None, "red"), (3, "orange"), (7, "green")]},
                ),
                Panel(
                    "Cost per hour by kind",
                    [
                        Target(
                            f"sum by (kind) (rate(voicecall_cost_vnd_total[{RATE}])) * 3600",
                            "{{kind}}",
                        )
                    ],
                    "VND per hour reported by eSMS (callbacks and status).",
                    unit="suffix: VND",
                ),
            ],
        ),
        Row(
            "Workers",
            [
                Panel(
                    "Workers alive",
                    [
                        Target("max(voicecall_workers_alive)", "worker processes (heartbeat)"),
                        Target('sum(up{job="voicecall-worker"})', "worker targets up"),
                    ],
                    "Dramatiq worker processes with a Redis heartbeat, and worker targets Prometheus reaches.",
                    kind="stat",
                    extra={"thresholds": [(None, "red"), (1, "green")]},
                ),
                Panel(
                    "Worker utilisation",
                    [
                        Target(
                            f"sum(rate(dramatiq_message_duration_milliseconds_sum[{RATE}])) / 1000"
                            " / sum(voicecall_worker_threads)",
                            "busy share of threads",
                        ),
                        Target(
                            "sum(dramatiq_messages_inprogress) / sum(voicecall_worker_threads)",
                            "in progress now",
                        ),
                    ],
                    "Busy worker threads divided by the threads of the live worker processes.",
                    unit="percentunit",
                ),
                Panel(
                    "Build info",
                    [Target("count by (version) (voicecall_build_info)", "{{version}}")],
                    "Processes reporting each voicecall version.",
                    kind="stat",
                ),
            ],
        ),
        Row(
            "Redis",
            [
                Panel(
                    "Redis role and address by process",
                    [
                        Target(
                            "max by (job, instance, role, address) (voicecall_redis_role == 1)",
                            "{{job}} {{instance}}: {{role}} {{address}}",
                        )
                    ],
                    "The Redis node each process uses now (1 while used). After a failover every "
                    "process shows the new primary's address; two primary addresses at once for "
                    "long mean a partition.",
                    width=10,
                ),
                Panel(
                    "Redis primary changes",
                    [
                        Target(
                            "sum by (job, instance) "
                            f"(increase(voicecall_redis_primary_changes_total[{RATE}]))",
                            "{{job}} {{instance}}",
                        )
                    ],
                    "Primary changes each process saw (Sentinel promoted a replica). Alert: "
                    "VoicecallRedisFailover.",
                    width=5,
                ),
                Panel(
                    "Intake WAIT timeouts /s",
                    [
                        Target(
                            f"sum by (instance) (rate(voicecall_redis_wait_timeouts_total[{RATE}]))",
                            "{{instance}}",
                        )
                    ],
                    "Intake requests answered 503 because the new job did not reach "
                    "REDIS_WAIT_REPLICAS replicas in time. Alert when they go on for 3 minutes.",
                    unit="reqps",
                    width=5,
                ),
                Panel(
                    "Redis reachable",
                    [Target("min(voicecall_exporter_redis_up)", "exporter")],
                    "1 when every API exporter could read Redis at its last scrape. Alert: "
                    "VoicecallRedisUnreachable, after 2 minutes at 0.",
                    kind="stat",
                    width=4,
                    extra={"thresholds": [(None, "red"), (1, "green")]},
                ),
            ],
        ),
    ]
    return "voicecall-overview", "voicecall overview", rows, []


def by_kind() -> tuple[str, str, list[Row], list[dict[str, Any]]]:
    kind = '{kind=~"$kind"}'
    endpoint = '{endpoint=~"$kind"}'  # the send endpoints are named after the kinds
    rows = [
        Row(
            "Intake and results",
            [
                Panel(
                    "Enqueued and finished /s",
                    [
                        Target(
                            f"sum by (kind) (rate(voicecall_jobs_enqueued_total{kind}[{RATE}]))",
                            "{{kind}} enqueued",
                        ),
                        Target(
                            f"sum by (kind, state) (rate(voicecall_jobs_finished_total{kind}[{RATE}]))",
                            "{{kind}} {{state}}",
                        ),
                    ],
                    "Jobs accepted and jobs reaching each final state, per second.",
                    unit="reqps",
                ),
                Panel(
                    "Finished by state and outcome",
                    [
                        Target(
                            f"sum by (state, outcome) (increase(voicecall_jobs_finished_total{kind}[$__range]))",
                            "{{state}} {{outcome}}",
                        )
                    ],
                    "Jobs finished over the dashboard's time range.",
                    kind="bargauge",
                ),
                Panel(
                    "Success rate",
                    [Target(f"voicecall:job_success:ratio_rate5m{kind}", "{{kind}}")],
                    "Share of finished jobs answered (calls) or delivered (OTP), 5 min window.",
                    unit="percentunit",
                ),
            ],
        ),
        Row(
            "Timing",
            [
                Panel(
                    "Time to final result by state (p95)",
                    [
                        Target(
                            "histogram_quantile(0.95, sum by (le, state) "
                            f"(rate(voicecall_time_to_final_seconds_bucket{kind}[{RATE}])))",
                            "{{state}}",
                        )
                    ],
                    "From intake to the final state, by final state.",
                    unit="s",
                ),
                Panel(
                    "Send lateness p50 / p95 / p99",
                    quantiles("voicecall_send_lateness_seconds", selector=kind),
                    "Actual send time minus due time.",
                    unit="s",
                ),
                Panel(
                    "Call duration p50 / p95 / p99",
                    quantiles("voicecall_call_duration_seconds", selector=kind),
                    "Call duration reported by eSMS.",
                    unit="s",
                ),
            ],
        ),
        Row(
            "eSMS sends",
            [
                Panel(
                    "Send requests by result code",
                    [
                        Target(
                            f"sum by (endpoint, code) (rate(voicecall_esms_requests_total{endpoint}[{RATE}]))",
                            "{{endpoint}} {{code}}",
                        )
                    ],
                    "eSMS send requests of this kind by result code.",
                    unit="reqps",
                ),
                Panel(
                    "Send latency p50 / p95 / p99",
                    quantiles("voicecall_esms_request_duration_seconds", selector=endpoint),
                    "Latency of this kind's eSMS send requests.",
                    unit="s",
                ),
                Panel(
                    "Retries",
                    [
                        Target(
                            f"sum by (kind) (rate(voicecall_send_retries_total{kind}[{RATE}]))",
                            "next attempt: {{kind}}",
                        ),
                        Target(
                            f"sum by (endpoint, reason) (rate(voicecall_esms_retries_in_attempt_total{endpoint}[{RATE}]))",
                            "in attempt: {{endpoint}} {{reason}}",
                        ),
                    ],
                    "Attempts put back in the due set, and retries inside one attempt.",
                    unit="reqps",
                ),
            ],
        ),
        Row(
            "Polling, limits and cost",
            [
                Panel(
                    "Status requests per finished call",
                    [
                        Target(
                            f"(sum(rate(voicecall_status_requests_total{kind}[5m])) or vector(0))"
                            f' / sum(rate(voicecall_jobs_finished_total{{kind=~"$kind", state=~"completed|expired"}}[5m]))',
                            "status requests per call",
                        )
                    ],
                    "GetSendStatus requests per call that reached eSMS (goal: at most 1).",
                ),
                Panel(
                    "Rate-limit refusals by limit",
                    [
                        Target(
                            f"sum by (limit) (rate(voicecall_rate_limited_total{kind}[{RATE}]))",
                            "{{limit}}",
                        )
                    ],
                    "Sends held back or refused: global rate, per-phone limit, quiet hours.",
                    unit="reqps",
                ),
                Panel(
                    "Cost per hour",
                    [
                        Target(
                            f"sum by (kind) (rate(voicecall_cost_vnd_total{kind}[{RATE}])) * 3600",
                            "{{kind}}",
                        )
                    ],
                    "VND per hour reported by eSMS.",
                    unit="suffix: VND",
                ),
            ],
        ),
    ]
    variable = {
        "name": "kind",
        "label": "kind",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": "label_values(voicecall_jobs_enqueued_total, kind)", "refId": "kinds"},
        "definition": "label_values(voicecall_jobs_enqueued_total, kind)",
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": "voice_otp|record_call|template_call",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }
    return "voicecall-by-kind", "voicecall by kind", rows, [variable]


def _thresholds(steps: list[tuple[float | None, str]]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def render_panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if "thresholds" in panel.extra:
        defaults["thresholds"] = _thresholds(panel.extra["thresholds"])
        defaults["color"] = {"mode": "thresholds"}
    options: dict[str, Any] = {}
    if panel.kind == "timeseries":
        options = {
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi"},
        }
    elif panel.kind in ("stat", "bargauge"):
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {
                "datasource": DATASOURCE,
                "expr": target.expr,
                "legendFormat": target.legend,
                "refId": chr(ord("A") + index),
            }
            for index, target in enumerate(panel.targets)
        ],
    }


def render(
    uid: str, title: str, rows: list[Row], variables: list[dict[str, Any]]
) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row in rows:
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id, y, x, row_height = next_id + 1, y + 1, 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            panels.append(render_panel(panel, next_id, x, y))
            next_id, x, row_height = next_id + 1, x + panel.width, max(row_height, panel.height)
        y += row_height
    datasource_variable = {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {"text": "Prometheus", "value": "prometheus"},
    }
    return {
        "uid": uid,
        "title": title,
        "tags": ["voicecall"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [datasource_variable, *variables]},
        "annotations": {"list": []},
        "links": [
            {
                "title": "voicecall dashboards",
                "type": "dashboards",
                "tags": ["voicecall"],
                "asDropdown": True,
            }
        ],
        "panels": panels,
    }


def generate() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    out = {}
    for build in (overview, by_kind):
        uid, title, rows, variables = build()
        out[f"{uid}.json"] = json.dumps(render(uid, title, rows, variables), indent=2) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed JSON is stale"
    )
    args = parser.parse_args(argv)
    stale = []
    for name, text in generate().items():
        path = OUT_DIR / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"stale dashboards (run make dashboards): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
