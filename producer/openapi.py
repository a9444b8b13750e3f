"""What the OpenAPI document says about request and response bodies.

The call endpoints read their JSON body themselves (so ``send_at`` is checked against the
app's settings, and a batch can fail item by item), so their request schemas are added here:
the job contract's JSON schema (``CallRequest``, one of the three kinds) and one complete,
valid example per kind from :data:`voicecall.jobs.EXAMPLES`. Jobs are described by the one
job view, :class:`voicecall.records.JobView`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JobView"]

from fastapi import FastAPI
from pydantic import BaseModel, Field

from voicecall.jobs import EXAMPLES, CallRequestAdapter
from voicecall.records import JobView

MAX_BATCH = 1000  # calls in one POST /v1/calls/batch
_REF = "#/components/schemas/{model}"
CALL_REQUEST_REF = {"$ref": "#/components/schemas/CallRequest"}


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the field, e.g. `phone` or `labels.app`.")
    message: str


class ErrorBody(BaseModel):
    """Every error answer."""

    error: str = Field(description="A stable code: validation_failed, not_found, ...")
    message: str
    request_id: str | None = Field(description="Also in the X-Request-ID header.")
    errors: list[FieldError] | None = Field(default=None, description="Only on 422.")


class CallbackAnswer(BaseModel):
    result: str = Field(description="accepted, repeat, pending or unknown_job.")


class BatchItem(BaseModel):
    index: int
    status: int = Field(description="202 accepted, 409, 422, or 503 (not attempted).")
    job: JobView | None = None
    error: ErrorBody | None = None


class BatchResult(BaseModel):
    accepted: int = Field(description="Items stored (new jobs and replays).")
    replays: int
    failed: int
    results: list[BatchItem]


def call_examples() -> dict[str, dict[str, Any]]:
    return {
        kind: {"summary": kind.replace("_", " "), "value": example}
        for kind, example in EXAMPLES.items()
    }


def call_body() -> dict[str, Any]:
    """``openapi_extra`` for ``POST /v1/calls``."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": CALL_REQUEST_REF, "examples": call_examples()}
            },
        }
    }


def batch_body() -> dict[str, Any]:
    """``openapi_extra`` for ``POST /v1/calls/batch``."""
    schema = {
        "type": "object",
        "properties": {
            "calls": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": CALL_REQUEST_REF,
            },
            "campaign": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "description": "Sets the `campaign` label of every call (a call naming another "
                "campaign is refused on its own).",
            },
        },
        "required": ["calls"],
        "additionalProperties": False,
    }
    example = {
        "summary": "one of each kind, all in one campaign",
        "value": {
            "calls": [_without_campaign(call) for call in EXAMPLES.values()],
            "campaign": "tet-2030",
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "examples": {"batch": example}}},
        }
    }


def _without_campaign(call: dict[str, Any]) -> dict[str, Any]:
    labels = {k: v for k, v in call.get("labels", {}).items() if k != "campaign"}
    return {
        **{k: v for k, v in call.items() if k != "labels"},
        **({"labels": labels} if labels else {}),
    }


def call_schemas() -> dict[str, Any]:
    """``CallRequest`` and the models it refers to, for ``components.schemas``."""
    schema = CallRequestAdapter.json_schema(ref_template=_REF)
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {**definitions, "CallRequest": schema}


def install(app: FastAPI) -> None:
    """Add the call schemas to the app's generated OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            components = document.setdefault("components", {}).setdefault("schemas", {})
            components.update(call_schemas())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
