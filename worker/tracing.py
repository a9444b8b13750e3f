"""Dramatiq has no OpenTelemetry instrumentation of its own: this middleware is ours, after
contrib's remoulade instrumentor. The Lua steps that write a job's messages copy the job's
trace context into ``options.trace_ctx``; before an actor runs, a consumer span
``process {queue}`` opens as its child and stays current for the actor and the engine step it
hands over (the step's task copies the context); it ends when that step ends, so it covers
the message's whole processing (claim, the eSMS request or the webhook POST, the step that
records the answer), each outbound request a child span. A message written by the scheduler
for a call due much later (``options.trace_link``) starts a trace of its own that links to
the request's: one trace per send, each findable from the request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from voicecall.telemetry import carriers, tracing

_open = threading.local()  # a worker thread handles one message at a time

Ending = Callable[[BaseException | None], None]


class TraceContext(Middleware):
    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        carrier = carriers.checked_carrier(message.options.get("trace_ctx"))
        link = bool(message.options.get("trace_link"))
        _open.span = tracing.hold(
            f"process {message.queue_name}",
            kind="consumer",
            attributes={
                "messaging.system": "dramatiq",
                "messaging.operation.type": "process",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
                "voicecall.job.id": message.args[0] if message.args else None,
                "voicecall.actor": message.actor_name,
            },
            parent=None if link else carrier,
            link=carrier if link else None,
        )
        _open.handed_over = False

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._close(exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._close(None)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Export what is still buffered: a worker process ends by ``os._exit`` (multiprocessing),
        which runs no atexit hook, so its last seconds of spans would be lost. After the
        engine's own hook (after-hooks run last to first), so its final steps' spans go too."""
        tracing.shutdown()

    @staticmethod
    def _close(exception: BaseException | None) -> None:
        span: tracing.HeldSpan | None = getattr(_open, "span", None)
        _open.span = None
        if span is not None:
            span.detach()
            if not _open.handed_over:
                span.end(exception)


def hand_over() -> Ending | None:
    """The consumer span of the message this thread handles, to end when the engine step the
    actor hands over ends (the send, poll or delivery the message stands for): the span
    covers the whole processing, and the step's own requests are its children. None when
    tracing is off or no message is being handled."""
    span: tracing.HeldSpan | None = getattr(_open, "span", None)
    if span is None or _open.handed_over:
        return None
    _open.handed_over = True
    return span.end
