"""OpenTelemetry traces on real processes: the API (uvicorn), Dramatiq workers and the eSMS
simulator, exporting over OTLP/HTTP to a collector stand-in (tests/fixtures/otlp_collector.py).

One call made by a request carrying ``traceparent`` is followed through intake, the worker's
consumer span (which lasts until the send it handed to the engine ends) and its eSMS request, eSMS's callback (linked), the status poll that confirms it and the
webhook, whose receiver sees the same trace; a worker killed mid-call leaves the re-driven send
in that trace; nothing private is in any span.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.otlp_collector import Collector, ExportedSpan
from tests.fixtures.stack import (
    API_TOKEN,
    CALLBACK_SECRET,
    WEBHOOK_SECRET,
    Stack,
    wait_until,
)
from tests.fixtures.webhook_receiver import Receiver, answer
from voicecall.job.keys import QUEUE_BULK, QUEUE_OTP, QUEUE_STATUS, QUEUE_WEBHOOKS

SERVER, CLIENT, CONSUMER = 2, 3, 5  # OTLP span kinds
PHONE = "0912345678"
OTP = "482913"


@pytest.fixture()
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    running.close()


def _otel_env(collector: Collector) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export every 0.1 s: the test waits for spans
    }


def _traced_stack(stack_factory: Callable[..., Stack], collector: Collector) -> Stack:
    env = _otel_env(collector)
    stack = stack_factory(api_env=env, webhook_allowed_hosts="127.0.0.1")
    stack.start_worker(processes=1, threads=4, extra_env=env)
    return stack


def _in_trace(collector: Collector, trace_id: str) -> list[ExportedSpan]:
    return [span for span in collector.spans if span.trace_id == trace_id]


def _named(spans: list[ExportedSpan], name: str) -> list[ExportedSpan]:
    return [span for span in spans if span.name == name]


def test_one_call_is_one_trace_from_the_request_to_the_webhook_receiver(
    stack_factory: Callable[..., Stack], collector: Collector
) -> None:
    """A POST carrying ``traceparent``: the API's span, the worker's consumer span (covering
    the claim and the send) and its eSMS request, the status poll and the webhook delivery are
    all in the caller's trace, each the child of the one before; eSMS's callback is linked to it; the receiver's request carries
    the webhook span's context; the job view names the trace."""
    stack = _traced_stack(stack_factory, collector)
    receiver = Receiver(answer(204))
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    body = {
        "kind": "voice_otp",
        "phone": PHONE,
        "content": OTP,
        "webhook_url": f"http://127.0.0.1:{receiver.port}/hook",
    }
    with stack.http() as http:
        posted = http.post(
            "/v1/calls", json=body, headers={"traceparent": f"00-{trace_id}-{caller_span}-01"}
        )
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["id"]
    assert posted.json()["otel_trace_id"] == trace_id
    job = stack.wait_final([job_id])[job_id]
    assert job.outcome is not None and job.outcome.value == "delivered"
    wait_until(lambda: receiver.received, 30, what="the webhook")

    def complete() -> bool:
        names = {span.name for span in _in_trace(collector, trace_id)}
        wanted = {f"process {QUEUE_WEBHOOKS}", "webhook POST", f"process {QUEUE_STATUS}"}
        return wanted <= names and "eSMS otp_status" in names

    wait_until(complete, 30, what="the trace's spans exported")
    spans = _in_trace(collector, trace_id)
    by_id = {span.span_id: span for span in spans}

    (intake,) = [s for s in spans if s.kind == SERVER and s.parent_span_id == caller_span]
    assert intake.service == "voicecall-api"
    assert intake.attributes["voicecall.job.id"] == job_id
    assert intake.attributes["voicecall.idempotency.replay"] is False
    assert any(
        name == "voicecall.step" and attrs["voicecall.step.name"] == "create"
        for name, attrs in intake.events
    )

    (process,) = _named(spans, f"process {QUEUE_OTP}")
    assert process.kind == CONSUMER and process.service == "voicecall-worker"
    assert process.attributes["messaging.destination.name"] == QUEUE_OTP
    assert by_id[process.parent_span_id].span_id == intake.span_id
    assert process.attributes["voicecall.job.kind"] == "voice_otp"
    (esms,) = _named(spans, "eSMS voice_otp")
    assert esms.kind == CLIENT and esms.parent_span_id == process.span_id
    # The consumer span lasts until the send it handed over has recorded eSMS's answer.
    assert process.end_ns >= esms.end_ns
    assert esms.attributes["voicecall.esms.code"] == 100
    assert esms.attributes["voicecall.esms.smsid"] == job.smsid
    assert {"claim", "submit"} <= {a["voicecall.step.name"] for _, a in process.events}

    # eSMS's callback starts a trace of its own (eSMS sends no traceparent), linked to the job's.
    callbacks = [
        s
        for s in collector.spans
        if s.kind == SERVER and "callback" in s.name and trace_id in s.links
    ]
    assert callbacks, [s.name for s in collector.spans if s.kind == SERVER]
    # The status poll the callback sent (CALLBACK_CONFIRM=status) is back in the job's trace.
    polls = {s.span_id for s in _named(spans, f"process {QUEUE_STATUS}")}
    assert any(s.parent_span_id in polls for s in _named(spans, "eSMS otp_status"))

    (deliver,) = _named(spans, f"process {QUEUE_WEBHOOKS}")
    (post,) = _named(spans, "webhook POST")
    assert post.kind == CLIENT and post.parent_span_id == deliver.span_id
    assert post.attributes["http.response.status_code"] == 204
    sent = receiver.received[0].headers["traceparent"]
    assert sent.split("-")[1:3] == [trace_id, post.span_id]
    receiver.close()


