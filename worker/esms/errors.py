"""Everything the eSMS layer raises: the ``EsmsError`` branch of the one error tree (drawn in
voicecall.errors). The worker acts on the type alone.

Every :class:`EsmsError` carries ``.code``: eSMS's result code when eSMS answered one, else
None (a request refused before it was made, or one that failed on the way).
"The request failed" (:class:`TransportError`) is kept apart from "eSMS answered with an
<<<<<<< HEAD
error code" (:class:`EsmsCodeError` and 160's :class:`RateLimited`). Codes 100 and 124 are not
errors: they become a :class:`~voicecall.esms.results.Submission` (124 = accepted earlier under
the same RequestId). Tenacity retries :class:`TransportError` and :class:`RateLimited` inside
one attempt (see :mod:`worker.esms.retry`); every other :class:`RetryableError` goes back to
Dramatiq at once.
=======
error code" (everything carrying ``.code``). Codes 100 and 124 are not errors: they become a
:class:`~voicecall.esms.results.Submission` (124 = accepted earlier under the same RequestId).
Tenacity retries :class:`TransportError` and :class:`RateLimited` inside one attempt (see
:mod:`worker.esms.retry`); every other :class:`RetryableError` goes back to Dramatiq at once.
>>>>>>> i19-params
"""

from __future__ import annotations

from voicecall.errors import VoicecallError

# Every code of the digest's table (docs: bang-ma-loi.md) with its meaning. A code missing
# here still maps to PermanentError, with eSMS's own ErrorMessage.
CODE_MEANINGS: dict[int, str] = {
    99: "phone number blocked",
    100: "request accepted",
    101: "wrong ApiKey/SecretKey",
    102: "no price table for the account",
    103: "insufficient balance",
    104: "brandname or call template not found",
    105: "SMSID not found (a just-sent id may not be queryable yet)",
    106: "recording file not found",
    108: "invalid phone number",
    118: "message type not supported",
    124: "duplicate RequestId (accepted earlier)",
    140: "caller IP not whitelisted",
    143: "account not activated or locked",
    160: "TPS limit exceeded",
    163: "more than one phone in a fixed-number request",
}
CODE_ACCEPTED = 100
CODE_DUPLICATE = 124


class EsmsError(VoicecallError):
    """Root of every error this package raises. ``code`` is eSMS's result code, or None when
    eSMS answered none."""

    def __init__(self, message: str, *, code: int | None, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.endpoint = endpoint


class InvalidParameter(EsmsError, ValueError):
    """A parameter breaks a documented rule; raised before any request is made.

    The message names the eSMS parameter and the rule, never the value (it may be a phone).
    """

    def __init__(self, param: str, rule: str) -> None:
        super().__init__(f"{param} {rule}", code=None)
        self.param = param
        self.rule = rule


class EsmsCodeError(EsmsError):
    """eSMS answered with a result code other than 100/124 (mixin base for coded errors)."""

    def __init__(self, code: int | None, message: str, *, endpoint: str | None = None) -> None:
        where = f" on {endpoint}" if endpoint else ""
        label = f"eSMS {code}" if code is not None else "eSMS"
        super().__init__(f"{label}{where}: {message}", code=code, endpoint=endpoint)
        self.message = message


class NotReady(EsmsCodeError):
    """105: the SMSID is not (yet) known to the status endpoint; ask again later."""


class RetryableError(EsmsError):
    """The request may succeed if made again later. ``.reason`` is a metrics label."""

    reason: str = "retryable"


class TransportError(RetryableError):
    """The request failed on the way: timeout, connection, HTTP 5xx, or a body that is not JSON."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        endpoint: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message, code=None, endpoint=endpoint)
        self.reason = reason
        self.http_status = http_status


class RateLimited(RetryableError):
    """HTTP 429 or eSMS 160 (TPS exceeded). ``retry_after_s`` comes from ``Retry-After``."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        endpoint: str | None = None,
        retry_after_s: float | None = None,
        code: int | None,
    ) -> None:
        super().__init__(message, code=code, endpoint=endpoint)
        self.reason = reason
        self.retry_after_s = retry_after_s


class InsufficientBalance(RetryableError, EsmsCodeError):
    """103: the account has no money left; the job can succeed after a top-up."""

    reason = "103"


class PermanentError(EsmsCodeError):
    """eSMS refused the request for good; ``.code`` and ``.message`` say why."""


class ConfigurationError(PermanentError):
    """Our side is misconfigured (101 wrong keys, 140 IP not whitelisted, a wrong URL)."""


class AccountError(PermanentError):
    """The eSMS account cannot send (102 no price table, 143 not activated or locked)."""


# Which class each documented code raises; None = not an error (a Submission).
CODE_CLASSES: dict[int, type[EsmsError] | None] = {
    99: PermanentError,
    100: None,
    101: ConfigurationError,
    102: AccountError,
    103: InsufficientBalance,
    104: PermanentError,
    105: NotReady,
    106: PermanentError,
    108: PermanentError,
    118: PermanentError,
    124: None,
    140: ConfigurationError,
    143: AccountError,
    160: RateLimited,
    163: PermanentError,
}


def error_for_code(
    code: int,
    error_message: str | None = None,
    *,
    endpoint: str | None = None,
    retry_after_s: float | None = None,
) -> EsmsError:
    """The exception for an eSMS result code that is not a success (100) or duplicate (124)."""
    message = error_message or CODE_MEANINGS.get(code, "unknown result code")
    cls = CODE_CLASSES.get(code, PermanentError)
    if cls is None:
        raise ValueError(f"code {code} is not an error")
    if cls is RateLimited:
        return RateLimited(
            f"eSMS {code} on {endpoint}: {message}",
            reason=str(code),
            endpoint=endpoint,
            retry_after_s=retry_after_s,
            code=code,
        )
    if issubclass(cls, EsmsCodeError):
        return cls(code, message, endpoint=endpoint)
    raise AssertionError(f"unmapped class {cls.__name__}")  # pragma: no cover
