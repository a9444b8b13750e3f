"""The send engine: asyncio loops in each worker process for everything that waits on the
network: one for Voice OTP, one for the other queues (see ``_LANE_OF_QUEUE``).

A Dramatiq worker thread blocks for as long as its actor runs (async actors included: Dramatiq
runs the coroutine on its loop and waits for it). So the actors here only hand their job to
this engine and return: an eSMS request that hangs holds a coroutine, never a thread, and
one slow receiver or provider cannot make other calls wait.

- **Slots.** Each queue has its own pool of slots per process (``SEND_CONCURRENCY`` for each
  send queue, ``POLL_CONCURRENCY``, ``WEBHOOK_CONCURRENCY``). Of the bulk calls holding a
  slot (some wait for their due time), at most ``BULK_SEND_CONCURRENCY`` have a request at
  eSMS at once: more would only queue at eSMS, where an OTP would wait behind them. A call
  waiting for one keeps its claim and renews its lease (worker.send), spending no retry. A step
  holds its slot until it ends. A send actor waits at most ``HANDOFF_WAIT_S`` for a slot; a send that finds none is
  postponed a second (in the due set) and the thread goes back to work, so a full bulk pool
  never holds the threads that OTP messages need. Webhooks never wait for a slot: their due
  set brings them back, so slow receivers filling the webhooks pool hold no thread at all.
  One receiver host holds at most ``WEBHOOK_HOST_CONCURRENCY`` of the webhook slots; its other
  deliveries wait in line holding none (worker.host_shares), so a host whose receivers hang
  never keeps another host's webhook waiting.
- **Claim before ack.** The send actor claims its job itself (one Lua step, in its thread)
  and only then hands it over and returns: a claimed job carries this worker's lease, so if
  the process dies from here on, the sweeper re-drives it (decision 1), not Dramatiq.
- **Liveness.** A thread beats into ``vc:workers`` every ``WORKER_HEARTBEAT_S``; the sweeper
  treats a worker silent for ``WORKER_LIVENESS_S`` as dead: its leases end and its fetched
  messages go back on their queues at once (no 60 s Dramatiq heartbeat timeout).
- **Shutdown.** On SIGTERM, steps in flight finish (within ``SHUTDOWN_TIMEOUT_S``); steps
  waiting for a due time are dropped, and the due set brings their jobs back; bulk calls
  still waiting for their place at eSMS give their claimed jobs back (``unclaim``), uncalled.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
import tenacity

from voicecall.config.settings import Settings
from voicecall.job import keys
from voicecall.job.lifecycle import ClaimRules
from voicecall.store.connection import UNAVAILABLE
from voicecall.store.job_store import AsyncJobStore, JobStore
from voicecall.telemetry.logs import get_logger
from worker import tracing, webhooks
from worker.esms import AsyncEsmsClient
from worker.host_shares import HostShares

log = get_logger(__name__)
T = TypeVar("T")

MAX_RETRY_WINDOW_S = 24 * 3600 - 600  # eSMS forgets a RequestId after 24 h
# Webhook deliveries that may wait for their host's share, per webhook slot: a waiting one
# costs a coroutine, not a slot; past this the due set keeps the backlog in Redis.
WEBHOOKS_WAITING_PER_SLOT = 4
EARLY_TOLERANCE_S = 0.02  # a timer may fire a few ms before its due time


def claim_rules(settings: Settings, owner: str) -> ClaimRules:
    return ClaimRules(
        owner=owner,
        lease_s=settings.send_lease_s,
        lease_check_s=settings.lease_check_s,
        liveness_ms=int(settings.worker_liveness_s * 1000),
        early_s=EARLY_TOLERANCE_S,
        grace_s=settings.sweep_stale_queued_s,
        max_retries=settings.send_max_retries,
        retry_window_s=settings.send_retry_window_s,
        max_window_s=MAX_RETRY_WINDOW_S,
        global_rate=settings.global_send_rate_per_s,
        phone_limit=settings.phone_limit_calls,
        phone_window_s=settings.phone_limit_window_s,
    )


class ClaimContext(Protocol):
    """What a claim needs: settings and this worker's claim rules."""

    settings: Settings
    rules: ClaimRules


