"""The campaigns' figures, from the counters the lifecycle steps keep (never a scan of jobs)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from voicecall.errors import CampaignNotFound
from voicecall.job.records import Time
from voicecall.job.states import FINAL_STATES, Outcome, State
from voicecall.store.job_store import JobStore


class CampaignSummary(BaseModel):
    """A campaign's figures, from its counters."""

    name: str
    total: int = Field(description="Jobs that joined the campaign.")
    by_state: dict[str, int] = Field(description="Jobs in each state now.")
    by_outcome: dict[str, int] = Field(description="Completed calls by outcome.")
    answered: int
    finished: int = Field(description="Jobs in a final state.")
    answer_rate: float | None = Field(description="answered ÷ completed; null before any.")
    duration_s: int = Field(description="Total call duration eSMS reported.")
    average_duration_s: float | None = Field(description="duration_s ÷ answered.")
    cost_vnd: float = Field(description="Total of eSMS's Price for the campaign's calls.")
    first_sent_at: Time | None = Field(description="First call handed to eSMS.")
    last_sent_at: Time | None = Field(description="Latest call handed to eSMS.")
    progress: float = Field(description="finished ÷ total, from 0 to 1.")


def campaign(store: JobStore, name: str) -> CampaignSummary:
    """The campaign's figures (counters, never a scan); raises :class:`CampaignNotFound`
    when no job ever named it."""
    found = store.campaign_number(name)
    if found is None:
        raise CampaignNotFound(name)
    figures = store.campaign_figures(found[0])
    return summarize(name, figures)


def campaigns(store: JobStore) -> list[CampaignSummary]:
    """Every campaign with its figures, newest first."""
    names = store.campaign_names()
    figures = store.campaign_figures_many([cid for cid, _ in names])
    return [summarize(name, f) for (_, name), f in zip(names, figures, strict=True)]


def summarize(name: str, figures: dict[str, float]) -> CampaignSummary:
    by_state = {s.value: int(figures.get(s.value, 0)) for s in State}
    by_outcome = {o.value: int(figures.get(f"outcome:{o.value}", 0)) for o in Outcome}
    total = int(figures.get("total", 0))
    finished = sum(by_state[s.value] for s in FINAL_STATES)
    completed = by_state[State.COMPLETED.value]
    answered = by_outcome[Outcome.ANSWERED.value]
    duration = int(figures.get("duration_s", 0))
    return CampaignSummary(
        name=name,
        total=total,
        by_state=by_state,
        by_outcome=by_outcome,
        answered=answered,
        finished=finished,
        answer_rate=round(answered / completed, 4) if completed else None,
        duration_s=duration,
        average_duration_s=round(duration / answered, 1) if answered else None,
        cost_vnd=round(float(figures.get("price_vnd", 0.0)), 4),
        first_sent_at=_moment(figures.get("first_sent_at")),
        last_sent_at=_moment(figures.get("last_sent_at")),
        progress=round(finished / total, 4) if total else 0.0,
    )


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
