"""Tracing's boundaries: the standard OTEL_* variables checked at start-up, trace carriers read
back from jobs and messages, and log lines that carry the current span's ids."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from voicecall.config.otel_env import check_environment
from voicecall.errors import SettingsError
from voicecall.telemetry import carriers, tracing
from voicecall.telemetry.logs import configure_logging, get_logger

GOOD_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "sometimes"},
            "OTEL_TRACES_SAMPLER",
        ),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "NaN"}, "_ARG"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"}, "_ARG"),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"},
            "_ARG",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "file:///etc/passwd"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "team"}, "OTEL_RESOURCE_ATTRIBUTES"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "a=b,=c"}, "OTEL_RESOURCE_ATTRIBUTES"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "a=b\x1b[2J"}, "OTEL_RESOURCE_ATTRIBUTES"),
        ({"OTEL_SERVICE_NAME": "  "}, "OTEL_SERVICE_NAME"),
    ],
)
def test_a_bad_otel_variable_is_refused_by_name(env: dict[str, str], named: str) -> None:
    """Each malformed standard variable stops start-up with one line naming it."""
    with pytest.raises(SettingsError) as refused:
        check_environment(env)
    assert named in str(refused.value)
    assert "\n" not in str(refused.value)


def test_tracing_is_off_unless_an_exporter_is_named() -> None:
    """No exporter, ``none``, or OTEL_SDK_DISABLED=true: off; otlp or console: on."""
    assert check_environment({}) is None
    assert check_environment({"OTEL_TRACES_EXPORTER": "none"}) is None
    assert check_environment({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}) is None
    config = check_environment(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_SERVICE_NAME": "calls",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=calls",
        }
    )
    assert config is not None and (config.exporter, config.service_name) == ("otlp", "calls")


def test_check_settings_exits_2_with_one_line_on_a_bad_otel_variable() -> None:
    """`voicecall check-settings` reads OTEL_* with the rest: exit 2, one line, the name."""
    env = {**os.environ, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "voicecall.cli", "check-settings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "OTEL_TRACES_SAMPLER_ARG" in lines[0]


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # a string, not a carrier
        {"traceparent": "00-00000000000000000000000000000000-b7ad6b7169203331-01"},
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"},
        {"traceparent": "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {"traceparent": "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"},
        {"traceparent": GOOD_PARENT + "\n"},
        {"traceparent": 42},
        {},
    ],
)
def test_a_stored_carrier_that_is_not_w3c_trace_context_is_dropped(raw: object) -> None:
    """What a job or a message holds as its trace is read back only if it is valid."""
    assert carriers.checked_carrier(raw) is None


def test_a_carrier_keeps_a_sane_tracestate_only() -> None:
    """tracestate survives when printable and short; otherwise only traceparent stays."""
    good = carriers.checked_carrier({"traceparent": GOOD_PARENT, "tracestate": "vendor=abc"})
    assert good == {"traceparent": GOOD_PARENT, "tracestate": "vendor=abc"}
    for state in ("x=\x00", "x=" + "a" * 600, 7):
        kept = carriers.checked_carrier({"traceparent": GOOD_PARENT, "tracestate": state})
        assert kept == {"traceparent": GOOD_PARENT}


@pytest.fixture(scope="module")
def in_memory() -> Iterator[object]:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    assert tracing.setup("test", {"OTEL_TRACES_EXPORTER": "console"}, exporter=exporter)
    yield exporter
    tracing.shutdown()  # the rest of the suite runs with tracing off


def test_a_span_continues_a_stored_carrier_or_links_to_it(in_memory: object) -> None:
    """``parent``: the span is in the carrier's trace, its child; ``link``: a trace of its own
    pointing to the carrier's."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    assert isinstance(in_memory, InMemorySpanExporter)
    carrier = {"traceparent": GOOD_PARENT}
    with tracing.span("child", parent=carrier):
        ids = tracing.current_ids()
        assert tracing.current_carrier() is not None
    with tracing.span("linked", link=carrier):
        pass
    spans = {s.name: s for s in in_memory.get_finished_spans()}
    child, linked = spans["child"], spans["linked"]
    assert format(child.context.trace_id, "032x") == GOOD_PARENT[3:35]
    assert child.parent is not None and format(child.parent.span_id, "016x") == GOOD_PARENT[36:52]
    assert ids == (GOOD_PARENT[3:35], format(child.context.span_id, "016x"))
    assert format(linked.context.trace_id, "032x") != GOOD_PARENT[3:35]
    assert [format(link.context.trace_id, "032x") for link in linked.links] == [GOOD_PARENT[3:35]]


def _message(queue: str, job_id: str) -> object:
    from dramatiq import Message
    from dramatiq.broker import MessageProxy

    options = {"trace_ctx": {"traceparent": GOOD_PARENT}}
    return MessageProxy(Message(queue, "send_bulk_call", (job_id,), {}, options))


