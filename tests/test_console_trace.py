"""A job's OpenTelemetry trace id on the console (issue 21, point 5): the job page's facts and
its timeline name it, as a link built from TRACE_LINK_TEMPLATE when that is set, as plain
text when not, and not at all for a job without a trace. Units for the link and its escaping,
then real API processes (uvicorn) on a real Redis, the job enqueued by the Python producer."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import closing

import pytest

from producer.client import VoiceCallClient
from producer.console import timeline
from producer.console.web import templates
from tests.fixtures.api import ApiServer
from tests.fixtures.console import login
from voicecall.config.settings import load_settings
from voicecall.store.job_store import JobStore

# `&` must reach the browser as `&amp;`; `{span_id}` is not ours to fill in and stays as is.
TEMPLATE = "https://tempo.example/explore?left={span_id}&trace={trace_id}&x=%7B"


def _traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


# --- the link and its escaping (units) ----------------------------------------------------


def test_no_trace_id_is_no_trace_and_no_template_is_plain_text() -> None:
    """A view without ``otel_trace_id`` has no trace; with one and no template, the id
    without a link."""
    assert timeline.trace({"otel_trace_id": None}, TEMPLATE) is None
    assert timeline.trace({}, "") is None
    assert timeline.trace({"otel_trace_id": "ab" * 16}, "") == timeline.Trace("ab" * 16)


def test_only_trace_id_is_filled_in_and_the_id_is_url_encoded() -> None:
    """The template keeps every other brace and character; the id goes in percent-encoded,
    so a stored id that is not hex cannot add a path, a query or a fragment."""
    found = timeline.trace({"otel_trace_id": "0af7651916cd43dd8448eb211c80319c"}, TEMPLATE)
    assert found is not None
    assert found.url == (
        "https://tempo.example/explore?left={span_id}&trace=0af7651916cd43dd8448eb211c80319c&x=%7B"
    )
    odd = timeline.trace({"otel_trace_id": '../x?y=1#"z&'}, "https://j.example/trace/{trace_id}")
    assert odd is not None
    assert odd.url == "https://j.example/trace/..%2Fx%3Fy%3D1%23%22z%26"


def test_the_rendered_link_escapes_a_hostile_url_and_id() -> None:
    """Even past the settings' check, a URL or id holding markup is escaped in the href and
    the text: no new attribute, no element."""
    macro = templates.env.get_template("trace.html").module.trace_ref  # type: ignore[attr-defined]
    hostile = timeline.Trace('<b>"x', 'https://x.example/"><script>alert(1)</script>&a=1')
    html = str(macro(hostile))
    assert "<script>" not in html and "<b>" not in html
    assert html.count('"') == 4  # the href's and the rel's quotes only
    assert "&#34;&gt;&lt;script&gt;" in html and "&amp;a=1" in html
    assert "&lt;b&gt;&#34;x" in html
    assert str(macro(timeline.Trace("ab" * 16))) == f"<code>{'ab' * 16}</code>"


# --- on a real API process ----------------------------------------------------------------


@pytest.fixture()
def producer(redis_url: str) -> Iterator[VoiceCallClient]:
    store = JobStore.from_url(redis_url)
    yield VoiceCallClient(load_settings(redis_url=redis_url), store)
    store.close()


def _enqueue(producer: VoiceCallClient, traceparent: str | None) -> str:
    context = {"traceparent": traceparent} if traceparent else None
    job = producer.enqueue(
        {"kind": "record_call", "phone": "0901234567", "record_id": "r1"}, trace_context=context
    )
    return job.id


def _job_page(server: ApiServer, job_id: str) -> str:
    client, _ = login(server)
    with closing(client):
        answer = client.get(f"/console/calls/{job_id}")
    assert answer.status_code == 200, answer.text
    return answer.text


def _shown(page: str, element_id: str, end: str) -> str | None:
    found = re.search(rf'id="{element_id}">(.*?){end}', page, re.DOTALL)
    return found.group(1) if found else None


def test_without_a_template_the_trace_id_is_plain_text_and_a_job_without_one_shows_none(
    api_server: ApiServer, producer: VoiceCallClient
) -> None:
    """TRACE_LINK_TEMPLATE unset: the traced job's page names its trace id in its facts and
    its timeline, with no link; an untraced job's page has no trace row at all."""
    trace_id, traceparent = _traceparent()
    page = _job_page(api_server, _enqueue(producer, traceparent))
    assert _shown(page, "otel-trace", "</dd>") == f"<code>{trace_id}</code>"
    timeline_line = _shown(page, "timeline-trace", "</p>")
    assert timeline_line is not None and f"<code>{trace_id}</code>" in timeline_line
    assert "<a " not in timeline_line
    untraced = _job_page(api_server, _enqueue(producer, None))
    assert 'id="otel-trace"' not in untraced and 'id="timeline-trace"' not in untraced
    assert "OpenTelemetry trace" not in untraced


def test_with_a_template_the_trace_id_links_to_the_tracing_backend(
    redis_url: str, producer: VoiceCallClient, start_api: Callable[..., ApiServer]
) -> None:
    """TRACE_LINK_TEMPLATE set: the facts and the timeline link the id to the template with
    only {trace_id} filled in, its `&` escaped in the href; an untraced job has no link."""
    server = start_api(redis_url, env={"TRACE_LINK_TEMPLATE": TEMPLATE})
    trace_id, traceparent = _traceparent()
    page = _job_page(server, _enqueue(producer, traceparent))
    href = f"https://tempo.example/explore?left={{span_id}}&amp;trace={trace_id}&amp;x=%7B"
    link = f'<a href="{href}" rel="noreferrer"><code>{trace_id}</code></a>'
    assert _shown(page, "otel-trace", "</dd>") == link
    assert link in (_shown(page, "timeline-trace", "</p>") or "")
    untraced = _job_page(server, _enqueue(producer, None))
    assert "tempo.example" not in untraced and 'id="otel-trace"' not in untraced
