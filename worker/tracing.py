"""Dramatiq has no OpenTelemetry instrumentation of its own: this middleware is ours, after
contrib's remoulade instrumentor. The Lua steps that write a job's messages copy the job's
trace context into ``options.trace_ctx``; before an actor runs, a consumer span
``process {queue}`` opens as its child and stays current for the actor and the engine step it
hands over (the step's task copies the context). A message written by the scheduler for a
call due much later (``options.trace_link``) starts a trace of its own that links to the
request's: one trace per send, each findable from the request.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from voicecall.telemetry import carriers, tracing

_open = threading.local()  # a worker thread handles one message at a time


class TraceContext(Middleware):
    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        carrier = carriers.checked_carrier(message.options.get("trace_ctx"))
        link = bool(message.options.get("trace_link"))
        span = tracing.span(
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
        span.__enter__()
        _open.span = span

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

    @staticmethod
    def _close(exception: BaseException | None) -> None:
        span: AbstractContextManager[Any] | None = getattr(_open, "span", None)
        _open.span = None
        if span is not None:
            if exception is None:
                span.__exit__(None, None, None)
            else:
                span.__exit__(type(exception), exception, exception.__traceback__)
