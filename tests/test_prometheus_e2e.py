"""Every dashboard panel and every alert, evaluated by a real Prometheus scraping a real stack.

Redis, the eSMS simulator, two API services (one single-process, one with two uvicorn
processes), and a worker with two Dramatiq processes run as real processes; a real
``prometheus`` scrapes them every second with the project's recording and alert rules. A batch
of jobs of each kind runs through, with the outcomes that feed every metric: answered, not
answered and failed calls, a recording eSMS does not know (rejected), an OTP over the
per-phone limit, sends that fail and are retried or dead-lettered, dropped callbacks (so the
poller asks), a forged callback, one for an unknown job, and a scanner's unknown path. Then
every panel expression and every alert expression goes through Prometheus's HTTP API: each
must parse, each panel must return data, and only the alerts this batch provokes fire. The
result table is written to bench/results/prometheus-e2e.md.

A second stack then provokes the outcome alerts: Voice OTPs that are not delivered or expire,
callbacks that never come, webhooks to a receiver that is down, and an API process whose
Redis does not answer. Each of those alerts must fire (or be pending in Prometheus's own rule
evaluation); the table goes to bench/results/prometheus-e2e-alerts.md.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fixtures.deploy import PROM_DIR, ROOT, alert_rules, dashboard_targets
from tests.fixtures.redis import free_port
from tests.fixtures.sim import EsmsSim
from tests.fixtures.stack import CALLBACK_SECRET, Service, Stack, wait_until
from voicecall.esms.callbacks import CALLBACK_PATH, sign

pytestmark = pytest.mark.prometheus

REPORT = ROOT / "bench" / "results" / "prometheus-e2e.md"
ALERTS_REPORT = ROOT / "bench" / "results" / "prometheus-e2e-alerts.md"
ROUTES = {
    "/v1/calls", "/v1/calls/{id}", "/v1/esms/callback/{job_id}/{nonce}/{signature}",
    "/healthz", "/readyz", "/metrics", "unmatched",
}  # fmt: skip
OUTCOME_ALERTS = {
    "VoicecallOtpDeliveryLow", "VoicecallCallbacksMissing", "VoicecallWebhooksFailing",
    "VoicecallJobsExpiring", "VoicecallApiErrors",
}  # fmt: skip
SCRAPE_INTERVAL = "1s"


class Prometheus:
    """A prometheus process on a free port, with its own config and data directory."""

    def __init__(self, binary: str, directory: Path, targets: dict[str, list[str]]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": [str(PROM_DIR / "recording.yml"), str(PROM_DIR / "alerts.yml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": hosts}]}
                for job, hosts in targets.items()
            ],
        }
        self.config_path = directory / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = directory / "prometheus.log"
        command = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.url, timeout=10)
        wait_until(
            lambda: self.http.get("/-/ready").status_code == 200, 30, what="Prometheus ready"
        )

    def query(self, expr: str) -> dict[str, Any]:
        """The JSON answer of an instant query (``status`` is "success" or "error")."""
        answer: dict[str, Any] = self.http.get("/api/v1/query", params={"query": expr}).json()
        return answer

    def value(self, expr: str) -> float | None:
        """The single value of ``expr`` now, or None when it has no sample."""
        result = self.query(expr)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def targets_up(self) -> int:
        return int(self.value("count(up == 1)") or 0)

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture()
def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "the prometheus binary is not installed: run scripts/install-system-deps.sh "
            "(apt-get install prometheus)"
        )
    return binary


@pytest.fixture()
def prometheus_factory(
    prometheus_binary: str, tmp_path: Path
) -> Iterator[Callable[[dict[str, list[str]]], Prometheus]]:
    started: list[Prometheus] = []

    def start(targets: dict[str, list[str]]) -> Prometheus:
        directory = tmp_path / f"prometheus-{len(started)}"
        directory.mkdir()
        server = Prometheus(prometheus_binary, directory, targets)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _post(stack: Stack, api_url: str, body: dict[str, Any]) -> str:
    response = httpx.post(
        f"{api_url}/v1/calls", json=body, headers={"Authorization": f"Bearer {stack.token}"}
    )
    assert response.status_code in (200, 202), response.text
    return str(response.json()["id"])


def _wait_state(stack: Stack, job_id: str, states: set[str], timeout: float = 20) -> str:
    return str(
        wait_until(
            lambda: (state := stack.job(job_id).state.value) in states and state,
            timeout,
            interval=0.02,
            what=f"job in {states}",
        )
    )


def _run_batch(stack: Stack, api_urls: list[str]) -> list[str]:
    """Jobs of each kind with every outcome the dashboards show; returns their ids."""
    ids: list[str] = []
    # Sends that fail every try: one Dramatiq retry (SEND_MAX_RETRIES=1), then failed and
    # dead-lettered. eSMS answers HTTP 500 only on sends (fault_scope=send).
    stack.sim.configure(error_rate=1.0, fault_scope="send")
    doomed = [
        _post(
            stack, api_urls[0], {"kind": "record_call", "phone": "0907000005", "record_id": "rec1"}
        ),
        _post(stack, api_urls[1], {"kind": "voice_otp", "phone": "0907000006", "content": "Ma 1"}),
    ]
    ids += doomed
    for job_id in doomed:
        assert _wait_state(stack, job_id, {"failed"}) == "failed"
    # A send that fails once, then goes through on its Dramatiq retry.
    retried = _post(
        stack,
        api_urls[0],
        {"kind": "template_call", "phone": "0907000007", "template_id": "tpl1", "variables": ["a"]},
    )
    ids.append(retried)
    _wait_state(stack, retried, {"retrying"})
    stack.sim.configure(error_rate=0.0)  # the retried template call now goes through

    bodies: list[dict[str, Any]] = [
        {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"},
        {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 223456"},
        {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 323456"},  # over the phone limit
        {"kind": "voice_otp", "phone": "0901234571", "content": "Ma 423456"},  # never answered
        {"kind": "voice_otp", "phone": "0901234584", "content": "Ma 523456"},
        {"kind": "record_call", "phone": "0901234568", "record_id": "rec1"},
        {"kind": "record_call", "phone": "0901234561", "record_id": "rec1"},  # never answered
        {"kind": "record_call", "phone": "0901234562", "record_id": "rec1"},  # fails
        {"kind": "record_call", "phone": "0901234564", "record_id": "unknown-recording"},  # rejected
        {"kind": "template_call", "phone": "0901234569", "template_id": "tpl1", "variables": ["a", "b"]},
        {"kind": "template_call", "phone": "0901234565", "template_id": "tpl1", "variables": ["c"]},
        {"kind": "template_call", "phone": "0901234581", "template_id": "tpl2", "variables": []},
    ]  # fmt: skip
    for index, body in enumerate(bodies):
        ids.append(_post(stack, api_urls[index % len(api_urls)], body))
        if index < 2:  # let the first two OTPs use the phone's allowance before the third
            _wait_state(stack, ids[-1], {"submitted", "completed"})
    # A forged callback (bad signature) and a signed one for a job that does not exist.
    query = {"ReferenceId": "x", "CallStatus": "ANSWERED"}
    forged = httpx.get(f"{api_urls[0]}{CALLBACK_PATH}/{ids[-1]}/n/{'0' * 32}", params=query)
    assert forged.status_code == 403
    unknown = httpx.get(
        f"{api_urls[1]}{CALLBACK_PATH}/no-such-job/n/{sign(CALLBACK_SECRET, 'no-such-job', 'n')}",
        params=query,
    )
    assert unknown.status_code == 200
    scanned = httpx.get(f"{api_urls[1]}/v1/esms/callback/{ids[-1]}")  # no route: "unmatched"
    assert scanned.status_code == 404
    return ids


def _report(
    rows: list[tuple[str, str, str, bool, int]], alerts: list[tuple[str, bool, str]]
) -> str:
    lines = [
        "# Prometheus end-to-end: dashboard panels and alerts",
        "",
        "Written by `tests/test_prometheus_e2e.py`: a real Prometheus scraped a real stack "
        "(API x2 with 3 processes, worker with 2 processes, simulator) after a batch of jobs; "
        "each expression was sent to `/api/v1/query` with Grafana's variables substituted "
        "(`$__rate_interval`=1m, `$__range`=5m, `$kind`=all kinds).",
        "",
        "## Panels",
        "",
        "| dashboard | panel | targets with data | has data |",
        "|---|---|---|---|",
    ]
    panels: dict[tuple[str, str], list[bool]] = {}
    for dashboard, panel, _ref, has_data, _n in rows:
        panels.setdefault((dashboard, panel), []).append(has_data)
    for (dashboard, panel), flags in panels.items():
        lines.append(
            f"| {dashboard} | {panel} | {sum(flags)}/{len(flags)} | {'yes' if any(flags) else 'NO'} |"
        )
    lines += [
        "",
        "## Alerts",
        "",
        "| alert | parses | has data (firing or pending now: value) |",
        "|---|---|---|",
    ]
    for name, parses, data in alerts:
        lines.append(f"| {name} | {'yes' if parses else 'NO'} | {data} |")
    return "\n".join(lines) + "\n"


def test_every_panel_returns_data_and_every_alert_parses(
    stack_factory: Callable[..., Stack],
    esms_sim_factory: Callable[..., EsmsSim],
    prometheus_factory: Callable[[dict[str, list[str]]], Prometheus],
) -> None:
    """A real batch scraped by a real Prometheus: counts add up across processes, every panel has data, every alert parses."""
    sim = esms_sim_factory(recordings="rec1", callback_drop_rate=0.4, latency_ms=2, jitter_ms=8)
    stack = stack_factory(
        webhook_allowed_hosts="127.0.0.1",  # the webhook receiver is local
        sim=sim,
        send_max_retries=1,
        esms_attempt_tries=4,  # each doomed attempt: 4 failed requests
        send_retry_min_backoff_s=1.0,
        send_retry_max_backoff_s=1.5,
        phone_limit_calls=2,
        balance_poll_interval_s=10,
    )
    api_multi_port = free_port()
    api_multi: Service = stack._service(
        "api-multi", ["api", "--host", "127.0.0.1", "--port", str(api_multi_port), "--workers", "2"]
    )
    api_multi_url = f"http://127.0.0.1:{api_multi_port}"
    wait_until(lambda: httpx.get(f"{api_multi_url}/readyz").status_code == 200, 30, what="API x2")
    assert api_multi.alive
    worker = stack.start_worker(processes=2, threads=4)
    prometheus = prometheus_factory(
        {
            "voicecall-api": [f"127.0.0.1:{stack.api_port}", f"127.0.0.1:{api_multi_port}"],
            "voicecall-worker": [f"127.0.0.1:{worker.env['METRICS_PORT']}"],
        }
    )
    wait_until(lambda: prometheus.targets_up() == 3, 20, what="3 targets up")

    ids = _run_batch(stack, [stack.api_url, api_multi_url])
    jobs = stack.wait_final(ids, timeout=60)
    states = [job.state.value for job in jobs.values()]
    assert states.count("failed") == 2 and states.count("rejected") == 2, states
    assert jobs[ids[2]].state.value == "completed"  # the retried template call

    # Counters add up across 3 API processes and 2 worker processes: each job counted once.
    def settled() -> bool:
        enqueued = prometheus.value("sum(voicecall_jobs_enqueued_total)")
        finished = prometheus.value("sum(voicecall_jobs_finished_total)")
        balance = prometheus.value("max(voicecall_esms_balance_vnd)")
        return enqueued == len(ids) and finished == len(ids) and 0 < (balance or 0) <= 10_000_000

    wait_until(settled, 20, interval=0.5, what="counters scraped")
    assert prometheus.value("max(voicecall_workers_alive)") == 2
    assert prometheus.value("sum(voicecall_worker_threads)") == 2 * 4
    assert prometheus.value('sum(voicecall_callbacks_total{result="forged"})') == 1
    assert prometheus.value('sum(voicecall_callbacks_total{result="unknown_job"})') == 1
    assert prometheus.value('sum(voicecall_rate_limited_total{limit="phone"})') == 1
    assert prometheus.value("max(voicecall_dead_letters)") == 1  # both doomed jobs: per queue
    assert prometheus.value("sum(max by (queue) (voicecall_dead_letters))") == 2
    assert prometheus.value('count(voicecall_build_info{version!=""})') == 3
    # The API's own metrics, summed over its 3 processes: each request once, by route template.
    api = "sum(voicecall_api_requests_total{{{}}})".format
    assert prometheus.value(api('route="/v1/calls", method="POST", status="202"')) == len(ids)
    assert (
        prometheus.value(
            api('route="/v1/esms/callback/{job_id}/{nonce}/{signature}", status="403"')
        )
        == 1
    )
    assert prometheus.value(api('route="unmatched", status="404"')) == 1
    routes = prometheus.query("group by (route) (voicecall_api_requests_total)")["data"]["result"]
    assert {series["metric"]["route"] for series in routes} <= ROUTES
    time.sleep(3)  # a few more rule evaluations over the finished batch

    rows: list[tuple[str, str, str, bool, int]] = []
    failures: list[str] = []
    for target in dashboard_targets():
        answer = prometheus.query(target.promql)
        if answer["status"] != "success":
            failures.append(f"{target.panel} {target.ref_id}: {answer.get('error')}")
            continue
        samples = len(answer["data"]["result"])
        rows.append((target.dashboard, target.panel, target.ref_id, samples > 0, samples))
    alerts: list[tuple[str, bool, str]] = []
    for rule in alert_rules():
        answer = prometheus.query(rule.expr)
        if answer["status"] != "success":
            failures.append(f"alert {rule.name}: {answer.get('error')}")
        firing = answer.get("data", {}).get("result", [])
        data = f"yes ({float(firing[0]['value'][1]):.4g})" if firing else "no"
        alerts.append((rule.name, answer["status"] == "success", data))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(_report(rows, alerts))

    assert failures == []
    panels: dict[tuple[str, str], bool] = {}
    for dashboard, panel, _ref, has_data, _n in rows:
        panels[(dashboard, panel)] = panels.get((dashboard, panel), False) or has_data
    assert [panel for panel, has_data in panels.items() if not has_data] == []
    empty_targets = [f"{panel} {ref}" for _d, panel, ref, has_data, _n in rows if not has_data]
    assert empty_targets == []
    fired = {name for name, _parses, data in alerts if data.startswith("yes")}
    # The doomed sends are over 10% of well over 15 eSMS requests in 5 minutes: eSMS errors.
    assert fired == {
        "VoicecallForgedCallbacks", "VoicecallDeadLettersRising", "VoicecallEsmsErrorRateHigh",
    }  # fmt: skip


def _alerts_report(rows: list[tuple[str, str, str]]) -> str:
    lines = [
        "# Prometheus end-to-end: outcome alerts provoked",
        "",
        "Written by `tests/test_prometheus_e2e.py::test_outcome_alerts_fire_when_outcomes_fail`: "
        "a real Prometheus scraped a real stack while Voice OTPs went undelivered or expired, "
        "eSMS sent no callback, every webhook receiver was down and one API process had no "
        "Redis. Each alert expression was sent to `/api/v1/query`; the state is Prometheus's "
        "own (`ALERTS`).",
        "",
        "| alert | value now | state |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {value} | {state} |" for name, value, state in rows]
    return "\n".join(lines) + "\n"


def test_outcome_alerts_fire_when_outcomes_fail(
    stack_factory: Callable[..., Stack],
    esms_sim_factory: Callable[..., EsmsSim],
    prometheus_factory: Callable[[dict[str, list[str]]], Prometheus],
) -> None:
    """Undelivered and expired OTPs, no callbacks, dead webhook receivers, an API without Redis: the five new alerts fire, and besides them only the dead-letter and Redis ones."""
    sim = esms_sim_factory(callback_drop_rate=1.0)  # results come only from polling
    stack = stack_factory(
        sim=sim,
        send_max_retries=1,
        send_retry_max_backoff_s=0.5,
        webhook_max_retries=1,  # dead receivers: one retry, then a dead letter
        webhook_allowed_hosts="127.0.0.1",  # the webhook receiver is local
    )
    broken_port = free_port()
    broken_api = stack._service(
        "api-no-redis",
        ["api", "--host", "127.0.0.1", "--port", str(broken_port)],
        {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
    )
    broken_url = f"http://127.0.0.1:{broken_port}"
    wait_until(lambda: httpx.get(f"{broken_url}/healthz").status_code == 200, 30, what="API")
    worker = stack.start_worker(processes=2, threads=4)
    prometheus = prometheus_factory(
        {
            "voicecall-api": [f"127.0.0.1:{stack.api_port}", f"127.0.0.1:{broken_port}"],
            "voicecall-worker": [f"127.0.0.1:{worker.env['METRICS_PORT']}"],
        }
    )
    wait_until(lambda: prometheus.targets_up() == 3, 20, what="3 targets up")
    wait_until(  # a first sample of every counter before anything moves
        lambda: prometheus.value("count(voicecall_jobs_finished_total)"), 20, what="scraped"
    )

    hook = {"webhook_url": f"http://127.0.0.1:{free_port()}/hook"}  # nothing listens there
    long_ago = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    bodies: list[dict[str, Any]] = [
        *({"kind": "voice_otp", "phone": f"09070{i:04d}2", "content": "Ma 1", **hook}
          for i in range(14)),  # the callee's phone fails: undelivered
        *({"kind": "voice_otp", "phone": f"09090{i:04d}5", "content": "Ma 2", "ttl_s": 10,
           "send_at": long_ago, **hook} for i in range(8)),  # past its time to live: expired
        *({"kind": "record_call", "phone": f"09080{i:04d}5", "record_id": "r1", **hook}
          for i in range(14)),  # answered, known only by polling
    ]  # fmt: skip
    ids = [_post(stack, stack.api_url, body) for body in bodies]
    with httpx.Client(base_url=broken_url, headers={"Authorization": f"Bearer {stack.token}"}) as c:
        # Errors that keep coming: one, scraped, then more (a burst inside one scrape interval
        # creates the series at its total, which rate() cannot see).
        assert c.post("/v1/calls", json=bodies[-1]).status_code == 503
        errors = 'sum(voicecall_api_requests_total{status="503"})'
        wait_until(lambda: prometheus.value(errors) == 1, 20, what="first 503 scraped")
        assert [c.post("/v1/calls", json=bodies[-1]).status_code for _ in range(15)] == [503] * 15
    jobs = stack.wait_final(ids, timeout=90)
    outcomes = [(job.kind.value, job.state.value, job.outcome) for job in jobs.values()]
    assert outcomes.count(("voice_otp", "completed", "undelivered")) == 14, outcomes
    assert outcomes.count(("voice_otp", "expired", None)) == 8, outcomes
    assert outcomes.count(("record_call", "completed", "answered")) == 14, outcomes

    rules = {rule.name: rule for rule in alert_rules()}

    def with_data() -> set[str]:
        return {
            name for name, rule in rules.items() if prometheus.query(rule.expr)["data"]["result"]
        }

    expected = OUTCOME_ALERTS | {"VoicecallDeadLettersRising", "VoicecallRedisUnreachable"}
    wait_until(lambda: with_data() >= expected, 60, interval=1, what=f"alerts {expected}")
    assert with_data() == expected  # the dead webhooks end as dead letters; one API lacks Redis

    def state(name: str) -> str:
        found = prometheus.query(f'ALERTS{{alertname="{name}"}}')["data"]["result"]
        return str(found[0]["metric"]["alertstate"]) if found else "inactive"

    wait_until(lambda: all(state(name) != "inactive" for name in OUTCOME_ALERTS), 20, what="ALERTS")
    rows = []
    for name in sorted(OUTCOME_ALERTS):
        sample = prometheus.query(rules[name].expr)["data"]["result"][0]
        rows.append((name, f"{float(sample['value'][1]):.4g}", state(name)))
    ALERTS_REPORT.write_text(_alerts_report(rows))
    assert state("VoicecallJobsExpiring") == "firing"  # no `for`: fires at its first evaluation
    assert prometheus.value('sum(voicecall_webhooks_total{result="delivered"})') == 0
    assert prometheus.value('sum(voicecall_callbacks_total{result="accepted"})') == 0
    assert broken_api.alive
