"""The OpenTelemetry SDK side of :mod:`voicecall.telemetry.tracing`, imported only when tracing
is on: the tracer provider (sampler, resource and OTLP endpoint from the standard ``OTEL_*``
variables, read by the SDK itself), FastAPI's official instrumentation, and spans made current
with stored W3C carriers as parents or links.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from voicecall import __version__
from voicecall.config.otel_env import TracingConfig
from voicecall.telemetry.carriers import Carrier, checked_carrier

_KINDS = {
    "internal": SpanKind.INTERNAL,
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}
API_EXPORT_BATCH_SIZE = 64  # see _export_batch_size
_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None


def start(config: TracingConfig, role: str, exporter: SpanExporter | None = None) -> None:
    global _tracer, _provider
    # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME are merged in by Resource.create.
    resource = Resource.create(
        {
            SERVICE_NAME: config.service_name or f"voicecall-{role}",
            "service.version": __version__,
            "voicecall.role": role,
        }
    )
    _provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER(_ARG)
    if exporter is None:
        batch = _export_batch_size(os.environ, role)
        _provider.add_span_processor(
            BatchSpanProcessor(_exporter(config.exporter), max_export_batch_size=batch)
        )
    else:
        _provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(_provider)
    _tracer = trace.get_tracer("voicecall", __version__)
    atexit.register(shutdown)


def _export_batch_size(environ: Mapping[str, str], role: str) -> int | None:
    """Spans per export for the API, unless ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` (or the queue's
    size, which bounds it) is set; None: the SDK's own (512, or those variables). Encoding 512
    spans holds the GIL for ~25 ms, and every request the API serves meanwhile waits: intake's
    p99 at 200 req/s went from 2 ms to 30 ms, with 64 it is 3-5 ms (bench figure 12b). A
    worker keeps 512: its calls do not notice 25 ms, and smaller batches cost it CPU per job
    (+0.5-0.8 ms against +0.2-0.4 ms, figure 12)."""
    if role != "api" or {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE"} & set(
        environ
    ):
        return None
    return API_EXPORT_BATCH_SIZE


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*


def tracer() -> trace.Tracer:
    return _tracer or trace.get_tracer("voicecall", __version__)


def current_carrier() -> Carrier | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return checked_carrier(carrier)


def _context_of(carrier: Carrier) -> otel_context.Context:
    return propagate.extract(carrier)


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (attributes or {}).items() if v is not None}


class OpenSpan:
    """A started span, current in this thread inside ``with`` (or from ``__enter__``), and
    ended on leaving it or later, possibly by another thread (a message's consumer span lasts
    until the engine step it hands over ends). A plain class rather than
    ``start_as_current_span``'s three nested generator context managers: this runs for every
    span of every job."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._token: object | None = None

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, kind: Any, exception: BaseException | None, traceback: Any) -> None:
        self.detach()
        self.end(exception)

    def detach(self) -> None:
        """Restore this thread's context as it was (the span stays open)."""
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None

    def end(self, exception: BaseException | None = None) -> None:
        """End the span; an Exception (not a cancellation) marks it failed, as the SDK's
        ``use_span`` does."""
        if isinstance(exception, Exception) and self._span.is_recording():
            self._span.record_exception(exception)
            description = f"{type(exception).__name__}: {exception}"
            self._span.set_status(Status(StatusCode.ERROR, description))
        self._span.end()


def span(
    name: str,
    *,
    kind: str,
    attributes: Mapping[str, Any] | None,
    parent: Carrier | None,
    link: Carrier | None,
) -> OpenSpan:
    links: list[Link] = []
    if link is not None:
        linked = trace.get_current_span(_context_of(link)).get_span_context()
        if linked.is_valid:
            links.append(Link(linked))
    context = _context_of(parent) if parent is not None else None
    started = tracer().start_span(
        name, context=context, kind=_KINDS[kind], attributes=_clean(attributes), links=links
    )
    return OpenSpan(started)


def set_attributes(attributes: Mapping[str, Any]) -> None:
    trace.get_current_span().set_attributes(_clean(attributes))


def add_link(carrier: Carrier) -> None:
    linked = trace.get_current_span(_context_of(carrier)).get_span_context()
    if linked.is_valid:
        trace.get_current_span().add_link(linked)


def add_event(name: str, attributes: Mapping[str, Any]) -> None:
    trace.get_current_span().add_event(name, _clean(attributes))


def current_ids() -> tuple[str, str] | None:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@contextmanager
def attached(carrier: Carrier) -> Iterator[None]:
    token = otel_context.attach(_context_of(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


def shutdown() -> None:
    if _provider is not None:
        _provider.shutdown()


def instrument_app(app: Any, scrub: Callable[[str], str]) -> None:
    """The official FastAPI instrumentation: a server span per request, continuing the
    caller's ``traceparent``; its URL attributes pass ``scrub`` (an eSMS callback's path
    carries its signature, a search's query a phone number)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    def request_hook(span: trace.Span, scope: dict[str, Any]) -> None:
        if not span.is_recording():
            return
        path = scope.get("path", "")
        query = scope.get("query_string", b"").decode("latin-1")
        attributes = getattr(span, "attributes", None) or {}
        for name in ("http.target", "url.path", "url.query", "http.url", "url.full"):
            if name in attributes:
                value = {"url.path": path, "url.query": query}.get(name, str(attributes[name]))
                span.set_attribute(name, scrub(value))

    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls="healthz,readyz,metrics",
        server_request_hook=request_hook,
        exclude_spans=["receive", "send"],
    )