@dataclass
class Context:
    """What the engine's steps share; built on the loop (async clients belong to it)."""

    settings: Settings
    owner: str
    rules: ClaimRules
    store: AsyncJobStore
    esms: AsyncEsmsClient
    # One client for every webhook delivery: making one costs ~25 ms of CPU (its TLS
    # context), which would stall the loop and every call on it.
    webhooks: httpx.AsyncClient
    # Bulk calls with a request at eSMS at once (BULK_SEND_CONCURRENCY); OTP has no such cap.
    bulk_requests: asyncio.Semaphore
    # Each receiver host's share of the webhook slots (WEBHOOK_HOST_CONCURRENCY).
    webhook_hosts: HostShares
    # Set when the engine stops: a bulk call still waiting for its place gives its job back.
    stopping: asyncio.Event


Step = Callable[[Context], Coroutine[Any, Any, None]]


async def durably(ctx: Context, call: Callable[[], Awaitable[T]], what: str) -> T:
    """``call()`` (a job-store step or read), retried through a short Redis outage (bounded
    by 0.8 × SEND_LEASE_S): once eSMS has answered, losing what it said would cost a poll or
    a second request. A connection the restarted Redis closed fails once and is made anew."""
    try:
        return await call()
    except UNAVAILABLE:
        log.warning("store_unavailable", op=what)
    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type(UNAVAILABLE),
        wait=tenacity.wait_exponential(multiplier=0.1, max=2),
        stop=tenacity.stop_after_delay(ctx.settings.send_lease_s * 0.8),
        reraise=True,
    )

    async def again() -> T:  # tenacity awaits a coroutine function, not a lambda's result
        return await call()

    return await retrying(again)


class _Lane:
    """One asyncio loop in a thread of its own, with the clients its steps share."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=f"voicecall-{name}", daemon=True)
        self.tasks: set[asyncio.Task[None]] = set()
        self.ctx: Context | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, Any], timeout_s: float = 30) -> Any:
        """Run ``coro`` on this loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout_s)


# Voice OTP has a loop of its own. With eSMS answering fast, bulk sends are CPU-bound and up
# to SEND_CONCURRENCY of them take their turn on a loop before each step of a call queued on
# it (make bench figure 5: an OTP behind 50,000 bulk calls waited p99 1.3 s on one shared
# loop). On its own loop an OTP waits only for the GIL, which threads trade every 5 ms.
_LANE_OF_QUEUE = {keys.QUEUE_OTP: "otp"}  # every other queue: "main"


