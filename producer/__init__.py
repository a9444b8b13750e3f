"""The intake side of voicecall: the HTTP API, and the in-cluster producer that enqueues jobs in
Redis directly (:class:`VoiceCallClient`, for voicecall's own processes and tools). Other
systems enqueue through the API with :class:`voicecall.Client`.

>>> from producer import VoiceCallClient
>>> client = VoiceCallClient.from_env()  # doctest: +SKIP
>>> client.enqueue_record("0901234567", "rec-welcome", max_retry=2)  # doctest: +SKIP
"""

from producer.client import (
    CallPage,
    CampaignNotFound,
    CampaignSummary,
    CancelRefused,
    JobNotFound,
    JobView,
    SearchError,
    VoiceCallClient,
)
from producer.intake import DuplicateJobId, IdempotencyConflict

__all__ = [
    "CallPage",
    "CampaignNotFound",
    "CampaignSummary",
    "CancelRefused",
    "DuplicateJobId",
    "IdempotencyConflict",
    "JobNotFound",
    "JobView",
    "SearchError",
    "VoiceCallClient",
]
