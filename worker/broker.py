"""The Dramatiq broker of the workers: Redis, on ``REDIS_URL`` or the primary the sentinels
name, through the job store's one client factory (RabbitMQ, and a broker on
another Redis, are refused by the settings: the job store writes messages in its own Redis).

Producers and the API need no broker: the job store writes each job's messages itself, in the
same Lua step as the job (voicecall.job.lifecycle), in the Redis broker's own layout.

The workers' broker (:class:`StepAckedBroker`) spends fewer Redis commands per message than
Dramatiq's own, with Dramatiq's keys and semantics unchanged:

- **Acks in the step.** The send actors' claim removes its message from the worker's acks and
  its body (what Dramatiq's "ack" does) in the claim's own Lua step, and the consumer then
  skips Dramatiq's ack for it: two commands less per call (the dispatch script and its
  heartbeat).
- **Fetch in one pop.** A fetch takes its messages with one ``LPOP`` with a count and one
  ``SADD`` (voicecall/store/lua/dramatiq_fetch.lua) where Dramatiq's loop runs both per message,
  and writes Dramatiq's heartbeat at most once a second, not on every (often empty) poll.
  A fetch that Dramatiq would have used for its maintenance (requeueing a dead worker's
  messages, expiring dead letters) still goes through Dramatiq's own script.
- **Delay queues polled once a second.** Only Dramatiq's Retries use them (backoff of 500 ms
  and more), so their idle consumers need not poll every WORKER_IDLE_POLL_MS as the queues
  that carry calls do: half the idle polls of a worker.

This leans on Dramatiq's Redis layout (``dramatiq/brokers/redis/dispatch.lua``), on
``RedisBroker.do_fetch`` and on ``_RedisConsumer.ack``; tests/test_step_acks.py checks them
against the pinned Dramatiq.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import dramatiq
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis
from dramatiq.middleware import CurrentMessage, Middleware

from voicecall.config.settings import Settings
from voicecall.job import keys
from voicecall.store.connection import redis_client
from voicecall.store.scripts import plain_source

FETCH = plain_source("dramatiq_fetch")
DELAY_QUEUE_POLL_MS = 1000  # an idle delay queue's longest poll interval
HEARTBEAT_EVERY_S = 1.0  # Dramatiq's heartbeat from fetches (it counts a worker dead at 60 s)


def fetch_keys(broker_id: str, queue_name: str) -> dict[str, str]:
    """dramatiq_fetch.lua's key slots, by name."""
    return {
        "heartbeats": keys.HEARTBEATS,
        "list": keys.dramatiq_queue(queue_name),
        "bodies": keys.dramatiq_messages(queue_name),
        "acks": keys.dramatiq_acks(broker_id, queue_name),
    }


def make_broker(
    settings: Settings, middleware: Sequence[Middleware] | None = None
) -> dramatiq.Broker:
    """A Redis broker for ``settings``; ``middleware`` None keeps Dramatiq's defaults."""
    chosen = list(middleware) if middleware is not None else None
    return StepAckedBroker(
        client=redis_client(settings, decode=False),  # the primary the sentinels name, or REDIS_URL
        middleware=chosen,
        namespace=keys.DRAMATIQ_NAMESPACE,
    )


class StepAckedBroker(RedisBroker):
    """A Redis broker whose consumers skip the ack of a message a job step acknowledged."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        if self.namespace != keys.DRAMATIQ_NAMESPACE:  # the scripts' keys come from keys.py
            raise ValueError(f"namespace must be {keys.DRAMATIQ_NAMESPACE!r}")
        self._acked: set[str] = set()  # redis_message_ids acknowledged by a step
        self._lock = threading.Lock()
        self._fetch = self.client.register_script(FETCH)
        self._beaten_at = 0.0  # time.monotonic() of this process's last heartbeat in a fetch

    def do_fetch(self, queue_name: str, prefetch: int) -> list[bytes | None]:
        """Up to ``prefetch`` message bodies of ``queue_name`` (Dramatiq's "fetch")."""
        if self._should_do_maintenance("fetch"):
            dispatch = self._dispatch("fetch")  # type: ignore[no-untyped-call]
            return cast(list[bytes | None], dispatch(queue_name, prefetch))
        count = min(prefetch, self._max_unpack_size())  # type: ignore[no-untyped-call]
        beat = time.monotonic() - self._beaten_at >= HEARTBEAT_EVERY_S
        if beat:
            self._beaten_at = time.monotonic()
        found = self._fetch(
            keys=list(fetch_keys(self.broker_id, queue_name).values()),
            args=[current_millis(), self.broker_id, count, int(beat)],
        )
        return cast(list[bytes | None], found)

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _StepAckedConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> _RedisConsumer:
        if queue_name.endswith(".DQ"):  # dramatiq.common.dq_name
            timeout = max(timeout, DELAY_QUEUE_POLL_MS)
        return cast(_RedisConsumer, super().consume(queue_name, prefetch, timeout))

    def acked_by_step(self, redis_message_id: str) -> None:
        """The message's ack was done in a job step (it is gone from Redis)."""
        with self._lock:
            self._acked.add(redis_message_id)

    def take_step_ack(self, redis_message_id: str) -> bool:
        with self._lock:
            found = redis_message_id in self._acked
            self._acked.discard(redis_message_id)
            return found


class _StepAckedConsumer(_RedisConsumer):
    def ack(self, message: Any) -> None:
        if self.broker.take_step_ack(message.options["redis_message_id"]):
            self.queued_message_ids.discard(message.message_id)  # what super().ack also does
            return
        super().ack(message)  # type: ignore[no-untyped-call]


def current_message_id() -> str | None:
    """The ``redis_message_id`` of the message this thread is handling, for a step to
    acknowledge; None outside a worker with a :class:`StepAckedBroker` (nothing to ack)."""
    message = CurrentMessage.get_current_message()
    if message is None or not isinstance(dramatiq.get_broker(), StepAckedBroker):
        return None
    found = message.options.get("redis_message_id")
    return str(found) if found else None


def mark_acked(redis_message_id: str) -> None:
    """After the step that acknowledged it succeeded: Dramatiq must not ack it again."""
    broker = dramatiq.get_broker()
    if isinstance(broker, StepAckedBroker):
        broker.acked_by_step(redis_message_id)
