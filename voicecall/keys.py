"""Every Redis key and Dramatiq queue/actor name voicecall uses, in one greppable place.

Keys (prefix ``vc:``):

- ``vc:job:{id}``            hash   the job record (the truth; see voicecall.store)
- ``vc:job:{id}:history``    list   JSON transitions, oldest first
- ``vc:idem:{key}``          string idempotency key → job id
- ``vc:smsid:{smsid}``       string eSMS SMSID → job id
- ``vc:schedule``            zset   worker-mode jobs waiting for their time, scored by due epoch
- ``vc:inflight``            zset   jobs in ``queued``/``sending``/``retrying``, scored by the
                                    time after which the sweeper re-drives them
- ``vc:polls``               zset   ``submitted`` jobs, scored by their next planned poll
- ``vc:stats:states``        hash   state → number of jobs in it (cheap jobs-by-state gauge)
- ``vc:esms:balance``        hash   the last eSMS balance read (``vnd``, ``at``), for the exporter
- ``vc:lock:balance``        string one GetBalance per interval across all processes (TTL)

Dramatiq's own keys live under ``dramatiq:`` (queues ``dramatiq:{queue}``, message bodies
``dramatiq:{queue}.msgs``, delayed queues ``{queue}.DQ``, dead letters ``{queue}.XQ``).
"""

from __future__ import annotations

PREFIX = "vc:"

SCHEDULE = f"{PREFIX}schedule"
INFLIGHT = f"{PREFIX}inflight"
POLLS = f"{PREFIX}polls"
STATE_COUNTS = f"{PREFIX}stats:states"
ESMS_BALANCE = f"{PREFIX}esms:balance"
BALANCE_LOCK = f"{PREFIX}lock:balance"


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def history(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:history"


def idempotency(key: str) -> str:
    return f"{PREFIX}idem:{key}"


def smsid(value: str) -> str:
    return f"{PREFIX}smsid:{value}"


# Dramatiq queues (decision 5) and the actor names producers address by name.
QUEUE_OTP = "voicecall-otp"
QUEUE_BULK = "voicecall-bulk"
QUEUE_STATUS = "voicecall-status"
QUEUE_WEBHOOKS = "voicecall-webhooks"
ALL_QUEUES = (QUEUE_OTP, QUEUE_BULK, QUEUE_STATUS, QUEUE_WEBHOOKS)

ACTOR_SEND_OTP = "send_otp_call"
ACTOR_SEND_BULK = "send_bulk_call"
ACTOR_POLL = "poll_call_status"
ACTOR_WEBHOOK = "deliver_webhook"

DRAMATIQ_NAMESPACE = "dramatiq"


def dramatiq_messages(queue: str) -> str:
    return f"{DRAMATIQ_NAMESPACE}:{queue}.msgs"


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.XQ"


def delay_queue(queue: str) -> str:
    return f"{queue}.DQ"
