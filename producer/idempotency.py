"""The standard ``Idempotency-Key`` request header (IETF httpapi draft; Stripe's convention).

On ``POST /v1/calls`` it means exactly what the body's ``idempotency_key`` means: a retry with
the same key and body answers the same job, with ``Idempotent-Replayed: true``. Sending both
with different values is refused (422): which one the client meant cannot be guessed. The
value then passes the field's own rules (length, no control characters) in the job contract.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header

from producer.errors import validation_error

IDEMPOTENCY_HEADER = "Idempotency-Key"
BODY_FIELD = "idempotency_key"

IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=200,
        description="Same meaning as the body's `idempotency_key` (send either, or both "
        "equal). A replay answers 202 with the same job and `Idempotent-Replayed: true`.",
    ),
]


def with_header_key(data: dict[str, Any], header: str | None) -> dict[str, Any]:
    """``data`` with the header's key as its ``idempotency_key``; 422 when they differ."""
    if header is None:
        return data
    field = data.get(BODY_FIELD)
    if field is not None and field != header:
        raise validation_error(
            [
                {
                    "field": BODY_FIELD,
                    "message": f"differs from the {IDEMPOTENCY_HEADER} header; send one, "
                    "or both with the same value",
                }
            ]
        )
    return {**data, BODY_FIELD: header}
