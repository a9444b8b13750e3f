"""The plain-Dramatiq reference: one actor making the send path's single eSMS request.

    BENCH_REDIS_URL=... BENCH_VOICE_URL=... python -m dramatiq bench.bare_dramatiq -p 2 -t 8

``bare_call(request_id)`` sends the same ``GET MakeCallRecord_V2`` the send path sends
(same query parameters, a CallbackUrl of the same shape, the job id as RequestID) with an
``httpx.Client`` of the same connection limit and timeouts, and nothing else: no job record,
no claim, no limits, no logging. Dramatiq's default middleware. Completions are counted from
the simulator's ledger, so the actor does no extra work to be counted.
"""

from __future__ import annotations

import hashlib
import os

import dramatiq
import httpx
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench-bare"
ACTOR = "bare_call"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
VOICE_URL = os.environ.get("BENCH_VOICE_URL", "http://127.0.0.1:8081/voice/MainService.svc/json")
CALLBACK_BASE = os.environ.get("BENCH_CALLBACK_BASE", "http://127.0.0.1:8000")
API_KEY = os.environ.get("ESMS_API_KEY", "sim-api-key")
SECRET_KEY = os.environ.get("ESMS_SECRET_KEY", "sim-secret-key")

broker = RedisBroker(url=REDIS_URL, namespace="dramatiq")
dramatiq.set_broker(broker)
_http = httpx.Client(
    timeout=httpx.Timeout(15.0, connect=5.0), limits=httpx.Limits(max_connections=50)
)


def phone_for(request_id: str) -> str:
    """A stable national number per request (last digit 4-9: answered on the first dial)."""
    digest = int(hashlib.blake2b(request_id.encode(), digest_size=4).hexdigest(), 16)
    return f"09{digest % 10**7:07d}{4 + digest % 6}"


def bare_call(request_id: str) -> None:
    """One ``MakeCallRecord_V2`` to the simulator; raises on anything but eSMS code 100."""
    query = {
        "ApiKey": API_KEY,
        "SecretKey": SECRET_KEY,
        "TemplateId": "rec-bench",
        "Phone": phone_for(request_id),
        "MaxRetry": "1",
        "CallbackUrl": f"{CALLBACK_BASE}/v1/esms/callback/{request_id}/{'0' * 32}",
        "RequestID": request_id,
    }
    response = _http.get(f"{VOICE_URL}/MakeCallRecord_V2", params=query)
    response.raise_for_status()
    code = str(response.json().get("CodeResult", ""))
    if code != "100":
        raise RuntimeError(f"eSMS code {code}")


bare_actor = dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, broker=broker, max_retries=0)(
    bare_call
)
