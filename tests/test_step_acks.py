"""A send message is acknowledged by its job's claim step, not by Dramatiq's ack (worker.broker).

The claim removes the message from the worker's acks and its body, as Dramatiq's dispatch.lua
"ack" would, and the worker's consumer then skips its own ack. Checked against the pinned
Dramatiq: if its layout or its consumer changed, messages would leak (acks or bodies left in
Redis) or be acknowledged twice, and these tests fail.
"""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import MAINTENANCE_SCALE

from tests.fixtures.redis_monitor import Monitor
from tests.fixtures.stack import Stack, wait_until
from voicecall.job import keys
from voicecall.job.states import State
from worker.broker import StepAckedBroker


def _leftovers(client: redis.Redis) -> dict[str, int]:
    """Messages still held anywhere in Dramatiq's keys: per-worker acks, bodies, queues."""
    found: dict[str, int] = {}
    for key in client.scan_iter(match=f"{keys.DRAMATIQ_NAMESPACE}:*"):
        kind = client.type(key)
        size = {"set": client.scard, "hash": client.hlen, "list": client.llen}.get(kind)
        if size is not None and key != keys.HEARTBEATS and (n := int(size(key))) > 0:
            found[key] = n
    return found


def test_the_claim_acknowledges_send_messages_and_dramatiq_does_not_ack_them_again(
    stack_factory: Callable[..., Stack],
) -> None:
    """Under MONITOR, with real workers: each bulk send message leaves Dramatiq's ack set inside
    the claim's script, and Dramatiq never acks a bulk or OTP message itself."""
    stack = stack_factory()
    stack.start_worker(threads=4)
    with Monitor(stack.redis.url) as monitor:
        ids = stack.post_record_calls("09012345", 20)
        ids.append(
            stack.post_call({"kind": "voice_otp", "phone": "0901234599", "content": "1"})["id"]
        )
        jobs = stack.wait_final(ids, timeout=60)
        # Polls and webhooks are still acknowledged by Dramatiq; wait for their queues too.
        wait_until(lambda: not _leftovers(stack.redis_client), 20, what="every message acked")
    assert all(job.state is State.COMPLETED for job in jobs.values())
    dramatiq_acks = [
        words for _, words in monitor.events if words[:1] == ["EVALSHA"] and "ack" in words[4:5]
    ]
    acked_queues = {words[6] for words in dramatiq_acks}
    assert not acked_queues & {keys.QUEUE_BULK, keys.QUEUE_OTP}, acked_queues
    claim_srems = [
        words
        for source, words in monitor.events
        if source == "lua" and words[:1] == ["SREM"] and words[1].endswith(f".{keys.QUEUE_BULK}")
    ]
    assert len(claim_srems) >= 20  # each bulk message left the acks in its claim


def test_a_message_whose_claim_failed_is_acknowledged_by_dramatiq_as_usual(
    stack_factory: Callable[..., Stack],
) -> None:
    """A send that found no free slot is not claimed (it is postponed): Dramatiq acks it."""
    stack = stack_factory(send_concurrency=1, handoff_wait_s=0.1)
    stack.sim.configure(latency_ms=1500)
    stack.start_worker(threads=4)
    with Monitor(stack.redis.url) as monitor:
        ids = stack.post_record_calls("09012346", 4)
        stack.wait_final(ids, timeout=60)
        wait_until(lambda: not _leftovers(stack.redis_client), 20, what="every message acked")
    bulk_acks = [
        words
        for _, words in monitor.events
        if words[:1] == ["EVALSHA"] and words[4:5] == ["ack"] and words[6:7] == [keys.QUEUE_BULK]
    ]
    assert bulk_acks, "postponed sends are acknowledged by Dramatiq's own ack"


def _fetch_three_of_five(redis_url: str, *, maintenance: bool) -> None:
    broker = StepAckedBroker(url=redis_url, namespace=keys.DRAMATIQ_NAMESPACE)
    if maintenance:  # every command goes through Dramatiq's own dispatch script
        broker.maintenance_chance = MAINTENANCE_SCALE
    client = redis.Redis.from_url(redis_url)
    queue = f"fetch-test-{maintenance}"
    try:
        broker.declare_queue(queue)
        sent = [broker.enqueue(dramatiq.Message(queue, "an_actor", (i,), {}, {})) for i in range(5)]
        ids = [message.options["redis_message_id"] for message in sent]
        bodies = broker.do_fetch(queue, 3)
        assert [dramatiq.Message.decode(body).args for body in bodies] == [(0,), (1,), (2,)]
        acks = client.smembers(keys.dramatiq_acks(broker.broker_id, queue))
        assert {a.decode() for a in acks} == set(ids[:3])
        left = client.lrange(keys.dramatiq_queue(queue), 0, -1)
        assert [i.decode() for i in left] == ids[3:]
        assert client.zscore(keys.HEARTBEATS, broker.broker_id) is not None
        assert len(broker.do_fetch(queue, 10)) == 2
        assert broker.do_fetch(queue, 10) == []
        assert broker.do_fetch(f"{queue}-never-used", 10) == []
    finally:
        broker.close()
        client.close()


def test_the_fetch_takes_messages_in_order_into_this_workers_acks(redis_url: str) -> None:
    """The one-pop fetch gives what Dramatiq's fetch gives (checked by running both)."""
    _fetch_three_of_five(redis_url, maintenance=False)
    _fetch_three_of_five(redis_url, maintenance=True)


def test_the_broker_refuses_another_namespace(redis_url: str) -> None:
    """The step-acked broker refuses a namespace other than voicecall's own."""
    with pytest.raises(ValueError, match="namespace"):
        StepAckedBroker(url=redis_url, namespace="elsewhere")


def test_delay_queues_are_polled_at_most_once_a_second(redis_url: str) -> None:
    """A delay queue's consumer gets a 1 s fetch timeout (polled at most once a second); a ready
    queue's keeps the timeout it is given."""
    broker = StepAckedBroker(url=redis_url, namespace=keys.DRAMATIQ_NAMESPACE)
    try:
        assert broker.consume(keys.QUEUE_OTP, prefetch=4, timeout=100).timeout == 100
        assert broker.consume(f"{keys.QUEUE_BULK}.DQ", prefetch=4, timeout=100).timeout == 1000
    finally:
        broker.close()