def test_no_span_holds_a_phone_number_an_otp_code_a_secret_or_a_signature(
    stack_factory: Callable[..., Stack], collector: Collector
) -> None:
    """Every attribute, event and span name of a full run (API, worker, callback, poll,
    webhook) is scanned: no phone number, OTP content, token, secret, callback nonce or
    signature."""
    stack = _traced_stack(stack_factory, collector)
    receiver = Receiver(answer(200))
    body = {
        "kind": "voice_otp",
        "phone": PHONE,
        "content": OTP,
        "webhook_url": f"http://127.0.0.1:{receiver.port}/hook?token=receiver-secret-42",
    }
    job_id = stack.post_call(body)["id"]
    nonce = stack.job(job_id).callback_nonce
    callback = stack.callback_url(job_id)
    signature = callback.rsplit("/", 1)[1]
    stack.wait_final([job_id])
    wait_until(lambda: receiver.received, 30, what="the webhook")
    with stack.http() as http:  # a search by phone: the number is in the query string
        assert http.get("/v1/calls", params={"phone": PHONE}).status_code == 200
    wait_until(
        lambda: any(s.name == "webhook POST" for s in collector.spans), 30, what="spans exported"
    )
    every_kind = {  # the spans of each process and step the scan must have seen
        "POST /v1/calls",
        f"process {QUEUE_OTP}",
        "eSMS voice_otp",
        f"process {QUEUE_STATUS}",
        "eSMS otp_status",
        f"process {QUEUE_WEBHOOKS}",
        "webhook POST",
    }

    def all_exported() -> bool:
        names = {s.name for s in collector.spans}
        search = any(
            s.attributes.get("http.route") == "/v1/calls" and s.name.startswith("GET")
            for s in collector.spans
        )
        callback = any(s.kind == SERVER and "callback" in s.name for s in collector.spans)
        return search and callback and every_kind <= names

    wait_until(all_exported, 30, what="a span of every kind")
    forbidden = {
        "phone": PHONE[1:],  # whatever prefix: the subscriber digits
        "otp": OTP,
        "api token": API_TOKEN,
        "callback secret": CALLBACK_SECRET,
        "webhook secret": WEBHOOK_SECRET.removeprefix("whsec_"),
        "eSMS api key": stack.sim.api_key,
        "eSMS secret key": stack.sim.secret_key,
        "callback nonce": nonce,
        "callback signature": signature,
        "receiver's secret": "receiver-secret-42",
    }
    texts = []
    for span in collector.spans:
        texts.append(span.name)
        texts += [f"{k}={v}" for k, v in span.attributes.items()]
        for name, attrs in span.events:
            texts.append(name)
            texts += [f"{k}={v}" for k, v in attrs.items()]
    found = {what: t for t in texts for what, value in forbidden.items() if value in t}
    assert found == {}
    receiver.close()


