"""Every error voicecall raises on purpose, under one root.

::

    VoicecallError
    ├── SettingsError                     a setting is missing or invalid (one line; exit 2)
    ├── IntakeError                       a call request is refused before anything is stored
    │   ├── IdempotencyConflict           the idempotency key is used by a job with another body
    │   └── DuplicateJobId                a job with this id exists already
    ├── StoreError                        the job store refused an operation
    │   ├── JobNotFound                   no job with this id (or past its retention)
    │   ├── CancelRefused                 the job was handed to eSMS, or is final
    │   ├── ReopenRefused                 a dead letter that cannot be requeued safely
    │   └── CampaignNotFound              no job ever named this campaign
    ├── SearchError (ValueError)          a search filter, limit or cursor breaks its rule
    ├── FieldRefused (ValueError)         a value (e.g. a cancel reason) breaks its field's rule
    ├── WebhookError                      an outbound webhook (voicecall.webhooks.urls)
    │   ├── WebhookTargetError            a webhook URL cannot be delivered to
    │   │   ├── WebhookUrlRefused (ValueError)  the URL breaks the webhook URL policy
    │   │   └── WebhookDnsError           its host did not resolve
    │   └── InvalidWebhook (ValueError)   a received one's signature, time or body is refused
    │                                     (voicecall.client.webhooks.verify_webhook)
    ├── ClientError                       a request of the HTTP API's client (voicecall.Client)
    │   ├── ConnectionFailed              failed; the tree in voicecall.client.errors
    │   └── ApiError                      ValidationFailed, Unauthorized, NotFound, Conflict,
    │                                     RateLimited, Unavailable, ServerError, RequestRefused
    └── EsmsError                         the eSMS provider layer (tree in worker.esms.errors)
        ├── InvalidParameter (ValueError)
        ├── NotReady
        ├── RetryableError ── TransportError, RateLimited, InsufficientBalance
        └── PermanentError ── ConfigurationError, AccountError

"The request failed" (:class:`~worker.esms.errors.TransportError`) is kept apart from "eSMS
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
