"""The HTTP API's Python client: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio).

>>> import voicecall
>>> with voicecall.Client() as client:  # VOICECALL_URL, VOICECALL_TOKEN  # doctest: +SKIP
...     job = client.create_otp_call("0901234567", "Ma xac thuc cua ban la 482913")
...     client.get_call(job.id).state

Install with ``pip install 'voicecall[client]'`` (httpx; no FastAPI, no Dramatiq), and import
through ``voicecall``: importing the client loads no Redis client. Each call is safe to retry
(one idempotency key per call, on every try; voicecall.client._transport), pages follow their
cursors (``iter_calls``), errors are typed (:mod:`voicecall.client.errors`), and
:func:`verify_webhook` checks the webhooks the workers send.

This is the client for other teams' services: it goes through the API's tokens, quotas and
client names. ``producer.VoiceCallClient`` is another thing: the in-cluster producer that
writes to Redis directly, for voicecall's own processes and tools.
"""

from voicecall.client._async import AsyncClient
from voicecall.client._operations import (
    CallOptions,
    Filters,
    OtpOptions,
    RecordOptions,
    TemplateOptions,
)
from voicecall.client._sync import Client
from voicecall.client._transport import RetryPolicy
from voicecall.client.errors import (
    ApiError,
    ClientError,
    Conflict,
    ConnectionFailed,
    InvalidWebhook,
    NotFound,
    RateLimited,
    RequestRefused,
    ServerError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from voicecall.client.models import (
    BatchItem,
    BatchResult,
    BulkOperation,
    CallPage,
    CampaignSummary,
    ItemError,
)
from voicecall.client.webhooks import WebhookEvent, verify_webhook
from voicecall.job.records import JobView

__all__ = [
    "ApiError",
    "AsyncClient",
    "BatchItem",
    "BatchResult",
    "BulkOperation",
    "CallOptions",
    "CallPage",
    "CampaignSummary",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Filters",
    "InvalidWebhook",
    "ItemError",
    "JobView",
    "NotFound",
    "OtpOptions",
    "RateLimited",
    "RecordOptions",
    "RequestRefused",
    "RetryPolicy",
    "ServerError",
    "TemplateOptions",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
    "WebhookEvent",
    "verify_webhook",
]
