"""Every Redis key and Dramatiq queue/actor name voicecall uses, in one greppable place.

Lua scripts never build a key name: they receive every key they touch through ``KEYS``, built
here, so they also run where Redis refuses undeclared keys (Cluster, Dragonfly).

Keys of voicecall (prefix ``vc:``):

- ``vc:job:{id}``              string  the job: one JSON document (see voicecall.job.records). It is
                                       the only key under ``vc:job:``, so no id can name another
                                       key, whatever characters it holds.
- ``vc:idem:{client}:{key}``   string  a client's idempotency key → job id (a client name holds
                                       no ``:``, voicecall.config.clients: two clients' keys never meet)
- ``vc:smsid:{bucket}``        hash    eSMS SMSID → job id: one of SMSID_BUCKETS small hashes (by a
                                       hash of the SMSID, ≤ 128 fields each up to ~500,000 jobs,
                                       so Redis keeps them as listpacks), field smsid_field(SMSID);
                                       a field leaves with its job
- ``vc:idx:state``             zset    every job, scored ``band × 2^42 + created ms`` where the
                                       band is its (state, outcome, kind): lists by state newest
                                       first and counts jobs by state (ZCOUNT of a band)
- ``vc:schedule``              zset    scheduled jobs by due time (the scheduler releases them)
- ``vc:due``                   zset    when each job next needs attention: a claimed job's lease
                                       check, a retry's time, a poll's time, a job a worker holds
                                       until it is due, a final job's end of retention
- ``vc:due:webhooks``          zset    final jobs whose webhook is still to be delivered
- ``vc:idx:p:{bucket}``        zset    the phone index: one of PHONE_BUCKETS small sorted sets (by a
                                       hash of the phone), members ``{phone}:{newness}:{id}`` in
                                       lexical order, so a phone's jobs come newest first
- ``vc:idx:c:{cid}:{chunk}``   zset    a campaign's jobs in the order they joined it (scored by their
                                       place, seq), CAMPAIGN_CHUNK per key so each stays a listpack
- ``vc:campaigns``             hash    campaign name → its number (cid); ``\x00next``: the last cid
- ``vc:campaigns:names``       hash    cid → campaign name
- ``vc:campaigns:seq``         hash    cid → jobs created in it so far (their chunk is seq // chunk)
- ``vc:campaigns:stats``       hash    ``{cid}:{figure}`` → counter: total, jobs per state and per
                                       outcome, duration_s, price_vnd, first/last send
- ``vc:dead:{queue}``          zset    dead letters of a queue (job ids, by when they failed)
- ``vc:workers``               zset    worker processes (their Dramatiq broker id) by last
                                       heartbeat, in ms; a stale one is dead
- ``vc:limit:global``          zset    sends in the last second (the global rate limit)
- ``vc:limit:phone:{hash}``    zset    calls to one phone in the sliding window (hashed: no phone
                                       number in key names)
- ``vc:quota:{client}``        zset    an API client's quota (API_TOKEN_QUOTA): its calls accepted
                                       in the last window, scored by when (ms): a sliding-window
                                       log, at most CALLS members (voicecall/store/lua/quota.lua)
- ``vc:esms:balance``          hash    the last eSMS balance read (``vnd``, ``at``), for the exporter
- ``vc:lock:balance``          string  one GetBalance per interval across all processes (TTL)
- ``vc:activity:{minute}``     hash    one minute's sends (``sent``) and endings (a final state, or
                                       ``outcome:{outcome}``), counted by the lifecycle steps; the
                                       minute is epoch seconds // 60; TTL ACTIVITY_TTL_S
- ``vc:console:sessions:{tid}`` zset   the console sessions of one API token (``tid``: an HMAC of
                                       it, never the token): a digest of each session's id, scored
                                       by when it ends; at most CONSOLE_SESSIONS_PER_TOKEN (the
                                       oldest go first), gone when its newest session ends. Logout
                                       removes its member: a copied cookie is then refused

Dramatiq's own keys live under ``dramatiq:``: queue ``dramatiq:{queue}`` (a list of message ids),
bodies ``dramatiq:{queue}.msgs`` (a hash), per-worker acks ``dramatiq:__acks__.{worker}.{queue}``,
heartbeats ``dramatiq:__heartbeats__``. The job store writes send, poll and webhook messages into
the first two itself, in the same Lua step as the job's transition (see voicecall.job.lifecycle).
"""

from __future__ import annotations

import base64
import hashlib

PREFIX = "vc:"

STATE_INDEX = f"{PREFIX}idx:state"
DUE = f"{PREFIX}due"
SCHEDULE = f"{PREFIX}schedule"
WEBHOOKS_DUE = f"{PREFIX}due:webhooks"
WORKERS = f"{PREFIX}workers"
CAMPAIGNS = f"{PREFIX}campaigns"
CAMPAIGN_NAMES = f"{PREFIX}campaigns:names"
CAMPAIGN_SEQ = f"{PREFIX}campaigns:seq"
CAMPAIGN_STATS = f"{PREFIX}campaigns:stats"
CAMPAIGN_CHUNK = 128  # jobs per chunk of a campaign's index (Redis keeps ≤ 128 as a listpack)
PHONE_BUCKETS = 4096  # small sets of the phone index (≤ 128 jobs each up to ~500,000 jobs)
SMSID_BUCKETS = 4096  # small hashes of the SMSID lookup (the same sizing)
GLOBAL_LIMIT = f"{PREFIX}limit:global"
ESMS_BALANCE = f"{PREFIX}esms:balance"
BALANCE_LOCK = f"{PREFIX}lock:balance"
ACTIVITY_TTL_S = 26 * 3600  # the console charts the last day by hour; two hours of margin
CONSOLE_SESSIONS_PER_TOKEN = 32  # open console sessions kept per API token; older ones end


