"""Every error voicecall raises on purpose, under one root: the one drawing of the whole tree.

Each line names a class, its other bases in parentheses, and what it means; ``[module]``
says where a class is defined (its branch below it too), else it is here.
tests/test_error_tree.py checks this drawing against the code, both ways.

::

    VoicecallError
    ├── SettingsError                   a setting is missing or invalid (one line; exit 2)
    ├── IntakeError                     a call request is refused before anything is stored
    │   ├── IdempotencyConflict         the idempotency key is used by a job with another body
    │   └── DuplicateJobId              a job with this id exists already
    ├── StoreError                      the job store refused an operation
    │   ├── JobNotFound (LookupError)   no job with this id (or past its retention)
    │   ├── CancelRefused               the job was handed to eSMS, or is final
    │   ├── ReopenRefused               a dead letter that cannot be requeued safely
    │   ├── CampaignNotFound (LookupError)  no job ever named this campaign
    │   ├── HandoverFailed              no new primary named in time [voicecall.store.handover]
    │   └── PrimaryUnavailable (ConnectionError)  no Redis primary within the failover deadline [voicecall.store.failover]
    │       └── ReplicationTimeout      WAIT saw fewer replicas than asked: the write may be lost
    ├── SearchError (ValueError)        a search filter, limit or cursor breaks its rule
    ├── FieldRefused (ValueError)       a value (e.g. a cancel reason) breaks its field's rule
    ├── PhoneError (ValueError)         not a Vietnamese phone number [voicecall.formats.phones]
    ├── LabelSyntaxError (ValueError)   a label that is not key=value [voicecall.formats.labels]
    ├── ReportRefused (ValueError)      a callback or status report field breaks its rule
    │                                   [voicecall.esms.results]
    ├── WebhookError                    about an outbound webhook
    │   ├── WebhookTargetError          a webhook URL cannot be delivered to
    │   │   │                           [voicecall.webhooks.urls]
    │   │   ├── WebhookUrlRefused (ValueError)  the URL breaks the webhook URL policy
    │   │   └── WebhookDnsError         its host did not resolve
    │   └── InvalidWebhook (ValueError)  a received one's signature, time or body is refused
    │                                   [voicecall.client.errors]
    ├── ClientError                     a request of the HTTP API's client (voicecall.Client)
    │   │                               [voicecall.client.errors]
    │   ├── ConnectionFailed            no answer: refused, reset, timed out (after the retries)
    │   └── ApiError                    the API answered an error: .status .code .message .body
    │       │                           .request_id (the X-Request-ID to quote)
    │       ├── ValidationFailed        422: .errors, each field and its rule
    │       ├── Unauthorized            401: no or wrong token
    │       ├── NotFound                404: no such job or campaign
    │       ├── Conflict                409: idempotency_conflict, duplicate_id, cancel_refused;
    │       │                           .job_id, .state
    │       ├── _RetryLater             an answer naming its wait: .retry_after_s
    │       │   ├── RateLimited         429: over the client's quota
    │       │   └── Unavailable         503: Redis unreachable, nothing changed
    │       ├── ServerError             500 and any other 5xx
    │       └── RequestRefused          any other 4xx (403, 405, 413 body too large, 415)
    ├── EsmsError                       the eSMS provider layer; .code is eSMS's result code
    │   │                               or None [worker.esms.errors]
    │   ├── InvalidParameter (ValueError)  refused before any request; .param names it
    │   ├── EsmsCodeError               eSMS answered an error code (.code, .message); never
    │   │   │                           raised itself
    │   │   ├── NotReady                105: the SMSID is not queryable yet (status only)
    │   │   └── PermanentError          eSMS refused the request for good
    │   │       ├── ConfigurationError  101 wrong keys, 140 IP not whitelisted, or an HTTP
    │   │       │                       3xx/4xx without an eSMS code (wrong URL)
    │   │       └── AccountError        102 no price table, 143 account locked or inactive
    │   └── RetryableError              try again later; the attempt may succeed
    │       ├── TransportError          timeout, connection error, HTTP 5xx, non-JSON body
    │       ├── RateLimited             HTTP 429 or eSMS 160; .retry_after_s (Retry-After)
    │       └── InsufficientBalance (EsmsCodeError)  103: top up, then it works again (alert)
    ├── ApiError                        an HTTP API answer other than success, rendered as
    │   │                               JSON [producer.errors]
    │   └── BodyTooLarge                413: the body is over API_MAX_BODY_BYTES
    ├── DuplicateKey (ValueError)       a JSON body names a key twice [producer.body]
    ├── CsvFormatError                  a CSV file cannot be imported at all
    │                                   [producer.csv_import]
    ├── LoginRequired                   no valid console session: the login page answers
    │                                   [producer.console.web]
    ├── ClaimLost                       the job is no longer this worker's claim; no call made
    │                                   [worker.send]
    └── Stopping                        the engine stops while a call waits; no call made
                                        [worker.send]

"The request failed" (:class:`~worker.esms.errors.TransportError`,
:class:`~voicecall.client.errors.ConnectionFailed`) is kept apart from "the other side
answered with an error" (everything carrying ``.code``), and a refused request from a broken
system: nothing here is raised for a bug. The HTTP API maps these classes to answers in one
table (``producer.errors.STATUS_BY_ERROR``); the worker decides retry or give up by type alone.
"""

from __future__ import annotations


class VoicecallError(Exception):
    """Root of every error voicecall raises on purpose."""


class SettingsError(VoicecallError):
    """A setting is missing or invalid; ``str()`` is one line naming it and the rule."""


class IntakeError(VoicecallError):
    """A call request was refused; nothing was stored. When it broke the job contract,
    ``errors`` names each field and rule in plain words (producer.fields), as a 422 does:
    ``[{"field": "kind", "message": "is required: one of voice_otp, ..."}]``."""

    def __init__(self, message: str, *, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class IdempotencyConflict(IntakeError):
    """The idempotency key is already used by a job with a different body."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(
            f"idempotency_key {key!r} is already used by job {job_id} with a different body"
        )
        self.key = key
        self.job_id = job_id


class DuplicateJobId(IntakeError):
    """A job with this id exists already (and no idempotency key says it is the same one)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"id {job_id!r} is already used by another job")
        self.job_id = job_id


class StoreError(VoicecallError):
    """The job store refused an operation."""


class JobNotFound(StoreError, LookupError):
    """No job with this id (or it has passed its retention)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


class CancelRefused(StoreError):
    """The job can no longer be cancelled: it was handed to eSMS or is final."""

    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(
            f"job {job_id} is {state}: only a scheduled or queued job never yet handed "
            "to eSMS can be cancelled"
        )
        self.job_id = job_id
        self.state = state  # a voicecall.job.states.State (a str), named here by its type only


class ReopenRefused(StoreError):
    """A dead letter that cannot be requeued (gone, not failed, or too old to send safely)."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id}: {reason}")
        self.job_id = job_id
        self.reason = reason


class CampaignNotFound(StoreError, LookupError):
    """No job ever had this ``campaign`` label."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no campaign {name!r}")
        self.name = name


class SearchError(VoicecallError, ValueError):
    """A search filter, limit or cursor breaks its rule; ``param`` names it."""

    def __init__(self, param: str, rule: str) -> None:
        super().__init__(f"{param} {rule}")
        self.param = param
        self.rule = rule


class FieldRefused(VoicecallError, ValueError):
    """A value given for ``field`` breaks its rule; nothing was changed."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field} {rule}")
        self.field = field
        self.rule = rule


class WebhookError(VoicecallError):
    """Something about an outbound webhook (the classes are in voicecall.webhooks.urls)."""
