"""The eSMS.vn provider layer: request building, the HTTP client, retries, errors.

The worker imports from here only::

    from worker.esms import EsmsClient, PermanentError, RetryableError, NotReady, ...
"""

from voicecall.esms.results import Balance, Report, Submission
from worker.esms.client import AsyncEsmsClient, EsmsClient
from worker.esms.errors import (
    AccountError,
    ConfigurationError,
    EsmsError,
    InsufficientBalance,
    InvalidParameter,
    NotReady,
    PermanentError,
    RateLimited,
    RetryableError,
    TransportError,
)
from worker.esms.params import Speed, Voice

__all__ = [
    "AccountError",
    "AsyncEsmsClient",
    "Balance",
    "ConfigurationError",
    "EsmsClient",
    "EsmsError",
    "InsufficientBalance",
    "InvalidParameter",
    "NotReady",
    "PermanentError",
    "RateLimited",
    "Report",
    "RetryableError",
    "Speed",
    "Submission",
    "TransportError",
    "Voice",
]
