"""A Voice OTP's spoken code leaves Redis on submission and on every move to a final state
(issue 10 §5), checked against real processes by reading every key of every type in Redis,
Dramatiq's queues, message bodies and dead letters included."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import redis

from tests.fixtures.stack import Stack, wait_until
from voicecall.job.states import Outcome, State

BLOCKED = "0900000099"  # the simulator's default blocked number: code 99, rejected


def _everything(client: redis.Redis) -> bytes:
    """Every key name and every value in the database, whatever its type, as one blob."""
    parts: list[bytes] = []
    for key in client.scan_iter(count=1000):
        parts.append(key)
        kind = client.type(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                parts += [field, value]
        elif kind == b"list":
            parts += client.lrange(key, 0, -1)
        elif kind == b"set":
            parts += list(client.smembers(key))
        elif kind == b"zset":
            parts += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            for _, fields in client.xrange(key):
                for field, value in fields.items():
                    parts += [field, value]
        elif kind != b"none":  # none: it expired between SCAN and TYPE (a limiter window)
            raise AssertionError(f"a key of type {kind!r} this scan cannot read: {key!r}")
    return b"\n".join(parts)


def test_no_otp_code_is_left_in_redis_on_any_path(stack_factory: Callable[..., Stack]) -> None:
    """Voice OTPs ending completed (delivered), cancelled, rejected by the phone limit,
    rejected by eSMS, expired (past their TTL) and failed (retries spent): once each is
    final, none of their codes is anywhere in Redis, while the one still waiting keeps its
    own (it is needed to place the call), so the scan does see codes where they are."""
    stack = stack_factory(phone_limit_calls=1, phone_limit_window_s=3600, send_max_retries=1)
    codes = {path: f"code{secrets.token_hex(6)}" for path in (
        "expired", "cancelled", "failed", "delivered", "limited_first", "limited_second",
        "esms_rejected", "waiting",
    )}  # fmt: skip

    def otp(path: str, phone: str, **extra: object) -> str:
        body = {"kind": "voice_otp", "phone": phone, "content": f"Ma {codes[path]}", **extra}
        job_id: str = stack.post_call(body)["id"]
        return job_id

    # No worker yet: one OTP waits in its queue past its time to live (due 11 s ago, the API
    # takes a send_at up to a minute past, with a 10 s TTL), another is cancelled.
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 11))
    ids = {"expired": otp("expired", "0901110001", ttl_s=10, send_at=past)}
    ids["cancelled"] = otp("cancelled", "0901110002")
    with stack.http() as http:
        assert http.delete(f"/v1/calls/{ids['cancelled']}").status_code == 200
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    waiting = otp("waiting", "0901110009", send_at=later)

    # eSMS answers every send with HTTP 500: the next OTP spends its retries and fails.
    stack.sim.configure(error_rate=1.0, fault_scope="send")
    stack.start_worker()
    ids["failed"] = otp("failed", "0901110003")
    stack.wait_final([ids["expired"], ids["failed"]], timeout=40)
    stack.sim.configure(error_rate=0.0)

    ids["delivered"] = otp("delivered", "0901110004")
    ids["limited_first"] = otp("limited_first", "0901110005")
    wait_until(lambda: stack.job(ids["limited_first"]).final, 20, what="the first OTP")
    ids["limited_second"] = otp("limited_second", "0901110005")
    ids["esms_rejected"] = otp("esms_rejected", BLOCKED)
    jobs = stack.wait_final(list(ids.values()), timeout=40)

    ends = {path: (jobs[job_id].state, jobs[job_id].reason) for path, job_id in ids.items()}
    assert ends == {
        "expired": (State.EXPIRED, "ttl"),
        "cancelled": (State.CANCELLED, None),
        "failed": (State.FAILED, ends["failed"][1]),
        "delivered": (State.COMPLETED, None),
        "limited_first": (State.COMPLETED, None),
        "limited_second": (State.REJECTED, "rate_limited"),
        "esms_rejected": (State.REJECTED, "esms_refused"),
    }
    assert jobs[ids["delivered"]].outcome is Outcome.DELIVERED
    placed = {str(call["params"]["Content"]) for call in stack.sim.calls()}
    assert f"Ma {codes['delivered']}" in placed  # eSMS got the code it had to read out

    dump = _everything(redis.Redis.from_url(stack.redis.url))
    assert codes["waiting"].encode() in dump, waiting  # the scan sees a code where it is
    left = [path for path, code in codes.items() if path != "waiting" and code.encode() in dump]
    assert left == []