def test_a_send_redriven_after_a_worker_was_killed_mid_call_continues_the_trace(
    stack_factory: Callable[..., Stack], collector: Collector
) -> None:
    """eSMS hangs, the worker holding the call is SIGKILLed, another worker re-drives the job
    once its lease is over: that send, and its eSMS request, are in the request's trace."""
    env = _otel_env(collector)
    stack = stack_factory(api_env=env)
    stack.sim.configure(timeout_rate=1.0, hang_s=60)
    first = stack.start_worker(processes=1, threads=4, extra_env=env)
    trace_id = secrets.token_hex(16)
    with stack.http() as http:
        posted = http.post(
            "/v1/calls",
            json={"kind": "record_call", "phone": PHONE, "record_id": "rec1"},
            headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        )
    job_id = posted.json()["id"]
    wait_until(lambda: stack.job(job_id).state.value == "sending", 30, what="the call in flight")
    first.kill()
    stack.sim.configure(timeout_rate=0.0)
    stack.start_worker(processes=1, threads=4, extra_env=env)
    job = stack.wait_final([job_id], timeout=90)[job_id]
    assert job.smsid is not None

    def answered() -> list[ExportedSpan]:
        return [
            s
            for s in _named(_in_trace(collector, trace_id), "eSMS record_call")
            if s.attributes.get("voicecall.esms.smsid") == job.smsid
        ]

    wait_until(answered, 30, what="the re-driven eSMS request's span")
    (esms,) = answered()
    sends = {s.span_id for s in _named(_in_trace(collector, trace_id), f"process {QUEUE_BULK}")}
    assert esms.parent_span_id in sends


def test_a_worker_that_stops_exports_the_spans_it_still_holds(
    stack_factory: Callable[..., Stack], collector: Collector
) -> None:
    """Spans wait in the batch processor's buffer (here for a minute); a worker stopped by
    SIGTERM exports them on its way out. Its processes end by ``os._exit``, which runs no
    atexit hook: without the flush they were lost."""
    env = {**_otel_env(collector), "OTEL_BSP_SCHEDULE_DELAY": "60000"}
    stack = stack_factory(api_env=env)
    worker = stack.start_worker(processes=1, threads=4, extra_env=env)
    with stack.http() as http:
        ids = [
            http.post(
                "/v1/calls", json={"kind": "record_call", "phone": PHONE, "record_id": "rec1"}
            ).json()["id"]
            for _ in range(3)
        ]
    wait_until(lambda: all(stack.job(i).smsid for i in ids), 30, what="the calls answered")
    assert worker.stop() == 0
    sent = {
        s.attributes.get("voicecall.job.id")
        for s in collector.spans
        if s.service == "voicecall-worker" and s.name == f"process {QUEUE_BULK}"
    }
    assert set(ids) <= sent


def test_a_call_scheduled_for_later_starts_its_own_trace_linked_to_the_request(
    stack_factory: Callable[..., Stack], collector: Collector
) -> None:
    """A call due after the schedule horizon waits in the schedule; when it is released, its
    send is a trace of its own whose first span links to the request's trace."""
    env = _otel_env(collector)
    stack = stack_factory(api_env=env, schedule_horizon_s=1)
    stack.start_worker(processes=1, threads=4, extra_env=env)
    trace_id = secrets.token_hex(16)
    send_at = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    with stack.http() as http:
        posted = http.post(
            "/v1/calls",
            json={"kind": "record_call", "phone": PHONE, "record_id": "rec1", "send_at": send_at},
            headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        )
    assert posted.json()["state"] == "scheduled", posted.text
    job_id = posted.json()["id"]
    stack.wait_final([job_id], timeout=60)

    def linked() -> list[ExportedSpan]:
        return [
            s for s in collector.spans if s.name == f"process {QUEUE_BULK}" and trace_id in s.links
        ]

    wait_until(linked, 30, what="the released send's span")
    (process,) = linked()
    assert process.trace_id != trace_id
    assert process.attributes["voicecall.job.id"] == job_id
    requests = [
        s
        for s in collector.spans
        if s.trace_id == process.trace_id and s.name == "eSMS record_call"
    ]
    assert requests and requests[0].parent_span_id == process.span_id


def test_with_tracing_off_voicecall_loads_no_opentelemetry_module() -> None:
    """The API app and the worker's broker and actors, built without OTEL_TRACES_EXPORTER,
    import no OpenTelemetry module beyond those their libraries load on their own (redis-py 8
    imports OpenTelemetry's metrics API when it is installed; without the otel extra it is
    not): in particular no SDK, no exporter and no instrumentation."""
    code = (
        "import sys\n"
        "import dramatiq, fastapi, httpx, redis, redis.asyncio\n"
        "libraries = {m for m in sys.modules if m.startswith('opentelemetry')}\n"
        "from voicecall.config.settings import load_settings\n"
        "from producer.api import create_app\n"
        "from worker.setup import build_broker\n"
        "settings = load_settings()\n"
        "create_app(settings)\n"
        "build_broker(settings)\n"
        "import worker.actors, worker.tracing\n"
        "ours = {m for m in sys.modules if m.startswith('opentelemetry')} - libraries\n"
        "print(sorted(ours), 'opentelemetry.sdk.trace' in sys.modules)\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "API_TOKENS": API_TOKEN,
        "CALLBACK_SECRET": CALLBACK_SECRET,
        "REDIS_URL": "redis://127.0.0.1:1/0",  # never connected to
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] False"
