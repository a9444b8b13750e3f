"""Figure 9a: OTP and scheduled calls while 5 % of eSMS answers hang for 40 s.

The same mixed load (:mod:`bench.figures.mixed_load`) twice on the default ``voicecall
worker``: first with eSMS answering every request (the reference), then with the simulator
accepting every call but withholding 5 % of the answers for 40 s (``accept_then_hang_rate``).
A hung answer holds one coroutine of the send engine until ``ESMS_ATTEMPT_BUDGET_S``, never a
worker thread, so other calls do not queue behind it. The job then learns from eSMS's 124 that
the call was placed: still one call per job.
"""

from __future__ import annotations

from bench.core import Context, Row
from bench.figures.mixed_load import run_mixed

NUMBER, TITLE = "9a", "Isolation: hanging eSMS answers"
TARGET_S = 2.0
HANG_RATE = 0.05
HANG_S = 40.0


def run(ctx: Context) -> list[Row]:
    s = ctx.sizes
    clean = run_mixed(ctx, "ref", sim_knobs={"accept_then_hang_rate": 0.0})
    hung = run_mixed(
        ctx,
        "hang",
        sim_knobs={"accept_then_hang_rate": HANG_RATE, "hang_s": HANG_S, "fault_scope": "send"},
    )
    met = (
        hung.missing == 0
        and hung.doubled == 0
        and hung.otp_p99 <= TARGET_S
        and hung.late_p99 <= TARGET_S
    )
    return [
        Row(
            figure=NUMBER,
            name=TITLE,
            value=hung.text(),
            reference=f"every answer at once: {clean.text()}",
            ratio=None,
            target=f"OTP p99 ≤ {TARGET_S:.0f} s, lateness p99 ≤ {TARGET_S:.0f} s, 1 call per job",
            met=met,
            notes=(
                f"{HANG_RATE:.0%} of eSMS answers withheld {HANG_S:.0f} s (call accepted; "
                f"{hung.hung} answers withheld this run); "
                f"{hung.n_otp} OTP calls at {s.mixed_otp_rate_per_s:g}/s beside "
                f"{hung.n_scheduled} record calls due over {s.mixed_window_s[0]:g}-"
                f"{s.mixed_window_s[1]:g} s; default voicecall worker ({s.processes} processes "
                f"× {s.threads} threads); jobs with more than one eSMS call: {hung.doubled} "
                f"(reference {clean.doubled})"
            ),
            why_missed=WHY_MISSED,
            data={"hang": vars(hung), "reference": vars(clean)},
        )
    ]


WHY_MISSED = """\
A hung answer holds a coroutine and one of its queue's send slots, not a thread. A miss
beside a good reference means the slots ran out (raise BULK_SEND_CONCURRENCY) or the shared cores
were busy; a miss in the reference too is CPU contention on the machine."""