class Engine:
    """See the module docstring. One per worker process, started after Dramatiq forks."""

    def __init__(self, settings: Settings, owner: str) -> None:
        self.settings = settings
        self.owner = owner
        self._lanes = {"otp": _Lane("engine-otp"), "main": _Lane("engine")}
        self._beat = threading.Thread(target=self._beat_loop, name="voicecall-beat", daemon=True)
        self._stopping = threading.Event()
        self._pools = {
            keys.QUEUE_OTP: threading.BoundedSemaphore(settings.send_concurrency),
            keys.QUEUE_BULK: threading.BoundedSemaphore(settings.send_concurrency),
            keys.QUEUE_STATUS: threading.BoundedSemaphore(settings.poll_concurrency),
            keys.QUEUE_WEBHOOKS: threading.BoundedSemaphore(settings.webhook_concurrency),
        }
        self.sync_store = JobStore.from_settings(settings)
        self.rules = claim_rules(settings, owner)

    # --- life -------------------------------------------------------------------------

    def start(self) -> None:
        for lane in self._lanes.values():
            lane.thread.start()
            lane.ctx = lane.call(self._open())
        self.sync_store.beat(self.owner)
        self._beat.start()
        log.info("engine_started", owner=self.owner)

    async def _open(self) -> Context:
        return Context(
            settings=self.settings,
            owner=self.owner,
            rules=claim_rules(self.settings, self.owner),
            store=AsyncJobStore.from_settings(self.settings),
            esms=AsyncEsmsClient(self.settings),
            bulk_requests=asyncio.Semaphore(self.settings.bulk_send_concurrency),
            webhooks=webhooks.webhook_client(),
            webhook_hosts=HostShares(
                self.settings.webhook_host_concurrency,
                self.settings.webhook_concurrency * WEBHOOKS_WAITING_PER_SLOT,
            ),
            stopping=asyncio.Event(),
        )

    def _beat_loop(self) -> None:
        while not self._stopping.wait(self.settings.worker_heartbeat_s):
            try:
                self.sync_store.beat(self.owner)
            except Exception as exc:  # a Redis hiccup: beat again next time
                log.warning("heartbeat_failed", error=type(exc).__name__)

    def stop(self, timeout_s: float) -> None:
        """Let steps in flight finish (at most ``timeout_s``), then close everything."""
        self._stopping.set()
        running = [lane for lane in self._lanes.values() if lane.thread.is_alive()]
        if not running:
            return
        drains = [
            asyncio.run_coroutine_threadsafe(self._drain(lane, timeout_s), lane.loop)
            for lane in running
        ]
        for drain in drains:  # the lanes drain side by side
            try:
                drain.result(timeout=timeout_s + 5)
            except Exception as exc:
                log.warning("engine_drain_failed", error=repr(exc))
        for lane in running:
            lane.loop.call_soon_threadsafe(lane.loop.stop)
            lane.thread.join(timeout=5)
        self._beat.join(timeout=5)
        self.sync_store.close()
        log.info("engine_stopped", owner=self.owner)

    @staticmethod
    async def _drain(lane: _Lane, timeout_s: float) -> None:
        if lane.ctx is not None:
            lane.ctx.webhook_hosts.close()  # waiting deliveries end now; the due set has them
            lane.ctx.stopping.set()  # bulk calls waiting for a place give their jobs back
        pending = {t for t in lane.tasks if not t.done()}
        if pending:
            log.info("engine_draining", steps=len(pending))
            _, late = await asyncio.wait(pending, timeout=timeout_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=2)
        if lane.ctx is not None:
            await lane.ctx.esms.close()
            await lane.ctx.webhooks.aclose()
            await lane.ctx.store.close()

    # --- handing work over ---------------------------------------------------------------

    def slot(self, queue: str, *, wait: bool = True) -> Slot | None:
        """One of ``queue``'s slots, or None when none came free within HANDOFF_WAIT_S (at
        once with ``wait=False``: a thread held here is a thread an OTP message waits for)."""
        pool = self._pools[queue]
        if self._stopping.is_set():
            return None
        if not pool.acquire(blocking=wait, timeout=self.settings.handoff_wait_s if wait else None):
            return None
        return Slot(pool, queue)

    def run(self, slot: Slot, step: Step) -> None:
        """Run ``step`` on its queue's loop; its slot is given back when it ends (from any
        thread)."""
        lane = self._lanes[_LANE_OF_QUEUE.get(slot.queue, "main")]
        ctx = lane.ctx
        assert ctx is not None
        ending = tracing.hand_over()  # the message's span ends with the step

        def spawn() -> None:
            task = lane.loop.create_task(self._guarded(step(ctx), slot, ending))
            lane.tasks.add(task)
            task.add_done_callback(lane.tasks.discard)

        try:
            lane.loop.call_soon_threadsafe(spawn)
        except RuntimeError as exc:  # the loop is closed: the engine is stopping
            if ending is not None:
                ending(exc)
            raise

    async def _guarded(
        self, work: Awaitable[None], slot: Slot, ending: tracing.Ending | None = None
    ) -> None:
        failure: BaseException | None = None
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = exc
            log.exception("engine_step_failed")
        finally:
            slot.release()
            if ending is not None:
                ending(failure)


class Slot:
    """A place in one queue's pool; released once."""

    def __init__(self, pool: threading.BoundedSemaphore, queue: str) -> None:
        self._pool = pool
        self.queue = queue
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._pool.release()

    def hand_over(self) -> Slot:
        """This place, passed to another step: this handle no longer holds it."""
        if not self._held:
            raise RuntimeError("a slot that is not held cannot be handed over")
        self._held = False
        return Slot(self._pool, self.queue)


_engine: Engine | None = None


def set_engine(value: Engine | None) -> None:
    global _engine
    _engine = value


def current() -> Engine:
    if _engine is None:
        raise RuntimeError("the send engine is not running (worker.middleware.EngineMiddleware)")
    return _engine