def test_a_consumer_span_handed_to_the_engine_ends_with_the_step(in_memory: object) -> None:
    """The message's consumer span is a child of the job's stored context. Handed over (the
    actor gave the engine a step), it outlives the actor, stays current for the step, and
    ends when the step ends, failed if the step raised; a span not handed over ends with
    the actor. The Dramatiq thread's context is restored either way."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    from worker.tracing import TraceContext, hand_over

    assert isinstance(in_memory, InMemorySpanExporter)
    in_memory.clear()
    middleware = TraceContext()
    middleware.before_process_message(None, _message("voicecall-bulk", "job-1"))  # type: ignore[arg-type]
    ending = hand_over()
    assert ending is not None and hand_over() is None  # handed over once
    in_step = tracing.current_ids()
    middleware.after_process_message(None, _message("voicecall-bulk", "job-1"))  # type: ignore[arg-type]
    assert not trace.get_current_span().get_span_context().is_valid
    assert in_memory.get_finished_spans() == ()  # the step is still running
    ending(RuntimeError("eSMS went away"))
    (handed,) = in_memory.get_finished_spans()
    assert handed.name == "process voicecall-bulk"
    assert in_step == (GOOD_PARENT[3:35], format(handed.context.span_id, "016x"))
    assert handed.status.status_code is StatusCode.ERROR
    assert [event.name for event in handed.events] == ["exception"]

    middleware.before_process_message(None, _message("voicecall-bulk", "job-2"))  # type: ignore[arg-type]
    middleware.after_process_message(None, _message("voicecall-bulk", "job-2"))  # type: ignore[arg-type]
    assert hand_over() is None
    finished = in_memory.get_finished_spans()
    assert len(finished) == 2 and finished[1].attributes["voicecall.job.id"] == "job-2"
    assert finished[1].status.status_code is StatusCode.UNSET


def test_a_log_line_carries_the_current_span_ids(in_memory: object) -> None:
    """Inside a span, each log line has its trace_id and span_id; a job's X-Request-ID trace
    id bound before moves to request_id. Outside any span, nothing is added."""
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    log = get_logger("test")
    with tracing.span("logged", parent={"traceparent": GOOD_PARENT}):
        log.info("inside", trace_id="req-123")
    log.info("outside")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["trace_id"] == GOOD_PARENT[3:35]
    assert len(inside["span_id"]) == 16
    assert inside["request_id"] == "req-123"
    assert "span_id" not in outside


def test_the_python_producer_api_stores_the_context_it_is_given(redis_url: str) -> None:
    """``enqueue(trace_context=...)`` keeps the caller's trace with the job (the job view
    names it) even in a process without tracing; a malformed one is refused by name and
    nothing is stored."""
    from producer import VoiceCallClient
    from voicecall.errors import FieldRefused

    client = VoiceCallClient.from_env(redis_url=redis_url)
    body = {"kind": "record_call", "phone": "0912345678", "record_id": "r1"}
    job = client.enqueue(body, trace_context={"traceparent": GOOD_PARENT})
    assert job.otel_trace_id == GOOD_PARENT[3:35]
    stored = client.store.get(job.id)
    assert stored is not None and stored.trace_ctx == {"traceparent": GOOD_PARENT}
    with pytest.raises(FieldRefused) as refused:
        client.enqueue({**body, "id": "no-trace-1"}, trace_context={"traceparent": "00-bad"})
    assert refused.value.field == "trace_context"
    assert client.store.get("no-trace-1") is None


@pytest.mark.parametrize(
    "template",
    [
        "jaeger/trace/{trace_id}",
        "javascript:alert(1)//{trace_id}",
        "http://jaeger/trace/",
        "http://jaeger/{trace_id}/{trace_id}",
        'http://jaeger/trace/{trace_id}"><script>',
        "http://jaeger/trace/{trace_id}\n",
    ],
)
def test_a_bad_trace_link_template_is_refused(template: str) -> None:
    """TRACE_LINK_TEMPLATE must be an http(s) URL with {trace_id} once and nothing that could
    break out of a link."""
    from voicecall.config.settings import load_settings

    with pytest.raises(SettingsError) as refused:
        load_settings(trace_link_template=template)
    assert str(refused.value).startswith("TRACE_LINK_TEMPLATE")


def test_a_trace_link_template_is_kept() -> None:
    """A Jaeger or Grafana link with {trace_id} passes as it is."""
    from voicecall.config.settings import load_settings

    template = "https://grafana.example/explore?traceId={trace_id}&orgId=1"
    assert load_settings(trace_link_template=template).trace_link_template == template


def test_the_api_exports_small_batches_unless_the_standard_variables_say_otherwise() -> None:
    """The API exports 64 spans at a time (512 held its requests ~25 ms each export); a
    worker keeps the SDK's default; OTEL_BSP_MAX_EXPORT_BATCH_SIZE or OTEL_BSP_MAX_QUEUE_SIZE,
    when set, are the SDK's to read for every role."""
    from voicecall.telemetry.otel import API_EXPORT_BATCH_SIZE, _export_batch_size

    assert _export_batch_size({}, "api") == API_EXPORT_BATCH_SIZE == 64
    assert _export_batch_size({}, "worker") is None
    assert _export_batch_size({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "256"}, "api") is None
    assert _export_batch_size({"OTEL_BSP_MAX_QUEUE_SIZE": "32"}, "api") is None
