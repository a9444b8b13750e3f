"""The message POST /v1/calls writes (from the create Lua step, on the API's async path) is one
the pinned Dramatiq reads: voicecall writes Dramatiq's Redis layout itself (Dramatiq has no
async enqueue; see voicecall/store/lua/lib.lua, ``enqueue``), so a Dramatiq upgrade that changes it
must fail here."""

from __future__ import annotations

from importlib.metadata import version

import dramatiq
import httpx
import redis
from dramatiq.brokers.redis import RedisBroker

from tests.fixtures.api import ApiServer
from voicecall.job import keys
from voicecall.store.job_store import JobStore

PINNED = "2.2"  # the Dramatiq minor version this layout was checked against (pyproject.toml)


def test_the_api_writes_a_message_the_pinned_dramatiq_consumes(
    api_server: ApiServer, redis_url: str
) -> None:
    """Body in the queue's .msgs hash under its id, the id on the queue's list; a RedisBroker
    of the pinned version decodes it and hands it to a consumer."""
    assert version("dramatiq").startswith(PINNED + ".")
    with api_server.client() as http:
        created = http.post(
            "/v1/calls", json={"kind": "record_call", "phone": "0901234567", "record_id": "r1"}
        )
    assert created.status_code == 202
    job_id = created.json()["id"]
    store = JobStore.from_url(redis_url)
    job = store.get(job_id)
    assert job is not None and job.msg is not None
    raw = redis.Redis.from_url(redis_url).hget(keys.dramatiq_messages(keys.QUEUE_BULK), job.msg)
    assert isinstance(raw, bytes)
    decoded = dramatiq.Message.decode(raw)
    assert (decoded.actor_name, tuple(decoded.args)) == (keys.ACTOR_SEND_BULK, (job_id,))
    broker = RedisBroker(url=redis_url)
    try:
        broker.declare_queue(keys.QUEUE_BULK)
        consumer = broker.consume(keys.QUEUE_BULK, prefetch=1, timeout=1000)
        message = next(consumer)
        assert message is not None
        assert (message.queue_name, message.actor_name) == (keys.QUEUE_BULK, keys.ACTOR_SEND_BULK)
        assert tuple(message.args) == (job_id,)
        assert message.message_id == job.msg
        assert message.options["redis_message_id"] == job.msg
        consumer.ack(message)
        consumer.close()
    finally:
        broker.close()
        store.close()
    assert httpx.get(f"{api_server.base_url}/healthz").status_code == 200