def activity(at_s: float) -> str:
    """The activity hash of the minute that holds ``at_s`` (epoch seconds)."""
    return f"{PREFIX}activity:{int(at_s // 60)}"


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def idempotency(client: str, key: str) -> str:
    """``client``'s idempotency ``key`` (the same key from two clients names two jobs)."""
    return f"{PREFIX}idem:{client}:{key}"


def smsid_field(smsid: str) -> str:
    """``smsid``'s field in its bucket: 12 characters (72 bits of BLAKE2b) instead of eSMS's 36,
    so the lookup stays small; two SMSIDs of one bucket share a field about once in 10^19."""
    digest = hashlib.blake2b(smsid.encode(), digest_size=9).digest()
    return base64.urlsafe_b64encode(digest).decode()


def smsid_bucket(smsid: str) -> str:
    """The hash that holds ``smsid``'s job id (field: the SMSID itself)."""
    digest = hashlib.blake2b(smsid.encode(), digest_size=4).digest()
    return f"{PREFIX}smsid:{int.from_bytes(digest, 'big') % SMSID_BUCKETS}"


def client_quota(client: str) -> str:
    """An API client's quota, by its name (a name, never a token)."""
    return f"{PREFIX}quota:{client}"


def console_sessions(tid: str) -> str:
    """The open console sessions of the API token named ``tid`` (producer.console.session)."""
    return f"{PREFIX}console:sessions:{tid}"


def console_session_member(sid: str) -> str:
    """A session's member in :func:`console_sessions`: a digest, not the id the cookie holds."""
    return hashlib.blake2b(sid.encode(), digest_size=12).hexdigest()


def phone_limit(phone: str) -> str:
    digest = hashlib.blake2b(phone.encode(), digest_size=10).hexdigest()
    return f"{PREFIX}limit:phone:{digest}"


def phone_bucket(phone: str) -> str:
    digest = hashlib.blake2b(phone.encode(), digest_size=4).digest()
    return f"{PREFIX}idx:p:{int.from_bytes(digest, 'big') % PHONE_BUCKETS}"


def campaign_chunk(cid: int, seq: int) -> str:
    return f"{PREFIX}idx:c:{cid}:{seq // CAMPAIGN_CHUNK}"


BULK_OP_TTL_S = 7 * 86400  # a bulk operation's record stays a week after its last change


def bulk_op(op_id: str) -> str:
    """A bulk action's record (voicecall.store.bulk_ops)."""
    return f"{PREFIX}bulk:{op_id}"


def dead_letters(queue: str) -> str:
    return f"{PREFIX}dead:{queue}"


# Dramatiq queues (decision 5) and the actor names the store's messages address.
QUEUE_OTP = "voicecall-otp"
QUEUE_BULK = "voicecall-bulk"
QUEUE_STATUS = "voicecall-status"
QUEUE_WEBHOOKS = "voicecall-webhooks"
ALL_QUEUES = (QUEUE_OTP, QUEUE_BULK, QUEUE_STATUS, QUEUE_WEBHOOKS)
SEND_QUEUES = (QUEUE_OTP, QUEUE_BULK)

ACTOR_SEND_OTP = "send_otp_call"
ACTOR_SEND_BULK = "send_bulk_call"
ACTOR_POLL = "poll_call_status"
ACTOR_WEBHOOK = "deliver_webhook"
ACTOR_BY_QUEUE = {
    QUEUE_OTP: ACTOR_SEND_OTP,
    QUEUE_BULK: ACTOR_SEND_BULK,
    QUEUE_STATUS: ACTOR_POLL,
    QUEUE_WEBHOOKS: ACTOR_WEBHOOK,
}

DRAMATIQ_NAMESPACE = "dramatiq"
HEARTBEATS = f"{DRAMATIQ_NAMESPACE}:__heartbeats__"


def dramatiq_queue(queue: str) -> str:
    return f"{DRAMATIQ_NAMESPACE}:{queue}"


def dramatiq_messages(queue: str) -> str:
    return f"{DRAMATIQ_NAMESPACE}:{queue}.msgs"


def dramatiq_acks(worker_id: str, queue: str) -> str:
    return f"{DRAMATIQ_NAMESPACE}:__acks__.{worker_id}.{queue}"


def message_keys() -> list[str]:
    """The list and body hash of every queue, in ALL_QUEUES order: what a script that may
    enqueue to any queue declares (2 keys per queue)."""
    out: list[str] = []
    for queue in ALL_QUEUES:
        out += [dramatiq_queue(queue), dramatiq_messages(queue)]
    return out
