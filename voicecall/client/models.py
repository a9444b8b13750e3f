"""The answers the clients return besides :class:`~voicecall.job.records.JobView` (the server's own
model, imported).

The server defines these shapes in modules that load Redis (``voicecall.search``'s campaign
figures, ``producer.client``'s page) or FastAPI (``producer.openapi``'s batch result), which
the client must not import; so they are written here, and ``tests/test_client_operations.py``
holds each one equal to the schema the API serves in its OpenAPI document.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from voicecall.job.records import JobView, Time

__all__ = ["BatchItem", "BatchResult", "CallPage", "CampaignSummary", "FieldError", "ItemError"]


class CallPage(BaseModel):
    """One page of ``GET /v1/calls``: newest first; ``next_cursor`` is None on the last page
    (a page may hold fewer jobs than asked for, even none, and still have a next one)."""

    data: list[JobView]
    next_cursor: str | None


class FieldError(BaseModel):
    field: str = Field(description="Dotted path, e.g. `phone` or `labels.app`.")
    message: str


class ItemError(BaseModel):
    """Why one call of a batch was refused."""

    error: str = Field(description="validation_failed, idempotency_conflict, duplicate_id, ...")
    message: str
    errors: list[FieldError] | None = None
    job_id: str | None = None


class BatchItem(BaseModel):
    index: int = Field(description="The call's place in the batch, from 0.")
    status: int = Field(description="202 stored (or replayed), 409, 422, or 503 not attempted.")
    job: JobView | None = None
    error: ItemError | None = None


class BatchResult(BaseModel):
    """``POST /v1/calls/batch``: one result per call; some may fail while others are stored."""

    accepted: int
    replays: int
    failed: int
    results: list[BatchItem]


class CampaignSummary(BaseModel):
    """A campaign's figures (the jobs sharing a ``campaign`` label)."""

    name: str
    total: int
    by_state: dict[str, int]
    by_outcome: dict[str, int]
    answered: int
    finished: int = Field(description="Jobs in a final state.")
    answer_rate: float | None = Field(description="answered / completed; None before any.")
    duration_s: int
    average_duration_s: float | None
    cost_vnd: float = Field(description="The total of eSMS's Price.")
    first_sent_at: Time | None
    last_sent_at: Time | None
    progress: float = Field(description="finished / total, 0 to 1.")


class CampaignList(BaseModel):
    data: list[CampaignSummary]


class BulkOperation(BaseModel):
    """A bulk action (``/v1/bulk``) and how far it got."""

    id: str
    action: Literal["cancel", "requeue"]
    target: str
    by: str
    state: Literal["running", "done", "failed"]
    total: int
    processed: int
    changed: int = Field(description="Cancelled, or requeued.")
    skipped: int = Field(description="Refused by their step: changed meanwhile.")
    started_at: Time
    finished_at: Time | None = None
    error: str | None = None
