"""voicecall's own Dramatiq middleware: log context, the send engine, the scheduler thread."""

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

from voicecall.config.settings import Settings
from voicecall.job import keys
from voicecall.telemetry.logs import get_logger
from voicecall.telemetry.metrics import WORKER_THREADS

log = get_logger(__name__)

_WORK_BY_ACTOR = {
    keys.ACTOR_SEND_OTP: "voice_otp",
    keys.ACTOR_SEND_BULK: "bulk",
    keys.ACTOR_POLL: "poll",
    keys.ACTOR_WEBHOOK: "webhook",
}


class LogContext(Middleware):
    """Binds job id, actor and message id into every log line of the message's handoff.

    The engine's steps bind the same job id (and the job's kind and trace id once read) in
    their own context: a coroutine does not see the worker thread's context variables.
    """

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            job_id=message.args[0] if message.args else None,
            actor=message.actor_name,
            work=_WORK_BY_ACTOR.get(message.actor_name, message.actor_name),
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


class EngineMiddleware(Middleware):
    """Starts the process's send engine after boot and drains it at shutdown.

    The engine's worker id is the Dramatiq broker's id, so the sweeper can find the
    messages a dead worker had fetched (``dramatiq:__acks__.{id}.{queue}``).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Before the worker threads start: the first message may arrive at once.
        from worker import engine

        WORKER_THREADS.set(worker.worker_threads)  # capacity for the utilisation panel
        running = engine.Engine(self.settings, owner=str(getattr(broker, "broker_id", "")))
        running.start()
        engine.set_engine(running)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from worker import engine

        try:
            running = engine.current()
        except RuntimeError:
            return
        running.stop(self.settings.shutdown_timeout_s)
        engine.set_engine(None)


class SchedulerMiddleware(Middleware):
    """Runs the scheduler and sweeper loop in a thread of each worker process.

    Safe with any number of processes: every step it takes is atomic in Redis.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._thread: threading.Thread | None = None
        self._scheduler: Any = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from worker import engine
        from worker.esms import EsmsClient
        from worker.scheduler import Scheduler

        store = engine.current().sync_store
        self._scheduler = Scheduler(self.settings, store)
        client: list[EsmsClient] = []

        def esms() -> EsmsClient:
            if not client:
                client.append(EsmsClient(self.settings))
            return client[0]

        self._thread = threading.Thread(
            target=self._scheduler.run, args=(esms,), name="voicecall-scheduler", daemon=True
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
