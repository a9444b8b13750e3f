"""OpenTelemetry tracing, off by default: the one door every process goes through.

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp`` or ``console``) and
``OTEL_SDK_DISABLED`` is not true; it needs the ``voicecall[otel]`` extra. It is configured
only by the standard ``OTEL_*`` variables, read from the process environment as every
OpenTelemetry SDK reads them (:func:`check_environment` checks them at start-up: a bad value
stops it with one line). While tracing is off nothing here imports OpenTelemetry, and every
function below is a no-op: :mod:`voicecall.telemetry.otel` holds the SDK side.

A job carries its trace as a W3C carrier (``{"traceparent": ..., "tracestate": ...}``):
stored with the job at intake and copied by the Lua steps into every Dramatiq message they
write (``options.trace_ctx``), so each step of the job continues the trace of the request that
made it, whatever process runs it and however much later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Literal, Protocol

from voicecall.config.otel_env import check_environment
from voicecall.telemetry.carriers import Carrier

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

SpanKind = Literal["internal", "server", "client", "producer", "consumer"]

# --- the process's tracer ------------------------------------------------------------------

_on = False


def setup(role: str, env: Mapping[str, str] | None = None, *, exporter: Any = None) -> bool:
    """Start tracing for this process (``role``: api, worker, scheduler, ...) if the
    environment asks for it; True when it is on. Safe to call more than once. ``exporter``:
    a span exporter to use instead of the one the environment names (a test's in-memory one,
    which gets each span as it ends)."""
    global _on
    config = check_environment(env)
    if config is None or _on:
        return _on
    from voicecall.telemetry import otel

    otel.start(config, role, exporter)
    _on = True
    return True


def instrument_app(app: Any, scrub: Callable[[str], str]) -> None:
    """Server spans for the HTTP API (FastAPI's official instrumentation), each URL
    attribute passed through ``scrub`` (voicecall.telemetry.logs.scrub)."""
    if _on:
        from voicecall.telemetry import otel

        otel.instrument_app(app, scrub)


def enabled() -> bool:
    return _on


def current_carrier() -> Carrier | None:
    """The W3C carrier of the current span, to store with a job (None: no span or off)."""
    if not _on:
        return None
    from voicecall.telemetry import otel

    return otel.current_carrier()


def span(
    name: str,
    *,
    kind: SpanKind = "internal",
    attributes: Mapping[str, Any] | None = None,
    parent: Carrier | None = None,
    link: Carrier | None = None,
) -> AbstractContextManager[Any]:
    """A span around a block, current inside it: a child of ``parent`` (a stored carrier)
    if given, else of the current span; ``link``: a carrier it points to without being its
    child (a call sent long after the request that made it). A no-op while tracing is off."""
    if not _on:
        return nullcontext()
    from voicecall.telemetry import otel

    return otel.span(name, kind=kind, attributes=attributes, parent=parent, link=link)


class HeldSpan(Protocol):
    """A span made current by :func:`hold`, whose end may come from another thread."""

    def detach(self) -> None:
        """Restore the context of the thread that holds it; the span stays open."""

    def end(self, exception: BaseException | None = None) -> None:
        """End it (an Exception marks it failed)."""


def hold(
    name: str,
    *,
    kind: SpanKind = "internal",
    attributes: Mapping[str, Any] | None = None,
    parent: Carrier | None = None,
    link: Carrier | None = None,
) -> HeldSpan | None:
    """A span made current in this thread now, and ended by whoever calls its ``end`` (a
    message's consumer span, ended when the engine step it handed over ends); None while
    tracing is off."""
    if not _on:
        return None
    from voicecall.telemetry import otel

    held = otel.span(name, kind=kind, attributes=attributes, parent=parent, link=link)
    held.__enter__()
    return held


def set_attributes(attributes: Mapping[str, Any]) -> None:
    """Add attributes to the current span (None values are left out)."""
    if _on:
        from voicecall.telemetry import otel

        otel.set_attributes(attributes)


def add_link(carrier: Carrier | None) -> None:
    """Link the current span to a job's trace (a callback, which eSMS sends without one)."""
    if _on and carrier:
        from voicecall.telemetry import otel

        otel.add_link(carrier)


def add_event(name: str, attributes: Mapping[str, Any] | None = None) -> None:
    if _on:
        from voicecall.telemetry import otel

        otel.add_event(name, attributes or {})


def inject(headers: dict[str, str]) -> None:
    """Write the current span's ``traceparent`` (and ``tracestate``) into ``headers``."""
    carrier = current_carrier()
    if carrier:
        headers.update(carrier)


def current_ids() -> tuple[str, str] | None:
    """The current span's trace id and span id in hex, for log lines (None: none)."""
    if not _on:
        return None
    from voicecall.telemetry import otel

    return otel.current_ids()


@contextmanager
def attached(carrier: Carrier | None) -> Iterator[None]:
    """Make a stored carrier the current context for a block (a job step run without a span
    of its own)."""
    if not _on or not carrier:
        yield
        return
    from voicecall.telemetry import otel

    with otel.attached(carrier):
        yield


def shutdown() -> None:
    """Export what is still buffered and stop tracing (a process stopping)."""
    global _on
    if _on:
        from voicecall.telemetry import otel

        otel.shutdown()
        _on = False
