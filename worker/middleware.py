"""voicecall's own Dramatiq middleware."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from voicecall import keys
from voicecall.logs import get_logger
from voicecall.metrics import WORKER_THREADS

log = get_logger(__name__)

_KIND_BY_ACTOR = {
    keys.ACTOR_SEND_OTP: "voice_otp",
    keys.ACTOR_SEND_BULK: "bulk",
    keys.ACTOR_POLL: "poll",
    keys.ACTOR_WEBHOOK: "webhook",
}


class LogContext(Middleware):
    """Binds job id, actor and attempt into every log line of the message.

    The send and poll steps add the job's kind and trace id (the intake request's id) once
    they have read the job.
    """

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            job_id=message.args[0] if message.args else None,
            actor=message.actor_name,
            work=_KIND_BY_ACTOR.get(message.actor_name, message.actor_name),
            attempt=int(message.options.get("retries", 0)) + 1,
            message_id=message.message_id,
        )

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        structlog.contextvars.clear_contextvars()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()


class SchedulerMiddleware(Middleware):
    """Runs the scheduler and sweeper loop in a thread of each worker process.

    Safe with any number of processes: releasing and sweeping are atomic in Redis.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._scheduler: Any = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from worker.runtime import runtime
        from worker.scheduler import Scheduler

        WORKER_THREADS.set(worker.worker_threads)  # capacity for the utilisation panel
        rt = runtime()
        self._scheduler = Scheduler(rt.settings, rt.store, broker)
        self._thread = threading.Thread(
            target=self._scheduler.run,
            args=(lambda: rt.esms,),
            name="voicecall-scheduler",
            daemon=True,
        )
        self._thread.start()
        log.info("scheduler_started")

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)


class RepeatedStopSignal(Middleware):
    """Keeps a worker process's stop graceful when its stop signal comes twice.

    A SIGTERM to the worker's process group (``kill -TERM -PGID``, systemd's default
    KillMode, the demo, the tests) reaches each worker process twice: directly, and again
    when Dramatiq's main process forwards its own copy. Dramatiq's handler takes a second
    signal as "kill now" (it logs "Killing worker process..." and exits 1), which would cut
    off the sends in flight. Here that exit is caught: the process goes on stopping within
    ``SHUTDOWN_TIMEOUT_S``. SIGKILL still stops it at once.
    """

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        # Emitted only in a Dramatiq worker process, in its main thread, before the main
        # process forwards any signal (it waits for every worker process to boot).
        for sig in (signal.SIGTERM, signal.SIGHUP):
            handler = signal.getsignal(sig)
            if callable(handler):
                signal.signal(sig, _repeat_tolerant(handler))


def _repeat_tolerant(
    handler: Callable[[int, FrameType | None], Any],
) -> Callable[[int, FrameType | None], None]:
    def on_stop_signal(signum: int, frame: FrameType | None) -> None:
        try:
            handler(signum, frame)
        except SystemExit:  # Dramatiq's handler, called again: already stopping
            log.warning("stop_signal_repeated", signal=signal.Signals(signum).name)

    return on_stop_signal
