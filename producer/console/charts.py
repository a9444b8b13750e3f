"""The console's charts, rendered on the server as SVG (no script, nothing from a CDN): sends
and endings per bucket as grouped bars (sent; endings stacked as success, warning, problem),
and the answer rate of each bucket as a line. Buckets are minutes of the last hour or hours
of the last day, summed from the activity counters (producer.console.activity)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import tzinfo

from markupsafe import Markup, escape

from producer.console.activity import SENT, Minute
from voicecall.formats import shown

# What each ending counts as (the activity counters' names: a final state, or outcome:NAME).
GROUPS = {
    "ok": ("outcome:answered", "outcome:delivered"),
    "warn": ("outcome:not_answered", "cancelled"),
    "bad": ("outcome:undelivered", "failed", "rejected", "expired"),
}
ENDINGS = sum(GROUPS.values(), ())
ANSWERED = ("outcome:answered", "outcome:delivered")
COMPLETED = ("outcome:answered", "outcome:delivered", "outcome:not_answered", "outcome:undelivered")
WIDTH, HEIGHT, LEFT, BOTTOM = 720, 180, 34, 20


@dataclass
class Bucket:
    start_s: int
    counts: dict[str, int] = field(default_factory=dict)

    def total(self, names: Sequence[str]) -> int:
        return sum(self.counts.get(name, 0) for name in names)

    @property
    def answer_rate(self) -> float | None:
        completed = self.total(COMPLETED)
        return self.total(ANSWERED) / completed if completed else None


def buckets(minutes: Sequence[Minute], size: int) -> list[Bucket]:
    """``minutes`` (oldest first) summed ``size`` at a time, aligned to the bucket's start."""
    found: dict[int, Bucket] = {}
    for minute in minutes:
        start = minute.start_s - minute.start_s % (size * 60)
        bucket = found.setdefault(start, Bucket(start))
        for name, count in minute.counts.items():
            bucket.counts[name] = bucket.counts.get(name, 0) + count
    return [found[start] for start in sorted(found)]


def bars(series: Sequence[Bucket], zone: tzinfo, *, title: str, chart_id: str) -> Markup:
    """Sent and endings per bucket; each bar's tooltip gives its figures."""
    top = max([1, *(max(b.counts.get(SENT, 0), b.total(ENDINGS)) for b in series)])
    slot = (WIDTH - LEFT) / max(len(series), 1)
    plot = HEIGHT - BOTTOM
    parts = [_frame(title, chart_id, top, "")]
    for i, bucket in enumerate(series):
        x = LEFT + i * slot
        when = shown.short(bucket.start_s, zone)
        sent = bucket.counts.get(SENT, 0)
        parts.append(_rect(x, slot * 0.45, sent, top, plot, "sent", f"{when}: sent {sent}"))
        base = 0
        for group, names in GROUPS.items():
            n = bucket.total(names)
            if n:
                detail = ", ".join(f"{k.removeprefix('outcome:')} {bucket.counts[k]}"
                                   for k in names if bucket.counts.get(k))  # fmt: skip
                tip = f"{when}: {detail}"
                parts.append(_rect(x + slot * 0.45, slot * 0.45, n, top, plot, group, tip, base))
                base += n
    parts.append(_axis_labels(series, zone, slot))
    parts.append("</svg>")
    return Markup("".join(parts))


def rate_line(series: Sequence[Bucket], zone: tzinfo, *, title: str, chart_id: str) -> Markup:
    """The answer rate of each bucket with completed calls, as a line from 0 to 100%."""
    slot = (WIDTH - LEFT) / max(len(series), 1)
    plot = HEIGHT - BOTTOM
    points = [
        (LEFT + (i + 0.5) * slot, plot - plot * rate, bucket, rate)
        for i, bucket in enumerate(series)
        if (rate := bucket.answer_rate) is not None
    ]
    parts = [_frame(title, chart_id, 100, "%")]
    if points:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        parts.append(f'<polyline class="rate" points="{line}"/>')
        for x, y, bucket, rate in points:
            tip = escape(f"{shown.short(bucket.start_s, zone)}: {rate:.0%} answered")
            parts.append(
                f'<circle class="ok" cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{tip}</title></circle>'
            )
    else:
        parts.append(f'<text x="{LEFT + 8}" y="{plot / 2:.0f}">No completed calls yet.</text>')
    parts.append(_axis_labels(series, zone, slot))
    parts.append("</svg>")
    return Markup("".join(parts))


def _frame(title: str, chart_id: str, top: int, unit: str) -> str:
    plot = HEIGHT - BOTTOM
    return (
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-t"><title id="{escape(chart_id)}-t">{escape(title)}</title>'
        f'<line class="axis" x1="{LEFT}" y1="{plot}" x2="{WIDTH}" y2="{plot}"/>'
        f'<text x="0" y="10">{top}{unit}</text><text x="0" y="{plot}">0</text>'
    )


def _rect(
    x: float, w: float, n: int, top: int, plot: float, group: str, tip: str, under: int = 0
) -> str:
    h = plot * n / top
    y = plot - plot * under / top - h
    return (
        f'<rect class="{group}" x="{x:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" '
        f'height="{h:.1f}"><title>{escape(tip)}</title></rect>'
    )


def _axis_labels(series: Sequence[Bucket], zone: tzinfo, slot: float) -> str:
    """The first, middle and last buckets' times under the axis."""
    if not series:
        return ""
    picks = sorted({0, len(series) // 2, len(series) - 1})
    labels = []
    for i in picks:
        text = escape(shown.short(series[i].start_s, zone).split(" ", 2)[2])  # the time, zone
        anchor = "start" if i == 0 else "end" if i == len(series) - 1 else "middle"
        labels.append(
            f'<text x="{LEFT + (i + 0.5) * slot:.0f}" y="{HEIGHT - 4}" text-anchor="{anchor}">{text}</text>'
        )
    return "".join(labels)


def share_bar(parts: Sequence[tuple[str, int, str]], *, title: str, chart_id: str) -> Markup:
    """One horizontal bar split by ``parts`` (label, count, group), e.g. a campaign's jobs by
    how they ended; each part's tooltip gives its count and share."""
    total = sum(count for _, count, _ in parts) or 1
    out = [
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} 40" role="img" '
        f'aria-labelledby="{escape(chart_id)}-t"><title id="{escape(chart_id)}-t">{escape(title)}</title>'
    ]
    x = 0.0
    for label, count, group in parts:
        if count:
            w = WIDTH * count / total
            tip = escape(f"{label}: {count} ({count / total:.0%})")
            out.append(
                f'<rect class="{group}" x="{x:.1f}" y="4" width="{w:.1f}" height="32">'
                f"<title>{tip}</title></rect>"
            )
            x += w
    out.append("</svg>")
    return Markup("".join(out))


def campaign_parts(
    by_state: dict[str, int], by_outcome: dict[str, int]
) -> list[tuple[str, int, str]]:
    """A campaign's jobs for :func:`share_bar`: outcomes of completed jobs, other endings,
    and those not finished yet."""
    group = {
        name.removeprefix("outcome:"): kind for kind, names in GROUPS.items() for name in names
    }
    parts = [(name, count, group.get(name, "ok")) for name, count in by_outcome.items()]
    for state, count in by_state.items():
        if state != "completed":
            parts.append((state, count, group.get(state, "sent")))
    return parts
