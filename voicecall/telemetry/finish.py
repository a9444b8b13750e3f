"""What follows a job's final step: its metrics and one log line, counted once.

The final step itself (history, retention, the webhook's message) is the store's
(voicecall.job.lifecycle); whoever applied it (the worker's send or poll step, the API's callback
route) calls :func:`observe_finished` with the job the step returned, once.
"""

from __future__ import annotations

from voicecall.job.records import JobRecord
from voicecall.telemetry.logs import get_logger
from voicecall.telemetry.metrics import CALL_DURATION, CALLBACKS, COST, JOBS_FINISHED, TIME_TO_FINAL

log = get_logger(__name__)


def observe_finished(job: JobRecord | None) -> None:
    """Count a job that has just reached its final state."""
    if job is None or not job.final:
        return
    outcome = job.outcome.value if job.outcome else ""
    JOBS_FINISHED.labels(kind=job.kind.value, state=job.state.value, outcome=outcome).inc()
    TIME_TO_FINAL.labels(kind=job.kind.value, state=job.state.value).observe(
        max(0.0, (job.finished_at or job.updated_at) - job.created_at)
    )
    if job.call is not None:
        if job.call.duration_s is not None:
            CALL_DURATION.labels(kind=job.kind.value).observe(job.call.duration_s)
        if job.call.price_vnd:
            COST.labels(kind=job.kind.value).inc(job.call.price_vnd)
    last = job.history[-1].model_extra if job.history else None
    dropped = (last or {}).get("held_dropped")
    if isinstance(dropped, int) and dropped > 0:  # the job ended before its SMSID was known
        CALLBACKS.labels(result="held_dropped").inc(dropped)
    log.info("job_finished", job_id=job.id, state=job.state.value, outcome=outcome or None)
