"""Ending a job: the one place a job reaches a final state, with its metrics and webhook.

Called by the worker (send, poll) and by the API's callback receiver alike, so every final
state is counted once and every job with a ``webhook_url`` gets exactly one delivery message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dramatiq

from voicecall.jobs import FINAL_STATES, Outcome, State
from voicecall.logs import get_logger
from voicecall.messages import webhook_message
from voicecall.metrics import CALL_DURATION, COST, JOBS_FINISHED, TIME_TO_FINAL
from voicecall.store import JobStore, now_s

log = get_logger(__name__)


def finish(
    store: JobStore,
    broker: dramatiq.Broker | None,
    job_id: str,
    state: State,
    *,
    allowed_from: Iterable[State],
    outcome: Outcome | None = None,
    fields: Mapping[str, object] | None = None,
    note: str | None = None,
    require_expired_lease: bool = False,
) -> bool:
    """Move the job to final ``state``; True if this call did it (False: already moved)."""
    assert state in FINAL_STATES
    all_fields = dict(fields or {})
    if outcome is not None:
        all_fields["outcome"] = outcome.value
    result = store.transition(
        job_id,
        state,
        allowed_from=allowed_from,
        note=note,
        fields=all_fields,
        history_extra={"outcome": outcome.value if outcome else None},
        require_expired_lease=require_expired_lease,
    )
    if not result.applied:
        return False
    job = store.get(job_id)
    if job is None:
        return True
    JOBS_FINISHED.labels(
        kind=job.kind, state=state.value, outcome=outcome.value if outcome else ""
    ).inc()
    TIME_TO_FINAL.labels(kind=job.kind, state=state.value).observe(
        max(0.0, now_s() - job.created_at)
    )
    if job.call_duration_s is not None:
        CALL_DURATION.labels(kind=job.kind).observe(job.call_duration_s)
    if job.price_vnd:
        COST.labels(kind=job.kind).inc(job.price_vnd)
    log.info(
        "job_finished", job_id=job_id, state=state.value, outcome=outcome.value if outcome else None
    )
    if job.webhook_url and broker is not None:
        webhook_message(broker, job_id)
    return True


# States from which a report of the call's result may end the job. `sending` and `retrying`
# are included: a callback may beat the worker's own record of eSMS's answer, or prove that a
# request whose response was lost did reach eSMS.
REPORTABLE_STATES = frozenset({State.SENDING, State.RETRYING, State.SUBMITTED})
