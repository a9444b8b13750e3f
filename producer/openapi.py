"""What the OpenAPI document says about request and response bodies.

The call endpoints read their JSON body themselves (so ``send_at`` is checked against the
app's settings, and a batch can fail item by item), so their request schemas are added here:
the job contract's JSON schema (``CallRequest``, one of the three kinds) and one complete,
valid example per kind from :data:`voicecall.job.contract.EXAMPLES`. Jobs are described by the one
job view, :class:`voicecall.job.records.JobView`.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["JobView"]

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from voicecall.job.contract import EXAMPLES, CallRequestAdapter
from voicecall.job.records import JobView

MAX_BATCH = 1000  # calls in one POST /v1/calls/batch
NO_CONTROL_CHARACTERS = "^[^\\x00-\\x1f\\x7f]*$"
_REF = "#/components/schemas/{model}"
CALL_REQUEST_REF = {"$ref": "#/components/schemas/CallRequest"}


class FieldError(BaseModel):
    """One broken rule: ``field`` then ``message`` reads as a sentence (producer.fields), e.g.
    ``kind`` + ``is required: one of voice_otp, record_call, template_call``."""

    field: str = Field(description="Dotted path of the field, e.g. `phone` or `labels.app`.")
    message: str = Field(description="The rule it broke, in plain words.")


class ErrorBody(BaseModel):
    """Every error answer."""

    error: str = Field(description="A stable code: validation_failed, not_found, ...")
    message: str = Field(description="On 422: the first five errors as sentences (`field rule`).")
    request_id: str | None = Field(description="Also in the X-Request-ID header.")
    errors: list[FieldError] | None = Field(default=None, description="Only on 422.")
    job_id: str | None = Field(default=None, description="On 409: the job that holds the id/key.")
    state: str | None = Field(default=None, description="On cancel_refused: the job's state.")
    retry_after_s: int | None = Field(default=None, description="On quota_exceeded.")


class ItemError(BaseModel):
    """A batch item's error: an error body without a request id (the batch's is in its
    X-Request-ID header)."""

    error: str = Field(description="validation_failed, idempotency_conflict, duplicate_id, ...")
    message: str
    errors: list[FieldError] | None = Field(default=None, description="Only with status 422.")
    job_id: str | None = Field(default=None, description="With status 409.")


class ReadyAnswer(BaseModel):
    status: str = Field(description="ready, or unavailable (503).")
    redis: str = Field(description="ok, or unreachable.")


class CallbackAnswer(BaseModel):
    result: Literal["accepted", "confirming", "held", "repeat", "pending", "unknown_job"] = Field(
        description="accepted (CALLBACK_CONFIRM=off: the job ended), confirming "
        "(CALLBACK_CONFIRM=status, the default: eSMS's status answer will end it), held "
        "(before eSMS's send answer named the job's SMSID: settled when it does), repeat, "
        "pending (not final yet) or unknown_job."
    )


class BatchItem(BaseModel):
    index: int
    status: int = Field(description="202 accepted, 409, 422, or 503 (not attempted).")
    job: JobView | None = None
    error: ItemError | None = None


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
            # Each item is validated on its own (an invalid one gets its own 422 in
            # `results` while the others are stored), so the request schema takes any object:
            # conformance tools then expect the 200 the API gives for a batch with bad items.
            "calls": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": {
                    "type": "object",
                    "description": "A call, as POST /v1/calls takes it (CallRequest); checked on "
                    "its own: a bad one is refused in `results` with status 422.",
                },
            },
            "campaign": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "pattern": NO_CONTROL_CHARACTERS,
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


def operation_id(route: APIRoute) -> str:
    """Readable operationIds: the route function's name (create_call, get_call, ...)."""
    return route.name


def _own_error_body(node: Any) -> None:
    """Point every 422 at ErrorBody (what the API answers), not FastAPI's HTTPValidationError."""
    if isinstance(node, dict):
        if node.get("$ref") == _REF.format(model="HTTPValidationError"):
            node["$ref"] = _REF.format(model="ErrorBody")
        for value in node.values():
            _own_error_body(value)
    elif isinstance(node, list):
        for value in node:
            _own_error_body(value)


def install(app: FastAPI) -> None:
    """Add the call schemas to the app's generated OpenAPI document; 422s use ErrorBody."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            _own_error_body(document.get("paths", {}))
            components = document.setdefault("components", {}).setdefault("schemas", {})
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            components.update(call_schemas())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
