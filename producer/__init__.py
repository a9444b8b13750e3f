"""The intake side of voicecall: what other systems import to enqueue call jobs.

>>> from producer import VoiceCallClient
>>> client = VoiceCallClient.from_env()  # doctest: +SKIP
>>> client.enqueue_record("0901234567", "rec-welcome", max_retry=2)  # doctest: +SKIP
"""

from producer.client import CancelRefused, JobNotFound, JobView, VoiceCallClient
from producer.intake import DuplicateJobId, IdempotencyConflict

__all__ = [
    "CancelRefused",
    "DuplicateJobId",
    "IdempotencyConflict",
    "JobNotFound",
    "JobView",
    "VoiceCallClient",
]
