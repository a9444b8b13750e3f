"""eSMS result codes the simulator gives, their messages, and the error that carries one.

Codes are strings on the wire (``"CodeResult": "100"``), as eSMS sends them.
"""

from __future__ import annotations

OK = "100"
BLOCKED = "99"
AUTH_FAILED = "101"
NO_BALANCE = "103"
NOT_FOUND_TEMPLATE = "104"  # also an unknown Brandname
NOT_FOUND_SMSID = "105"
NOT_FOUND_RECORDING = "106"
BAD_PHONE = "108"
BAD_REQUEST = "110"  # the simulator's choice for malformed or missing fields (see the docs)
BAD_SMS_TYPE = "118"
DUPLICATE_REQUEST_ID = "124"
TPS_EXCEEDED = "160"
MANY_PHONES = "163"

MESSAGES: dict[str, str] = {
    BLOCKED: "Phone number is blocked",
    AUTH_FAILED: "Authorize Failed",
    NO_BALANCE: "Balance not enough to send",
    NOT_FOUND_TEMPLATE: "Template not found",
    NOT_FOUND_SMSID: "SMSID not found",
    NOT_FOUND_RECORDING: "Record file not found",
    BAD_PHONE: "Phone number invalid",
    BAD_REQUEST: "Invalid request data",
    BAD_SMS_TYPE: "SmsType not supported",
    DUPLICATE_REQUEST_ID: "Duplicate RequestId",
    TPS_EXCEEDED: "TPS limit exceeded",
    MANY_PHONES: "Only one phone number per request",
}


class EsmsError(Exception):
    """A request eSMS refuses: ``code`` and ``message`` go into the response body."""

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code = code
        self.message = message or MESSAGES.get(code, "Error")
        super().__init__(f"{code} {self.message}")


def send_error_body(error: EsmsError) -> dict[str, object]:
    """The body of a refused send or voice-status request (``CodeResult`` style)."""
    return {"CodeResult": error.code, "CountRegenerate": 0, "ErrorMessage": error.message}
