"""Pure timing rules of the worker: quiet hours, retry backoff, the poll plan and the
webhooks' retry delays.

Poll plan (ARCHITECTURE decision 4). eSMS redials an unanswered callee ``MaxRetry`` times,
``WaitRetry`` s apart, and plays the recording ``MaxRepeat`` times once answered, so the call
can last up to::

    sequence_s = ring_s × (1 + max_retry) + wait_retry × max_retry + recording_s × max_repeat

The first poll is planned at ``start + sequence_s × time_scale + margin_s`` (``POLL_TIME_SCALE``
is 1 in production; the demo and tests match the simulator's time scale) (``start`` is the send time,
or eSMS's SendDate in provider mode); a Voice OTP at ``start + otp_first_s + margin_s``.
Later polls back off: ``interval × factor^n`` capped at ``max_interval_s``; after
``deadline_s`` from submission the job ends ``expired``. ``recording_s`` is the recording's
length from ``RECORDING_LENGTHS_S`` (JSON, by recording id) or ``POLL_DEFAULT_RECORDING_S``.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from voicecall.config.settings import Settings
from voicecall.formats.timefmt import from_epoch
from voicecall.job.params import OtpParams, RecordParams, TemplateParams

# eSMS's defaults when a job leaves MaxRetry / WaitRetry / MaxRepeat unset.
ESMS_DEFAULT_MAX_RETRY = 0
ESMS_DEFAULT_WAIT_RETRY_S = 60
ESMS_DEFAULT_MAX_REPEAT = 1


def quiet_window_end(
    moment: float, quiet: tuple[time, time] | None, zone: ZoneInfo
) -> float | None:
    """If ``moment`` falls in the quiet hours, the epoch when they end; else None."""
    if quiet is None:
        return None
    start, end = quiet
    local = from_epoch(moment).astimezone(zone)
    now_t = local.time()
    inside = (start <= now_t or now_t < end) if start > end else (start <= now_t < end)
    if not inside:
        return None
    end_day = local.date() if now_t < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=zone).timestamp()


def retry_delay_s(retries: int, settings: Settings) -> float:
    """Dramatiq-level backoff: exponential with full jitter, capped."""
    ceiling = min(settings.send_retry_max_backoff_s, settings.send_retry_min_backoff_s * 2**retries)
    return max(settings.send_retry_min_backoff_s / 2, random.uniform(0, ceiling))


def call_sequence_s(
    request: OtpParams | RecordParams | TemplateParams, settings: Settings
) -> float:
    """The longest time eSMS may spend on one call, redials and replays included."""
    match request:
        case OtpParams():
            return float(settings.poll_otp_first_s)
        case RecordParams(max_retry=max_retry, wait_retry=wait_retry, max_repeat=max_repeat):
            source = request.record_id
        case TemplateParams():
            max_retry = wait_retry = max_repeat = None
            source = request.template_id
    retries = ESMS_DEFAULT_MAX_RETRY if max_retry is None else max_retry
    wait_s = ESMS_DEFAULT_WAIT_RETRY_S if wait_retry is None else wait_retry
    repeats = ESMS_DEFAULT_MAX_REPEAT if max_repeat is None else max_repeat
    recording_s = settings.recording_lengths_s.get(source, settings.poll_default_recording_s)
    return settings.poll_ring_s * (1 + retries) + wait_s * retries + recording_s * repeats


def first_poll_at(
    start: float, request: OtpParams | RecordParams | TemplateParams, settings: Settings
) -> float:
    sequence_s = call_sequence_s(request, settings) * settings.poll_time_scale
    return start + sequence_s + settings.poll_margin_s


def next_poll_in_s(polls_done: int, settings: Settings) -> float:
    base = max(1.0, settings.poll_margin_s or 1.0)
    return float(min(settings.poll_max_interval_s, base * settings.poll_backoff_factor**polls_done))


def webhook_retry_delay_s(
    retry: int,
    settings: Settings,
    *,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before webhook retry number ``retry`` (1 for the first retry).

    ``WEBHOOK_RETRY_BASE_S * 4^(retry-1)``, capped at ``WEBHOOK_RETRY_MAX_S``, then jittered
    down by up to half so that receivers recovering from an outage are not hit all at once;
    the defaults (5 s base, 6 h cap) spread 8 retries over about 7 to 14 hours, as Standard
    Webhooks recommends. A receiver's ``Retry-After`` lengthens the wait, never past the cap.
    """
    if retry < 1:
        raise ValueError("retry counts from 1")
    cap = settings.webhook_retry_max_s
    delay = min(cap, settings.webhook_retry_base_s * 4.0 ** min(retry - 1, 64))
    delay *= 1.0 - 0.5 * (rng or _jitter).random()
    if retry_after_s is not None and retry_after_s > delay:
        delay = min(cap, retry_after_s)
    return delay


_jitter = random.Random()
