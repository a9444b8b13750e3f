"""Purging final jobs whose retention is over, found by their place in the state index.

A job that ended within ``RETENTION_SLACK_S`` of its creation has no time in the due set (it
would cost a sorted-set entry per job for 30 days). Its place in the state index says when
it was created, so once ``created + retention + slack`` has passed it has surely been final
for ``retention``. Each final band is read in creation order from a mark up to that cutoff;
each job read is purged (``voicecall.job.upkeep.purge``, which checks its end time again).
Jobs that ended later keep their own time in the due set; the purge step leaves them alone
(``noop``), and the mark steps over them, counting those that share the mark's score.

The marks live in the scanning process. Any number of processes may scan: a purge is one
atomic, idempotent step. Every ``RESCAN_S`` the marks start again from the beginning of each
band, so a job skipped because a neighbour left between two reads is found within that time.
"""

from __future__ import annotations

from voicecall.job import keys, layout, upkeep
from voicecall.job.steps import Verdict
from voicecall.store.job_store import JobStore

SCAN_EVERY_S = 60.0
RESCAN_S = 3600.0
BATCH = 500


class RetentionScan:
    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.retention_s = store.config.retention_s  # the purge step checks the same
        self._marks: dict[int, tuple[int, int]] = {}  # band → (score, jobs kept at that score)
        self._next_at = 0.0
        self._rescan_at = 0.0

    def run(self, now: float) -> int:
        """Purge what is due, at most once per ``SCAN_EVERY_S``; returns how many."""
        if now < self._next_at:
            return 0
        self._next_at = now + SCAN_EVERY_S
        if now >= self._rescan_at:
            self._marks.clear()
            self._rescan_at = now + RESCAN_S
        cutoff_ms = int((now - self.retention_s - layout.RETENTION_SLACK_S) * 1000)
        if cutoff_ms <= 0:
            return 0
        return sum(self._scan(band, cutoff_ms, now) for band in layout.final_bands())

    def _scan(self, band: int, cutoff_ms: int, now: float) -> int:
        base = band * layout.BAND_WIDTH
        score, kept = self._marks.get(band, (base, 0))
        purged = 0
        while True:
            rows = self.store.index_range_ascending(
                keys.STATE_INDEX, score, base + cutoff_ms, BATCH, offset=kept
            )
            if not rows:
                break
            ids = [job_id for job_id, _ in rows]
            jobs = self.store.get_many(ids)
            ops = [upkeep.purge(job, job_id) for job, job_id in zip(jobs, ids, strict=True)]
            for (_, at), step in zip(rows, self.store.apply_many(ops, now=now), strict=True):
                if at != score:
                    score, kept = at, 0
                if step.verdict is Verdict.PURGED:
                    purged += 1
                else:
                    kept += 1
            if len(rows) < BATCH:
                break
        self._marks[band] = (score, kept)
        return purged
