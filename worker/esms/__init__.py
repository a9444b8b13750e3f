"""The eSMS.vn provider layer: request building, the HTTP client, retries, errors.

The worker imports from here only::

    from worker.esms import EsmsClient, PermanentError, RetryableError, NotReady, ...
"""

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
from worker.esms.responses import Balance, CallStatusReport, OtpStatusReport, Submission

__all__ = [
    "AccountError",
    "AsyncEsmsClient",
    "Balance",
    "CallStatusReport",
    "ConfigurationError",
    "EsmsClient",
    "EsmsError",
    "InsufficientBalance",
    "InvalidParameter",
    "NotReady",
    "OtpStatusReport",
    "PermanentError",
    "RateLimited",
    "RetryableError",
    "Speed",
    "Submission",
    "TransportError",
    "Voice",
]
