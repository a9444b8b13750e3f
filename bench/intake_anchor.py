"""Figure 6's anchor: the least a FastAPI intake can do, for voicecall's POST /v1/calls to be
measured beside (issue 14 §3).

``uvicorn bench.intake_anchor:app`` with ``BENCH_REDIS_URL``: one async route that reads the
JSON body, runs one Lua create (the job written if new, plus its index entry) and one enqueue
(the message body and its queue entry, as Dramatiq's Redis broker writes them), both with
redis.asyncio, and answers 202. No auth, validation, idempotency, metrics or logging: what
is left is the cost of the framework, the server and the Redis work themselves.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

import redis.asyncio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

CREATE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0
"""

app = FastAPI()
_redis: Any = redis.asyncio.Redis.from_url(
    os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"), decode_responses=True
)
_create = _redis.register_script(CREATE)


@app.post("/v1/calls", status_code=202)
async def create_call(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    job_id = secrets.token_hex(10)
    job = json.dumps({**body, "id": job_id, "state": "queued"})
    await _create(keys=[f"anchor:job:{job_id}", "anchor:idx"], args=[job, 0, job_id])
    message = json.dumps({"queue_name": "anchor", "actor_name": "send", "args": [job_id]})
    async with _redis.pipeline(transaction=True) as pipe:
        pipe.hset("dramatiq:anchor.msgs", job_id, message)
        pipe.rpush("dramatiq:anchor", job_id)
        await pipe.execute()
    return JSONResponse({"id": job_id, "state": "queued"}, status_code=202)


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    await _redis.ping()
    return {"status": "ready"}
